package rollout

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/rltrain/rltrain/model/safetensors"
)

const python = "/usr/bin/python3"

// torchScript is scripts/torch_ref.py, found from this file's directory.
func torchScript(t *testing.T) string {
	t.Helper()
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		t.Skipf("PyTorch reference unavailable (%v): run `make setup`", err)
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "scripts", "torch_ref.py")
}

// TestGreedyMatchesPyTorch compares greedy generation (temperature 0, one
// sample per prompt, stopping on EOS) with the argmax continuation of the
// PyTorch reference on the same weights: ids must match exactly and
// log-probs within 1e-4.
func TestGreedyMatchesPyTorch(t *testing.T) {
	script := torchScript(t)
	m := newModel(t, tinyConfig(), 2, 8)
	dir := filepath.Join(t.TempDir(), "model")
	if err := m.Save(dir, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	ids := randomPrompts(4, 1, 30, m.Cfg.Vocab, 8)
	cfg := DefaultConfig()
	cfg.GroupSize, cfg.Temperature, cfg.MaxNewTokens, cfg.MaxBatch = 1, 0, 48, 3
	comps, _ := generate(t, m, cfg, Prompts(ids), nil)

	in, _ := json.Marshal(map[string]any{"ids": ids})
	inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	if err := os.WriteFile(inPath, in, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, script, "generate", "--model", dir, "--input", inPath,
		"--max-new-tokens", "48", "--eos", "2", "--out", outPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("torch_ref.py generate: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		IDs      [][]int32   `json:"ids"`
		Logprobs [][]float64 `json:"logprobs"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i, c := range comps {
		if !slices.Equal(c.IDs, ref.IDs[i]) {
			t.Fatalf("prompt %d: greedy ids\n%v\nPyTorch\n%v", i, c.IDs, ref.IDs[i])
		}
		for j, lp := range c.Logprobs {
			worst = max(worst, math.Abs(float64(lp)-ref.Logprobs[i][j]))
		}
	}
	t.Logf("%d prompts, ids equal, max |Δ log-prob| = %.2g", len(ids), worst)
	if worst > 1e-4 {
		t.Fatalf("log-probs differ from PyTorch by %.3g", worst)
	}
}
