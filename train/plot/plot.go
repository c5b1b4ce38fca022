// Package plot draws a run's metrics.jsonl as PNG charts: reward,
// accuracy, completion length, KL, entropy, clip ratio and throughput
// against the step.
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
}

// Charts are the standard charts of a run.
var Charts = []Chart{
	{"reward.png", "Reward", "reward", []string{"reward", "eval/reward"}},
	{"accuracy.png", "Held-out accuracy", "accuracy", []string{"eval/accuracy"}},
	{"length.png", "Completion length", "tokens", []string{"completions/mean_length", "eval/mean_length"}},
	{"kl.png", "KL", "nats/token", []string{"kl", "ppo_kl", "kl_reward"}},
	{"entropy.png", "Entropy", "nats/token", []string{"entropy"}},
	{"clip_ratio.png", "Clip ratio", "fraction of tokens", []string{"clip_ratio/low", "clip_ratio/high"}},
	{"throughput.png", "Throughput", "tokens/s", []string{"perf/throughput"}},
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

func draw(c Chart, rows []map[string]float64, out string) (bool, error) {
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = "step"
	p.Y.Label.Text = c.YLabel
	p.Add(plotter.NewGrid())
	var lines []any
	for _, name := range c.Metrics {
		pts := series(rows, name)
		if len(pts) == 0 {
			continue
		}
		lines = append(lines, name, pts)
	}
	if len(lines) == 0 {
		return false, nil
	}
	if err := plotutil.AddLines(p, lines...); err != nil {
		return false, fmt.Errorf("plot %s: %w", c.File, err)
	}
	p.Legend.Top = true
	if err := p.Save(7*vg.Inch, 4*vg.Inch, out); err != nil {
		return false, fmt.Errorf("plot %s: %w", out, err)
	}
	return true, nil
}
