package config

import (
	"reflect"
	"testing"
)

func TestDiff(t *testing.T) {
	base := minimal + "reward:\n  - type: math_answer\n    params:\n      compare: exact\n"
	tests := []struct {
		name               string
		sets               []string
		harmless, breaking []string
	}{
		{"identical", nil, nil, nil},
		{"log every", []string{"log.every=10"}, []string{"log.every: 1 -> 10"}, nil},
		{"run length and checkpoints", []string{"train.steps=500", "checkpoint.every=20", "backend.threads=4"},
			[]string{"backend.threads: 0 -> 4", "checkpoint.every: 100 -> 20", "train.steps: 100 -> 500"}, nil},
		{"model shape", []string{"model.init.hidden=256"}, nil, []string{"model.init.hidden: 128 -> 256"}},
		{"advantage", []string{"algorithm.advantage=rloo"}, nil, []string{`algorithm.advantage: "grpo" -> "rloo"`}},
		{"learning rate", []string{"optim.lr=2e-6"}, nil, []string{"optim.lr: 1e-06 -> 2e-06"}},
		{"task params", []string{"data.task_params.digits=3"}, nil, []string{"data.task_params.digits: (unset) -> 3"}},
		{"reward params", []string{"reward.0.params.compare=numeric"}, nil, []string{"reward.functions.0.params.compare: exact -> numeric"}},
		{"added reward", []string{"reward.1.type=format"}, nil, []string{"reward.functions: 1 entries -> 2 entries"}},
		{"added reward param", []string{"reward.0.params.tolerance=0.01"}, nil, []string{"reward.functions.0.params.tolerance: (unset) -> 0.01"}},
		{"task eval size", []string{"data.eval_size=50"}, []string{"data.eval_size: 0 -> 50"}, nil},
		{"stop strings", []string{`rollout.stop=["\n"]`}, nil, []string{`rollout.stop: [] -> ["\n"]`}},
		{"mixed", []string{"log.sample_every=5", "rollout.group_size=4"},
			[]string{"log.sample_every: 0 -> 5"}, []string{"rollout.group_size: 8 -> 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, cur := mustParse(t, base), mustParse(t, base)
			for _, s := range tt.sets {
				if err := cur.Set(s); err != nil {
					t.Fatal(err)
				}
			}
			h, b := Diff(old, cur)
			if !reflect.DeepEqual(h, tt.harmless) || !reflect.DeepEqual(b, tt.breaking) {
				t.Fatalf("harmless %q breaking %q\nwant harmless %q breaking %q", h, b, tt.harmless, tt.breaking)
			}
		})
	}
}

func TestDiffHeldOutFromFile(t *testing.T) {
	src := "data:\n  train: p.jsonl\n  eval_size: 10\n"
	old, cur := mustParse(t, src), mustParse(t, src)
	if err := cur.Set("data.eval_size=20"); err != nil {
		t.Fatal(err)
	}
	h, b := Diff(old, cur)
	if len(h) != 0 || !reflect.DeepEqual(b, []string{"data.eval_size: 10 -> 20"}) {
		t.Fatalf("harmless %q breaking %q: held-out size of a file changes the training set", h, b)
	}
}
