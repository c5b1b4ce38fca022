package config

import (
	"os"
	"testing"
)

// FuzzParse: any YAML text and any --set assignment decode without a
// panic; what is accepted prints and reads back. `go test` runs the seeds
// and the checked-in crashers (testdata/fuzz); `make test` fuzzes it for a
// few seconds.
func FuzzParse(f *testing.F) {
	for _, path := range []string{"../../configs/demo.yaml", "../../configs/grpo.yaml", "../../configs/ppo.yaml"} {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(string(b), "optim.lr=2e-6")
		}
	}
	f.Add("reward: [{type: exact_match, weight: 2}]\ndata: {task: arithmetic}\n", "reward.0.weight=3")
	f.Add("train: {steps: [1, 2}\n", "train.steps=")
	f.Add("rollout:\n  group_size: &a 4\n  batch_size: *a\n", "rollout.sampling.temperature=0.7")
	f.Add("model: {init: {hidden: 1e300}}\n", "data.task_params={digits: 3}")
	f.Fuzz(func(t *testing.T, src, set string) {
		c, err := Parse([]byte(src), "f.yaml")
		if err != nil {
			return
		}
		_ = c.Set(set)
		_ = c.Validate()
		y, err := c.YAML()
		if err != nil {
			t.Fatalf("accepted config does not print: %v", err)
		}
		if _, err := Parse(y, "printed.yaml"); err != nil {
			t.Fatalf("printed config does not read back: %v\n%s", err, y)
		}
	})
}
