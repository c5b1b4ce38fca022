package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/model/safetensors"
)

const python = "/usr/bin/python3"

func tinyModelDir(t *testing.T, arch string) string {
	t.Helper()
	raw := `{"architectures":["` + arch + `"],"vocab_size":97,"hidden_size":64,"intermediate_size":96,
		"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"rms_norm_eps":1e-5,
		"bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":false}`
	cfg, err := model.ParseConfig([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return saveRandomModel(t, cfg, 3, 0.3, safetensors.F32)
}

// saveRandomModel writes a model of cfg with weights drawn from seed with
// standard deviation std, in a new directory it returns.
func saveRandomModel(t *testing.T, cfg model.Config, seed uint64, std float64, dt safetensors.DType) string {
	t.Helper()
	m, err := model.New(cfg, cpu.New(2))
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(seed, std)
	dir := filepath.Join(t.TempDir(), "model")
	if err := m.Save(dir, dt); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLogprobsMatchesPyTorch runs the CLI path on a small model and compares
// every per-token log-prob with the PyTorch reference (≤ 1e-4 relative to
// the largest magnitude).
func TestLogprobsMatchesPyTorch(t *testing.T) {
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		t.Skipf("PyTorch reference unavailable (%v): run `make setup`", err)
	}
	dir := tinyModelDir(t, "LlamaForCausalLM")
	seqs := [][]int32{{1, 5, 7, 9, 11, 13, 90}, {3, 3}, {96, 0, 14, 15, 92, 17, 18, 19, 20, 21, 22, 23}}
	var in strings.Builder
	for _, s := range seqs {
		b, _ := json.Marshal(map[string]any{"ids": s})
		in.Write(b)
		in.WriteString("\n")
	}
	inPath := writeFile(t, t.TempDir(), "in.jsonl", in.String())
	var out bytes.Buffer
	if err := runLogprobs(&out, logprobsFlags{modelDir: dir, input: inPath, batch: 2, threads: 2, temperature: 1}); err != nil {
		t.Fatal(err)
	}

	// Reference: one padded batch.
	T := 12
	ids := make([][]int32, len(seqs))
	lens := make([]int, len(seqs))
	for i, s := range seqs {
		ids[i] = make([]int32, T)
		copy(ids[i], s)
		lens[i] = len(s)
	}
	refIn, _ := json.Marshal(map[string]any{"ids": ids, "lens": lens})
	refInPath, refOut := filepath.Join(t.TempDir(), "ref.json"), filepath.Join(t.TempDir(), "ref.safetensors")
	os.WriteFile(refInPath, refIn, 0o644)
	root, _ := filepath.Abs("../..")
	if b, err := exec.Command(python, filepath.Join(root, "scripts/torch_ref.py"), "forward", "--model", dir, "--input", refInPath, "--out", refOut).CombinedOutput(); err != nil {
		t.Fatalf("reference: %v\n%s", err, b)
	}
	ref, _, err := safetensors.ReadFile(refOut)
	if err != nil {
		t.Fatal(err)
	}
	refLP := ref["logprobs"].Data

	sc := bufio.NewScanner(&out)
	var worst, scale float64
	for i := 0; sc.Scan(); i++ {
		var got logprobsOut
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Logprobs) != len(seqs[i]) || got.Logprobs[0] != nil {
			t.Fatalf("line %d: %d log-probs, first %v", i, len(got.Logprobs), got.Logprobs[0])
		}
		for j := 1; j < len(seqs[i]); j++ {
			want := float64(refLP[i*T+j])
			worst = max(worst, math.Abs(*got.Logprobs[j]-want))
			scale = max(scale, math.Abs(want))
		}
	}
	if worst/scale > 1e-4 {
		t.Errorf("log-probs differ from PyTorch: max abs %.3g (scale %.3g)", worst, scale)
	}
}

func TestLogprobsBadInput(t *testing.T) {
	dir := tinyModelDir(t, "LlamaForCausalLM")
	for _, tc := range []struct{ in, want string }{
		{`{"ids":[1,2]}` + "\n" + `{"ids":[1,` + "\n", "in.jsonl:2:"},
		{`{"ids":[1,200]}`, "outside the vocabulary"},
		{`{"ids":[]}`, "empty sequence"},
		{`{"tokens":[1]}`, `unknown field "tokens"`},
	} {
		p := writeFile(t, t.TempDir(), "in.jsonl", tc.in)
		err := runLogprobs(&bytes.Buffer{}, logprobsFlags{modelDir: dir, input: p, batch: 4, temperature: 1})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("input %q: error %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
}
