package config

import (
	"testing"

	"github.com/rltrain/rltrain/data"
)

func TestDataSpecOpens(t *testing.T) {
	c := mustParse(t, minimal+"  eval_size: 3\n  task_params:\n    difficulty: 1\ntrain:\n  seed: 5\n")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	spec := c.DataSpec()
	if spec.Seed != 5 || spec.JSONL.PromptField != "prompt" || spec.TaskParams["difficulty"] != 1 {
		t.Fatalf("spec %+v", spec)
	}
	src, err := data.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.Eval) != 3 || src.Task == nil || src.Task.Name() != "arithmetic" {
		t.Fatalf("opened %+v", src)
	}
}
