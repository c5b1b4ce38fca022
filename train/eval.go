package train

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/rltrain/rltrain/data"
	"github.com/rltrain/rltrain/rollout"
	"github.com/rltrain/rltrain/train/config"
)

// EvalResult summarises an evaluation.
type EvalResult struct {
	Prompts int
	// Samples per prompt (1 for greedy).
	Samples int
	// Accuracy is the fraction of the judged completions judged correct:
	// scored at least eval.correct_threshold by eval.correct_reward (by
	// default the built-in task's verifier, or else the first reward).
	// Completions on which that reward failed are not judged (Excluded),
	// as a failed reward excludes a sample from training: they count
	// neither as correct nor as wrong. NaN when none was judged.
	Accuracy float64
	// PassAtK is the fraction of prompts with at least one correct
	// completion among Samples, over the prompts with a judged one.
	PassAtK float64
	// Excluded counts the completions left out of Accuracy and PassAtK.
	Excluded   int
	MeanReward float64
	MeanLength float64
	// Examples holds the first few (prompt, completion, correct) triples.
	Examples []EvalExample
}

// EvalExample is one scored completion, for display.
type EvalExample struct {
	Prompt, Completion string
	Correct            bool
	Reward             float64
}

// Metrics renders the result under eval/ names.
func (r *EvalResult) Metrics() map[string]float64 {
	m := map[string]float64{
		"eval/accuracy":    r.Accuracy,
		"eval/reward":      r.MeanReward,
		"eval/mean_length": r.MeanLength,
	}
	if r.Samples > 1 {
		m[fmt.Sprintf("eval/pass@%d", r.Samples)] = r.PassAtK
	}
	if r.Excluded > 0 {
		m["eval/excluded"] = float64(r.Excluded)
	}
	return m
}

// Evaluate generates greedily, one completion per example, and scores it.
func (t *Trainer) Evaluate(exs []data.Example) (*EvalResult, error) {
	return t.EvaluateSampled(exs, 1, 0)
}

// EvaluateSampled generates k completions per example at the given
// temperature (0: greedy, then k must be 1) and scores them.
func (t *Trainer) EvaluateSampled(exs []data.Example, k int, temperature float64) (*EvalResult, error) {
	if k < 1 {
		return nil, fmt.Errorf("eval: samples must be at least 1, got %d", k)
	}
	if temperature == 0 && k > 1 {
		return nil, fmt.Errorf("eval: %d samples per prompt need a temperature above 0", k)
	}
	// Evaluation samples at its own temperature, without the training
	// run's truncation of the distribution.
	sp := t.cfg.Rollout.Sampling
	sp.Temperature, sp.TopK, sp.TopP, sp.MinP = temperature, 0, 1, 0
	opts := rollout.Options{GroupSize: k, Sampling: &sp, Independent: true}
	res := &EvalResult{Prompts: len(exs), Samples: k}
	if len(exs) == 0 {
		return res, nil
	}
	var tally evalTally
	// Each rank samples its share of every chunk (generate splits it).
	chunk := max(1, t.engine.Cfg.BatchLimit()/k) * t.world().Size()
	for lo := 0; lo < len(exs); lo += chunk {
		part := exs[lo:min(lo+chunk, len(exs))]
		// Eval streams use their own index range so they never share a
		// sampling stream with training prompts.
		groups, _, err := t.generate(part, nil, 1<<62+uint64(lo), opts)
		if err == nil {
			_, err = t.score(context.Background(), groups)
		}
		if err != nil {
			return nil, fmt.Errorf("eval: %w", err)
		}
		for _, g := range groups {
			if err := t.tallyGroup(&tally, res, g); err != nil {
				return nil, err
			}
		}
	}
	tally.result(res)
	switch {
	case tally.judged == 0:
		// Every sample's judging reward failed: there is no accuracy to
		// report (null in metrics.jsonl), not an accuracy of zero.
		t.logf("eval: %s failed on every sample; accuracy is unknown (see the reward errors above)", t.correctName())
	case res.Excluded > 0:
		t.logf("eval: %s failed on %d of %d samples; accuracy is over the other %d", t.correctName(), res.Excluded, res.Excluded+tally.judged, tally.judged)
	}
	return res, nil
}

// evalTally accumulates an evaluation's counts over its groups.
type evalTally struct {
	correct, judged, rewardN int
	passed, promptsJudged    int
	rewardSum, lenSum        float64
	samples                  int
}

// tallyGroup judges a group's completions into tally, keeps the first few
// as res's examples and dumps them when asked.
func (t *Trainer) tallyGroup(tally *evalTally, res *EvalResult, g *rolledGroup) error {
	pass, judged := false, false
	for si, c := range g.comps {
		ok := t.isCorrect(g, si)
		if t.judged(g, si) {
			tally.judged++
			judged = true
		}
		if ok {
			tally.correct++
			pass = true
		}
		if r := g.totals[si]; !math.IsNaN(r) {
			tally.rewardSum += r
			tally.rewardN++
		}
		tally.lenSum += float64(len(c.IDs))
		tally.samples++
		if len(res.Examples) < 8 {
			res.Examples = append(res.Examples, EvalExample{Prompt: g.text, Completion: c.Text, Correct: ok, Reward: g.totals[si]})
		}
		if t.evalDump != nil {
			if err := t.dumpGeneration(g, si, ok); err != nil {
				return fmt.Errorf("eval: dump: %w", err)
			}
		}
	}
	if pass {
		tally.passed++
	}
	if judged {
		tally.promptsJudged++
	}
	return nil
}

