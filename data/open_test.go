package data

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeJSONL(t *testing.T, name string, n int, extra string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"prompt": "q%d", "answer": "%d"}`+"\n", i, i)
	}
	b.WriteString(extra)
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpen(t *testing.T) {
	train := writeJSONL(t, "train.jsonl", 20, "not json\n")
	eval := writeJSONL(t, "eval.jsonl", 5, "")
	skip := JSONLOptions{SkipBadLines: true}
	tests := []struct {
		name                string
		spec                Spec
		trainSize, evalSize int
		skipped             int
	}{
		{"task", Spec{Task: "countdown", EvalSize: 7, Seed: 1}, 0, 7, 0},
		{"file with eval file", Spec{Train: train, Eval: eval, JSONL: skip, Shuffle: true}, 20, 5, 1},
		{"file with held-out fraction", Spec{Train: train, EvalFraction: 0.25, JSONL: skip}, 15, 5, 1},
		{"file without eval", Spec{Train: train, JSONL: skip}, 20, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := Open(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if src.TrainSize != tt.trainSize || len(src.Eval) != tt.evalSize || src.Skipped != tt.skipped {
				t.Fatalf("train %d eval %d skipped %d, want %d %d %d", src.TrainSize, len(src.Eval), src.Skipped, tt.trainSize, tt.evalSize, tt.skipped)
			}
			if got := src.Train.Next(3); len(got) != 3 || got[0].Prompt == "" {
				t.Fatalf("training stream gave %v", got)
			}
			if (src.Task != nil) != (tt.spec.Task != "") {
				t.Fatalf("Task = %v for spec %+v", src.Task, tt.spec)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	train := writeJSONL(t, "train.jsonl", 4, "")
	bad := writeJSONL(t, "bad.jsonl", 2, "{\n")
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{}, "no training prompts"},
		{Spec{Train: train, Task: "arithmetic"}, "exclusive"},
		{Spec{Task: "arithmetic", TaskParams: map[string]any{"x": 1}}, `unknown parameter "x"`},
		{Spec{Train: bad}, "bad.jsonl:3: bad JSON"},
		{Spec{Train: train, Eval: train, EvalSize: 1}, "exclusive"},
		{Spec{Train: train, EvalSize: 4}, "leaves none to train on"},
	}
	for _, tt := range tests {
		if _, err := Open(tt.spec); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%+v): error %v, want %q", tt.spec, err, tt.want)
		}
	}
}
