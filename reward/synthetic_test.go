package reward_test

import (
	"context"
	"maps"
	"testing"

	"github.com/rltrain/rltrain/data"
	"github.com/rltrain/rltrain/reward"
)

// The verifiers must agree with the data package's own task checkers (the
// eval accuracy) on the reference solutions and on corrupted ones, for the
// reward specs users write and for the one a task names itself.
func TestSyntheticTasksAgreeWithData(t *testing.T) {
	cases := []struct {
		task   string
		params map[string]any
		spec   reward.Spec
	}{
		{"arithmetic", nil, reward.Spec{Type: "arithmetic"}},
		{"arithmetic", map[string]any{"format": "text"}, reward.Spec{Type: "arithmetic"}},
		{"countdown", nil, reward.Spec{Type: "countdown", Params: map[string]any{"use_all": true}}},
		{"countdown", map[string]any{"use_all": false, "ops": "+-*/"}, reward.Spec{Type: "countdown"}},
		// The reward a run gets when it configures none: the task's own.
		{"arithmetic", nil, reward.Spec{}},
		{"countdown", map[string]any{"use_all": false}, reward.Spec{}},
		{"countdown", map[string]any{"use_all": true, "format": "text"}, reward.Spec{}},
	}
	corrupt := []func(string) string{
		func(s string) string { return s },
		func(s string) string { return s + "1" },
		func(s string) string { return "1" + s },
		func(s string) string { return s[:len(s)/2] },
		func(s string) string { return s + "\nextra 99" },
		func(s string) string { return "<answer>" + s + "</answer>" },
		func(s string) string { return "The answer is " + s },
		func(s string) string { return s + ".0" },
	}
	for _, c := range cases {
		task, err := data.NewTask(c.task, c.params)
		if err != nil {
			t.Fatal(err)
		}
		if c.spec.Type == "" {
			typ, params := task.Reward()
			c.spec = reward.Spec{Type: typ, Params: params}
		}
		r, err := reward.Build(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		examples := data.EvalSet(task, 1, 200)
		var samples []reward.Sample
		var want []float64
		for _, ex := range examples {
			for _, f := range corrupt {
				completion := f(ex.Answer)
				fields := maps.Clone(ex.Fields)
				if fields == nil {
					fields = map[string]any{}
				}
				fields["answer"] = ex.Answer // the trainer passes Example.Answer this way
				samples = append(samples, reward.Sample{Prompt: ex.Prompt, Completion: completion, Fields: fields})
				want = append(want, task.Score(ex, completion))
			}
		}
		out, err := r.Score(context.Background(), samples)
		if err != nil {
			t.Fatal(err)
		}
		correct := 0
		for i := range samples {
			if out.Errs != nil && out.Errs[i] != nil {
				t.Fatalf("%s %v: %q: %v", c.task, c.params, samples[i].Completion, out.Errs[i])
			}
			if out.Values[i] != want[i] {
				t.Errorf("%s %v: prompt %q completion %q: reward %v, data says %v", c.task, c.params, samples[i].Prompt, samples[i].Completion, out.Values[i], want[i])
			}
			if want[i] == 1 {
				correct++
			}
		}
		if correct < len(examples) {
			t.Errorf("%s: only %d of %d completions correct; every reference should be", c.task, correct, len(examples))
		}
	}
}