// result fills res's rates from the counts: accuracy and pass@k over what
// was judged (NaN when nothing was), length over every sample, reward over
// the samples not excluded.
func (tally *evalTally) result(res *EvalResult) {
	ratio := func(a, b int) float64 {
		if b == 0 {
			return math.NaN()
		}
		return float64(a) / float64(b)
	}
	res.Accuracy = ratio(tally.correct, tally.judged)
	res.PassAtK = ratio(tally.passed, tally.promptsJudged)
	res.Excluded = tally.samples - tally.judged
	res.MeanLength = tally.lenSum / float64(tally.samples)
	res.MeanReward = math.NaN()
	if tally.rewardN > 0 {
		res.MeanReward = tally.rewardSum / float64(tally.rewardN)
	}
}

// correctIndex resolves eval.correct_reward to the reward component that
// judges correctness: the named reward, or else a built-in task's own
// verifier (-1), or else the first reward.
func correctIndex(cfg *config.Config, task bool, names []string) (int, error) {
	if name := cfg.Eval.CorrectReward; name != "" {
		if i := slices.Index(names, name); i >= 0 {
			return i, nil
		}
		return 0, fmt.Errorf("eval.correct_reward: %q is not the name of a reward; the rewards are %s", name, strings.Join(names, ", "))
	}
	if task {
		return -1, nil
	}
	return 0, nil
}

// correctName names what judges correctness, for messages.
func (t *Trainer) correctName() string {
	switch {
	case t.correctIndex < 0 && t.src != nil && t.src.Task != nil:
		return "the " + t.src.Task.Name() + " task's verifier"
	case t.rewards != nil && t.correctIndex >= 0 && t.correctIndex < len(t.rewards.Names()):
		return t.rewards.Names()[t.correctIndex]
	}
	return "the first reward"
}

// judged reports whether sample si of a group could be judged: its
// eval.correct_reward did not fail on it (a task's verifier never fails).
func (t *Trainer) judged(g *rolledGroup, si int) bool {
	if t.correctIndex < 0 {
		return true
	}
	return t.correctIndex < len(g.comp) && !math.IsNaN(g.comp[t.correctIndex][si])
}

// isCorrect judges sample si of a group: its eval.correct_reward score is
// at least eval.correct_threshold.
func (t *Trainer) isCorrect(g *rolledGroup, si int) bool {
	th := t.cfg.Eval.CorrectThreshold
	if t.correctIndex < 0 {
		return t.src.Task.Score(g.ex, g.comps[si].Text) >= th
	}
	if t.correctIndex >= len(g.comp) {
		return false
	}
	v := g.comp[t.correctIndex][si]
	return !math.IsNaN(v) && v >= th
}

// EvalExamples is the evaluation set of the run.
func (t *Trainer) EvalExamples() []data.Example { return t.src.Eval }

// DumpEvaluations makes the evaluations write every generation to w, one
// JSON object a line (EvalDumpLine).
func (t *Trainer) DumpEvaluations(w io.Writer) { t.evalDump = w }

// EvalDumpLine is one generation of an evaluation as written by
// DumpEvaluations (rltrain eval --dump).
type EvalDumpLine struct {
	ID           string              `json:"id"`
	Sample       int                 `json:"sample"`
	Prompt       string              `json:"prompt"` // as rendered, chat template included
	Completion   string              `json:"completion"`
	FinishReason string              `json:"finish_reason"` // stop or length
	Tokens       int                 `json:"tokens"`
	Reward       *float64            `json:"reward"`  // the combined reward; null when excluded
	Rewards      map[string]*float64 `json:"rewards"` // each reward function's score; null when it failed
	Correct      bool                `json:"correct"`
	Answer       string              `json:"answer,omitempty"`
}

func finiteOrNil(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func (t *Trainer) dumpGeneration(g *rolledGroup, si int, correct bool) error {
	c := g.comps[si]
	line := EvalDumpLine{ID: g.ex.ID, Sample: si, Prompt: g.text, Completion: c.Text, FinishReason: c.Finish.Public(),
		Tokens: len(c.IDs), Correct: correct, Answer: g.ex.Answer, Rewards: map[string]*float64{}}
	if !g.excl[si] {
		line.Reward = finiteOrNil(g.totals[si])
	}
	for k, name := range t.rewards.Names() {
		if k < len(g.comp) {
			line.Rewards[name] = finiteOrNil(g.comp[k][si])
		}
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	_, err = t.evalDump.Write(append(b, '\n'))
	return err
}
