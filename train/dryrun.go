package train

import (
	"fmt"
	"io"

	"github.com/rltrain/rltrain/data"
)

// DryRunReport is what `rltrain run --dry-run` checked: every prompt
// rendered (through the chat template where it applies) and tokenized.
type DryRunReport struct {
	TrainExamples int // 0 for a built-in task's endless stream
	EvalExamples  int
	Skipped       int // malformed lines or rows skipped
	SFTExamples   int // the warm-up's file examples (0: none, or the task's)
	// Longest is the longest prompt in tokens, and where it is.
	Longest   int
	LongestID string
	LongestIn string // "train", "eval" or "sft"
	// TaskPrompts is how many of a built-in task's training prompts were
	// sampled for the check (its stream has no end).
	TaskPrompts int
}

// taskDryRunPrompts is how many prompts of a task stream a dry run checks.
const taskDryRunPrompts = 256

// DryRun renders and tokenizes every train, eval and warm-up prompt as the
// run would, so a dataset that cannot train (a chat prompt without a
// template, a bad field) fails now rather than at the first step or eval.
// It consumes nothing the run would use.
func (t *Trainer) DryRun() (*DryRunReport, error) {
	r := &DryRunReport{TrainExamples: t.src.TrainSize, EvalExamples: len(t.src.Eval), Skipped: t.src.Skipped}
	check := func(where string, exs []data.Example) error {
		for _, ex := range exs {
			text, err := t.pol.promptText(ex, t.chat)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			ids := t.pol.encodePrompt(ex, text, t.chat)
			if len(ids) == 0 {
				return fmt.Errorf("%s: example %s: the prompt encodes to no tokens", where, ex.ID)
			}
			if len(ids) > r.Longest {
				r.Longest, r.LongestID, r.LongestIn = len(ids), ex.ID, where
			}
		}
		return nil
	}
	train := t.src.TrainExamples
	if t.src.Task != nil {
		stream := data.NewTaskStream(t.src.Task, uint64(t.cfg.Train.Seed))
		train = stream.Next(taskDryRunPrompts)
		r.TaskPrompts = len(train)
	}
	if err := check("train", train); err != nil {
		return r, err
	}
	if err := check("eval", t.src.Eval); err != nil {
		return r, err
	}
	if t.cfg.SFT.Steps > 0 && (t.cfg.SFT.Data != "" || t.src.Task == nil) {
		exs, err := t.sftFileExamples()
		if err != nil {
			return r, err
		}
		r.SFTExamples = len(exs)
		if err := check("sft", exs); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Print writes the report as `rltrain run --dry-run` shows it.
func (r *DryRunReport) Print(w io.Writer, maxPositions, maxNewTokens int) {
	train := fmt.Sprint(r.TrainExamples)
	if r.TaskPrompts > 0 {
		train = fmt.Sprintf("endless (a built-in task; %d checked)", r.TaskPrompts)
	}
	fmt.Fprintf(w, "train examples: %s, eval examples: %d, skipped: %d\n", train, r.EvalExamples, r.Skipped)
	if r.SFTExamples > 0 {
		fmt.Fprintf(w, "warm-up examples: %d\n", r.SFTExamples)
	}
	if r.Longest > 0 {
		fmt.Fprintf(w, "longest prompt: %d tokens (%s example %s)", r.Longest, r.LongestIn, r.LongestID)
		if maxPositions > 0 && r.Longest+maxNewTokens > maxPositions {
			fmt.Fprintf(w, "; with rollout.max_new_tokens %d it exceeds the model's %d positions", maxNewTokens, maxPositions)
		}
		fmt.Fprintln(w)
	}
}
