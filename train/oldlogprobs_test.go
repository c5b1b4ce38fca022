package train

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/rltrain/rltrain/kernels/cpu"
)

// stepMetrics reads the RL steps' lines of a run's metrics file (those
// with a reward).
func stepMetrics(t *testing.T, dir string) []map[string]float64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]float64
	for _, line := range splitLines(data) {
		var m map[string]float64
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		if _, rl := m["reward"]; rl {
			out = append(out, m)
		}
	}
	return out
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		if i > 0 {
			out = append(out, b[:i])
		}
		b = b[min(i+1, len(b)):]
	}
	return out
}

// TestOldLogprobsRollout: with algorithm.old_logprobs: rollout and four
// minibatch updates per step, the old-policy pass is skipped and the
// trainer's forward pass reproduces the sampler's log-probs exactly
// (rollout/logp_diff_max = 0 at every step, measured on the first
// minibatch, before any update); the default recomputes them and reports
// the difference too; a single on-policy update reports it from its own
// forward pass.
func TestOldLogprobsRollout(t *testing.T) {
	if !cpu.New(1).SetRowInvariant(false) {
		t.Skip("no row-invariant products on this CPU (no AVX-512)")
	}
	for _, tc := range []struct {
		name      string
		sets      []string
		recompute bool
	}{
		{"rollout", []string{"algorithm.old_logprobs=rollout", "train.mini_batch_size=2", "rollout.temperature=0.7"}, false},
		{"recompute", []string{"train.mini_batch_size=2"}, true},
		{"on-policy", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sets := append([]string{"train.steps=3", "checkpoint.every=0", "rollout.batch_size=4", "rollout.group_size=2"}, tc.sets...)
			runConfig(t, parseConfig(t, tinyYAML(dir), sets...), Options{})
			steps := stepMetrics(t, dir)
			if len(steps) != 3 {
				t.Fatalf("%d steps logged", len(steps))
			}
			for _, m := range steps {
				d, ok := m["rollout/logp_diff_max"]
				if !ok || m["rollout/logp_diff_mean"] > d {
					t.Fatalf("step %v: logp_diff max %v (logged %v), mean %v", m["step"], d, ok, m["rollout/logp_diff_mean"])
				}
				_, recomputed := m["timing_s/old_logprob"]
				if recomputed != tc.recompute {
					t.Errorf("step %v: old-policy pass ran: %v, want %v", m["step"], recomputed, tc.recompute)
				}
				if tc.name == "rollout" && d != 0 {
					t.Errorf("step %v: rollout/logp_diff_max %v, want exactly 0", m["step"], d)
				}
			}
		})
	}
}
