package model

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/model/safetensors"
)

// TestAbsurdConfigSizes: a config.json whose sizes are absurd, or merely
// disagree with the weights, fails with a message naming the field before
// anything of the claimed size is allocated (no makeslice panic, no
// minutes at gigabytes of RSS, no 180,000-line error).
func TestAbsurdConfigSizes(t *testing.T) {
	cfg := testConfigs()["llama"]
	m := randomModel(t, cfg, 3)
	dir := t.TempDir()
	if err := m.Save(dir, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		edits map[string]any
		want  string
	}{
		{"vocab 2^40", map[string]any{"vocab_size": 1 << 40}, "vocab_size 1099511627776 is larger than rltrain supports"},
		{"hidden 2^31", map[string]any{"hidden_size": 1 << 31, "head_dim": nil}, "hidden_size 2147483648 is larger"},
		{"1e8 layers", map[string]any{"num_hidden_layers": 100000000}, "num_hidden_layers 100000000 is larger"},
		{"1000 layers, weights for 2", map[string]any{"num_hidden_layers": 1000}, "config.json says num_hidden_layers 1000, the weights hold 2 layers"},
		{"vocab 4M, weights for 97", map[string]any{"vocab_size": 4000000}, `"model.embed_tokens.weight" has shape [97 64], config wants [4000000 64]`},
		{"ffn 2^20", map[string]any{"intermediate_size": 1 << 20}, "config wants [1048576 64]"},
		{"params", map[string]any{"hidden_size": 1 << 16, "num_attention_heads": 64, "num_key_value_heads": 64, "intermediate_size": 1 << 20, "num_hidden_layers": 1 << 10, "head_dim": nil}, "parameters"},
		{"context 2^40", map[string]any{"max_position_embeddings": 1 << 40}, "max_position_embeddings 1099511627776 is larger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var js map[string]any
			if err := json.Unmarshal(orig, &js); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.edits {
				if v == nil {
					delete(js, k)
				} else {
					js[k] = v
				}
			}
			b, _ := json.Marshal(js)
			if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Load(dir, cpu.New(1))
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if n := strings.Count(err.Error(), "\n"); n > 12 {
				t.Errorf("the error has %d lines", n+1)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d MiB before failing", alloc>>20)
			}
		})
	}
}
