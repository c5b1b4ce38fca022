package reward

import (
	"context"
	"maps"
	"testing"

	"github.com/rltrain/rltrain/data"
)

// The verifiers must agree with the data package's own task checkers on
// the reference solutions and on corrupted ones.
func TestSyntheticTasksAgreeWithData(t *testing.T) {
	cases := []struct {
		task   string
		params map[string]any
		spec   Spec
	}{
		{"arithmetic", nil, Spec{Type: "arithmetic"}},
		{"arithmetic", map[string]any{"format": "text"}, Spec{Type: "arithmetic"}},
		{"countdown", nil, Spec{Type: "countdown", Params: map[string]any{"use_all": true}}},
		{"countdown", map[string]any{"use_all": false, "ops": "+-*/"}, Spec{Type: "countdown"}},
	}
	corrupt := []func(string) string{
		func(s string) string { return s },
		func(s string) string { return s + "1" },
		func(s string) string { return "1" + s },
		func(s string) string { return s[:len(s)/2] },
		func(s string) string { return s + "\nextra 99" },
	}
	for _, c := range cases {
		task, err := data.NewTask(c.task, c.params)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Build(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		examples := data.EvalSet(task, 1, 200)
		var samples []Sample
		var want []float64
		for _, ex := range examples {
			for _, f := range corrupt {
				completion := f(ex.Answer)
				fields := maps.Clone(ex.Fields)
				if fields == nil {
					fields = map[string]any{}
				}
				fields["answer"] = ex.Answer // the trainer passes Example.Answer this way
				samples = append(samples, Sample{Prompt: ex.Prompt, Completion: completion, Fields: fields})
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
