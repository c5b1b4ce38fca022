package train

import (
	"fmt"

	"github.com/rltrain/rltrain/data"
)

// promptLimit is the longest prompt in tokens (data.max_prompt_length, or
// the model's context less one token for the completion); 0 means no
// limit is known.
func (t *Trainer) promptLimit() (int, error) {
	mp := t.pol.Model.Cfg.MaxPositions
	n := t.cfg.Data.MaxPromptLength
	switch {
	case n > 0 && mp > 1 && n >= mp:
		return 0, fmt.Errorf("data.max_prompt_length %d leaves no room for a completion in the model's %d positions", n, mp)
	case n > 0:
		return n, nil
	case mp > 1:
		return mp - 1, nil
	}
	return 0, nil
}

// where names an example for messages: its file and line, and its id.
func where(ex data.Example) string {
	if ex.Where == "" {
		return "example " + ex.ID
	}
	return fmt.Sprintf("%s (id %s)", ex.Where, ex.ID)
}

// checkPromptLengths applies data.truncation to the prompt file's examples
// when the data is loaded, so that --dry-run finds over-long prompts and a
// run never meets one mid-way: skip drops them (counted and reported once),
// error stops with the first one's file and line, left and right keep them
// for truncation when they are encoded (reported once here).
func (t *Trainer) checkPromptLengths() error {
	limit, err := t.promptLimit()
	if err != nil || limit == 0 {
		return err
	}
	t.promptMax = limit
	keep, long, first := t.promptFilter()
	mode := t.cfg.Data.Truncation
	dropTrain, dropEval, err := t.src.Filter(keep)
	if err != nil {
		return err
	}
	if *long == 0 {
		return nil
	}
	if mode == "skip" {
		t.skippedLong = dropTrain + dropEval
		t.logf("data: skipped %d prompts longer than %d tokens (%d training, %d evaluation; data.truncation: skip); the first: %s", t.skippedLong, limit, dropTrain, dropEval, *first)
	} else {
		t.logf("data: %d prompts are longer than %d tokens and will keep their %s %d tokens (data.truncation: %s); the first: %s", *long, limit, map[string]string{"left": "last", "right": "first"}[mode], limit, mode, *first)
	}
	return nil
}

// promptFilter returns data.truncation's verdict on an example (keep it,
// or an error for mode error), counting the over-long prompts in *long and
// describing the first in *first.
func (t *Trainer) promptFilter() (keep func(data.Example) (bool, error), long *int, first *string) {
	limit, mode := t.promptMax, t.cfg.Data.Truncation
	long, first = new(int), new(string)
	keep = func(ex data.Example) (bool, error) {
		if limit == 0 {
			return true, nil
		}
		text, err := t.pol.promptText(ex, t.chat)
		if err != nil {
			// Not a length problem: --dry-run and the step that samples
			// the example report it.
			return true, nil
		}
		n := len(t.pol.encodePrompt(ex, text, t.chat))
		if n <= limit {
			return true, nil
		}
		*long++
		if *first == "" {
			*first = fmt.Sprintf("%s, %d tokens", where(ex), n)
		}
		switch mode {
		case "error":
			return false, fmt.Errorf("data: %s: the prompt has %d tokens, more than the %d of data.max_prompt_length (or the model's context); set data.truncation to skip, left or right to go on", where(ex), n, limit)
		case "skip":
			return false, nil
		}
		return true, nil
	}
	return keep, long, first
}

// fitPrompt applies data.truncation to an encoded prompt that is too long
// (one of a built-in task's, or one data.truncation left or right kept).
func (t *Trainer) fitPrompt(ex data.Example, ids []int32) ([]int32, error) {
	limit := t.promptMax
	if limit == 0 || len(ids) <= limit {
		return ids, nil
	}
	switch t.cfg.Data.Truncation {
	case "left":
		t.truncated++
		return ids[len(ids)-limit:], nil
	case "right":
		t.truncated++
		return ids[:limit], nil
	}
	return nil, fmt.Errorf("%s: the prompt has %d tokens, more than the %d of data.max_prompt_length (or the model's context); set data.truncation to left or right", where(ex), len(ids), limit)
}

// promptMetrics adds the prompt-length counters to a step's metrics.
func (t *Trainer) promptMetrics(m map[string]float64) {
	if mode := t.cfg.Data.Truncation; t.promptMax > 0 && (mode == "left" || mode == "right") {
		m["prompts/truncated"] = float64(t.truncated)
	}
	t.truncated = 0
	if t.skippedLong > 0 {
		m["data/skipped_long_prompts"] = float64(t.skippedLong)
	}
}
