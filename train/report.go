package train

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rltrain/rltrain/internal/tensorboard"
	"github.com/rltrain/rltrain/optim"
	"github.com/rltrain/rltrain/rollout"
)

// What a run reports besides metrics.jsonl: TensorBoard event files
// (log.report_to: tensorboard), the elapsed time and ETA on step lines that
// no progress bar accompanies, and warnings when the step's batches carry
// no learning signal.

// reporter holds the run's TensorBoard writers: RL steps in
// <out_dir>/tensorboard, warm-up steps in <out_dir>/tensorboard/sft (a
// run of its own, so that a resumed RL phase, which tells TensorBoard to
// drop the points it will redo, leaves the warm-up's alone).
type reporter struct {
	dir    string
	rl     *tensorboard.Writer
	sft    *tensorboard.Writer
	failed bool // a write failed: reported once, then TensorBoard output stops
}

func (t *Trainer) reportsTo(sink string) bool {
	return slices.Contains(t.cfg.Log.ReportTo, sink)
}

// tbWriter opens (once) the writer of a phase and marks where the phase
// (re)starts: TensorBoard then drops the points at that step and after
// that earlier files in the directory hold (a run overwritten, or the
// steps after the checkpoint a resumed run redoes).
func (t *Trainer) tbWriter(phase string, resumeStep int) *tensorboard.Writer {
	r := &t.report
	if !t.reportsTo("tensorboard") || r.failed || !t.leader() {
		return nil
	}
	w := &r.rl
	dir := filepath.Join(t.outDir, "tensorboard")
	if phase == "sft" {
		w, dir = &r.sft, filepath.Join(dir, "sft")
	}
	if *w != nil {
		return *w
	}
	now := time.Now()
	tw, err := tensorboard.Create(dir, now)
	if err == nil {
		from := 0
		if resumeStep > 0 {
			from = resumeStep + 1
		}
		err = tw.Restart(int64(from), now)
	}
	if err != nil {
		t.reportFailed(err)
		return nil
	}
	*w = tw
	return tw
}

func (t *Trainer) reportFailed(err error) {
	t.report.failed = true
	t.logf("warning: %v; TensorBoard output stops (metrics.jsonl is still written)", err)
}

// tbScalars writes one step's metrics to TensorBoard.
func (t *Trainer) tbScalars(phase string, step, resumeStep int, m map[string]float64) {
	w := t.tbWriter(phase, resumeStep)
	if w == nil {
		return
	}
	err := w.Scalars(int64(step), time.Now(), m)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		t.reportFailed(err)
	}
}

// tbText writes text (samples) at an RL step.
func (t *Trainer) tbText(step int, tag, text string) {
	w := t.tbWriter("rl", t.resumedAt)
	if w == nil {
		return
	}
	err := w.Text(int64(step), time.Now(), tag, text)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		t.reportFailed(err)
	}
}

func (r *reporter) close() error {
	var first error
	for _, w := range []*tensorboard.Writer{r.rl, r.sft} {
		if w != nil {
			if err := w.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	r.rl, r.sft = nil, nil
	return first
}

// sampleMarkdown renders logged samples for TensorBoard's text plugin.
func sampleMarkdown(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("    " + strings.ReplaceAll(l, "\n", "\n    ") + "\n\n")
	}
	return b.String()
}

// elapsedETA is " elapsed 1m2s  eta 3m4s" for a step line, from the time
// and step at which this process started stepping.
func elapsedETA(start time.Time, startStep, step, total int) string {
	el := time.Since(start)
	s := "  elapsed " + el.Round(time.Second).String()
	if done := step - startStep; done > 0 && total > step {
		eta := time.Duration(float64(el) / float64(done) * float64(total-step))
		s += "  eta " + eta.Round(time.Second).String()
	}
	return s
}

// signalPatience is how many steps in a row without a learning signal are
// tolerated before warning.
const signalPatience = 3

// checkSignal warns when the step's rollouts cannot move the policy: every
// group's rewards equal (all GRPO-style advantages zero), or, for DRPO,
// no group with both a correct and an incorrect completion. The warning is
// repeated every signalPatience steps while it lasts.
func (t *Trainer) checkSignal(step int, m map[string]float64) {
	if t.alg.Loss == optim.LossDRPO {
		if v, ok := m["drpo/mixed_groups"]; ok && v == 0 {
			t.noMixed++
		} else {
			t.noMixed = 0
		}
		if t.noMixed > 0 && t.noMixed%signalPatience == 0 {
			t.logf("warning: no learning signal: for %d steps (through step %d) no group had both a correct and an incorrect completion, so DRPO has nothing to contrast; make the task easier or harder, raise rollout.group_size, or check eval.correct_reward (%s) and eval.correct_threshold (%g)",
				t.noMixed, step, t.correctName(), t.cfg.Eval.CorrectThreshold)
		}
		return
	}
	if t.alg.Advantage == optim.AdvGAE {
		return // the critic's baseline gives signal even to equal rewards
	}
	if v, ok := m["frac_reward_zero_std"]; ok && v >= 1 {
		t.zeroStd++
	} else {
		t.zeroStd = 0
	}
	if t.zeroStd > 0 && t.zeroStd%signalPatience == 0 {
		t.logf("warning: no learning signal: for %d steps (through step %d) every group's completions got the same reward (frac_reward_zero_std 1), so every advantage is 0; make the task easier or harder, raise rollout.group_size or rollout.temperature, or use rewards with partial credit (rollout.filter_zero_std resamples such groups)",
			t.zeroStd, step)
	}
}

// mixedGroups is the fraction of a step's groups with both a correct and
// an incorrect completion (what DRPO contrasts).
func (t *Trainer) mixedGroups(groups []*rolledGroup) float64 {
	if len(groups) == 0 {
		return math.NaN()
	}
	mixed := 0
	for _, g := range groups {
		var pos, neg bool
		for si := range g.comps {
			if t.isCorrect(g, si) {
				pos = true
			} else {
				neg = true
			}
		}
		if pos && neg {
			mixed++
		}
	}
	return float64(mixed) / float64(len(groups))
}

// consoleKL is the KL the run applies, for the step line: the in-reward
// penalty's when algorithm.kl_in is reward (the loss then carries none).
func consoleKL(m map[string]float64) (float64, bool) {
	if v, ok := m["kl_reward"]; ok {
		return v, true
	}
	v, ok := m["kl"]
	return v, ok
}

func fmtSample(step, gi, si int, reward float64, finish rollout.FinishReason, prompt, completion string) string {
	return fmt.Sprintf("sample (step %d, prompt %d, completion %d, reward %.4g, %s): %q -> %q", step, gi, si, reward, finish.Public(), prompt, completion)
}
