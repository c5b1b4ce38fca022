package rollout

import (
	"math/rand/v2"
	"testing"

	"github.com/rltrain/rltrain/model"
)

// TestLoRALogprobsMatchTrainerRecompute: a model with a LoRA adapter
// attached samples through the adapter (unmerged), and every returned
// log-prob equals the trainer's recomputation through the adapter within
// logprobTol, in the default and the batch-invariant modes; the adapter
// does change the sampled distribution (the base model's log-probs of the
// same tokens differ).
func TestLoRALogprobsMatchTrainerRecompute(t *testing.T) {
	m := newModel(t, tinyConfig(), 2, 3)
	a, err := model.NewAdapter(m.Cfg, model.LoRAConfig{R: 8, Alpha: 16, Targets: model.AllLinear}, m.Backend())
	if err != nil {
		t.Fatal(err)
	}
	host := make([]float32, a.NumParams())
	r := rand.New(rand.NewPCG(4, 4))
	for i := range host {
		host[i] = float32(r.NormFloat64() * 0.15)
	}
	m.Backend().Upload(a.Params, host)
	if err := m.Attach(a); err != nil {
		t.Fatal(err)
	}
	ids := randomPrompts(5, 3, 21, m.Cfg.Vocab, 2)
	for _, tc := range []struct {
		name string
		mut  func(*Config)
	}{
		{"temperature 0.8", func(c *Config) { c.Temperature = 0.8 }},
		{"batch_invariant", func(c *Config) { c.MaxBatch, c.BatchInvariant = 5, true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.GroupSize, cfg.MaxNewTokens, cfg.BlockSize, cfg.KVCacheMB = 3, 30, 4, 1
			tc.mut(&cfg)
			comps, _ := generate(t, m, cfg, Prompts(ids), nil)
			invTemp := float32(cfg.Sampling.InvTemp())
			want := recompute(t, m, ids, comps, invTemp)
			base := recompute(t, m.Base(), ids, comps, invTemp)
			worst, moved := 0.0, 0.0
			for i, c := range comps {
				worst = max(worst, maxAbsDiff(c.Logprobs, want[i]))
				moved = max(moved, maxAbsDiff(base[i], want[i]))
			}
			t.Logf("max |Δ log-prob| / max(1, |log-prob|) = %.2g; the base model's differ by %.2g", worst, moved)
			if worst > logprobTol {
				t.Fatalf("log-probs differ from the recomputation by %.3g > %g", worst, logprobTol)
			}
			if moved < 1e-2 {
				t.Fatalf("the adapter hardly changes the log-probs (%.3g): the test cannot tell a missing adapter", moved)
			}
		})
	}
}
