// Package plot draws a run's metrics.jsonl as PNG charts: reward,
// accuracy, completion length, KL, entropy, clip ratio, loss, gradient
// norm, learning rate and throughput against the step, and the warm-up's
// loss, gradient norm and learning rate against its own step.
package plot

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/rltrain/rltrain/train/metrics"
)

// Chart is one PNG: a title and the metrics it overlays.
type Chart struct {
	File    string
	Title   string
	YLabel  string
	Metrics []string
	XLabel  string // "" is "step"
}

// Charts are the standard charts of a run.
var Charts = []Chart{
	{"reward.png", "Reward", "reward", []string{"reward", "eval/reward"}, ""},
	{"accuracy.png", "Held-out accuracy", "accuracy", []string{"eval/accuracy"}, ""},
	{"length.png", "Completion length", "tokens", []string{"completions/mean_length", "eval/mean_length"}, ""},
	{"kl.png", "KL", "nats/token", []string{"kl", "ppo_kl", "kl_reward"}, ""},
	{"entropy.png", "Entropy", "nats/token", []string{"entropy"}, ""},
	{"clip_ratio.png", "Clip ratio", "fraction of tokens", []string{"clip_ratio/low", "clip_ratio/high"}, ""},
	{"loss.png", "Loss", "loss", []string{"loss", "pg_loss", "vf_loss"}, ""},
	{"grad_norm.png", "Gradient norm (before clipping)", "L2 norm", []string{"grad_norm"}, ""},
	{"learning_rate.png", "Learning rate", "learning rate", []string{"learning_rate"}, ""},
	{"throughput.png", "Throughput", "tokens/s", []string{"perf/throughput"}, ""},
	// The warm-up's lines carry its own step count.
	{"sft_loss.png", "Warm-up (SFT) loss", "nats/token", []string{"sft/loss"}, "warm-up step"},
	{"sft_grad_norm.png", "Warm-up gradient norm", "L2 norm", []string{"sft/grad_norm"}, "warm-up step"},
	{"sft_learning_rate.png", "Warm-up learning rate", "learning rate", []string{"sft/learning_rate"}, "warm-up step"},
}

// Run reads runDir/metrics.jsonl (or a metrics file given directly) and
// writes the charts that have data into outDir, returning their paths.
func Run(runDir, outDir string) ([]string, error) {
	path := runDir
	if st, err := os.Stat(runDir); err == nil && st.IsDir() {
		path = filepath.Join(runDir, "metrics.jsonl")
	}
	rows, err := metrics.Read(path)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("plot: %s has no metrics lines", path)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	var written []string
	for _, c := range Charts {
		ok, err := draw(c, rows, filepath.Join(outDir, c.File))
		if err != nil {
			return written, err
		}
		if ok {
			written = append(written, filepath.Join(outDir, c.File))
		}
	}
	if len(written) == 0 {
		return nil, fmt.Errorf("plot: %s has none of the plotted metrics", path)
	}
	return written, nil
}

// series extracts (step, value) points of a metric, skipping steps that
// lack it or hold a non-finite value.
func series(rows []map[string]float64, name string) plotter.XYs {
	var pts plotter.XYs
	for _, r := range rows {
		v, ok := r[name]
		s, hasStep := r["step"]
		if !ok || !hasStep || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		pts = append(pts, plotter.XY{X: s, Y: v})
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
	return pts
}

// chart builds the plot of c, or nil when no metric has data.
func chart(c Chart, rows []map[string]float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = "step"
	if c.XLabel != "" {
		p.X.Label.Text = c.XLabel
	}
	p.Y.Label.Text = c.YLabel
	p.Add(plotter.NewGrid())
	var lines []any
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, name := range c.Metrics {
		pts := series(rows, name)
		if len(pts) == 0 {
			continue
		}
		for _, pt := range pts {
			lo, hi = min(lo, pt.Y), max(hi, pt.Y)
		}
		lines = append(lines, name, pts)
	}
	if len(lines) == 0 {
		return nil, nil
	}
	if err := plotutil.AddLines(p, lines...); err != nil {
		return nil, fmt.Errorf("plot %s: %w", c.File, err)
	}
	p.Y.Min, p.Y.Max = yRange(lo, hi, len(lines)/2)
	p.Legend.Top = true
	return p, nil
}

// yRange is the y-axis of a chart whose data spans [lo, hi]: a constant
// series gets a band around its value (not a range of zero width, which
// draws the line on the frame), and the top has room for the legend (one
// row per series) so that it does not cover the data.
func yRange(lo, hi float64, series int) (float64, float64) {
	if hi-lo <= 1e-12*max(math.Abs(lo), math.Abs(hi)) {
		d := 0.1 * math.Abs(hi)
		if d == 0 {
			d = 1
		}
		lo, hi = lo-d, hi+d
	}
	span := hi - lo
	return lo - 0.05*span, hi + (0.1+0.09*float64(series))*span
}

func draw(c Chart, rows []map[string]float64, out string) (bool, error) {
	p, err := chart(c, rows)
	if err != nil || p == nil {
		return false, err
	}
	if err := p.Save(7*vg.Inch, 4*vg.Inch, out); err != nil {
		return false, fmt.Errorf("plot %s: %w", out, err)
	}
	return true, nil
}
