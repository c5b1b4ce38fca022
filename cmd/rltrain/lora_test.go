package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/model/safetensors"
)

// foreignAdapter writes an adapter for the model in base the way another
// tool's PEFT would: a regex target_modules, options rltrain ignores
// (init_lora_weights, loftq_config, megatron_core, ...), lora_dropout
// 0.05, and random A and B.
func foreignAdapter(t *testing.T, base string) string {
	t.Helper()
	m, err := model.Load(base, cpu.New(1))
	if err != nil {
		t.Fatal(err)
	}
	lc := model.LoRAConfig{R: 6, Alpha: 12, Targets: model.Targets{Regex: `.*\.(q_proj|v_proj|o_proj|down_proj)`}}
	a, err := model.NewAdapter(m.Cfg, lc, m.Backend())
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 3))
	ts := a.HostTensors(false)
	for _, x := range ts {
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64() * 0.1)
		}
	}
	dir := filepath.Join(t.TempDir(), "adapter")
	os.MkdirAll(dir, 0o755)
	if err := safetensors.WriteFile(filepath.Join(dir, model.AdapterWeightsFile), ts, map[string]string{"format": "pt"}, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 6, "lora_alpha": 12, "lora_dropout": 0.05,
		"target_modules": lc.Targets.Regex, "bias": "none", "use_dora": false, "use_rslora": false,
		"modules_to_save": nil, "init_lora_weights": "gaussian", "loftq_config": map[string]any{}, "megatron_core": "megatron.core",
		"rank_pattern": map[string]any{}, "alpha_pattern": map[string]any{}, "fan_in_fan_out": false, "inference_mode": true,
		"base_model_name_or_path": "some/hub-model", "revision": nil, "layers_to_transform": nil, "layers_pattern": nil,
	}
	js, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, model.AdapterConfigFile), js, 0o644)
	return dir
}

func readLogprobs(t *testing.T, out *bytes.Buffer) [][]float64 {
	t.Helper()
	var all [][]float64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var l logprobsOut
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		row := make([]float64, len(l.Logprobs))
		for j, p := range l.Logprobs[1:] {
			row[j+1] = *p
		}
		all = append(all, row)
	}
	return all
}

// TestLoRACommands: logprobs --adapter agrees with the PyTorch reference
// through the same PEFT adapter (1e-4); model merge writes a model whose
// log-probs equal the base + adapter's within 1e-5 relative; generate
// --adapter samples through it; an adapter given as --model is refused
// with a hint.
func TestLoRACommands(t *testing.T) {
	base := tinyModelDir(t, "Qwen2ForCausalLM")
	adapter := foreignAdapter(t, base)
	seqs := [][]int32{{1, 5, 7, 9, 11, 13, 90}, {3, 3, 4}, {96, 0, 14, 15, 92, 17, 18, 19, 20, 21, 22, 23}}
	var in strings.Builder
	for _, s := range seqs {
		b, _ := json.Marshal(map[string]any{"ids": s})
		in.Write(b)
		in.WriteString("\n")
	}
	inPath := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(inPath, []byte(in.String()), 0o644)
	score := func(modelDir, adapterDir string) [][]float64 {
		var out bytes.Buffer
		if err := runLogprobs(&out, logprobsFlags{modelDir: modelDir, adapterDir: adapterDir, input: inPath, batch: 2, threads: 2, temperature: 1}); err != nil {
			t.Fatal(err)
		}
		return readLogprobs(t, &out)
	}
	withAdapter, plain := score(base, adapter), score(base, "")

	merged := filepath.Join(t.TempDir(), "merged")
	if log, err := execute(t, "model", "merge", "--model", base, "--adapter", adapter, "--out", merged); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	fromMerged := score(merged, "")
	var worst, moved, scale float64
	for i := range seqs {
		for j := 1; j < len(seqs[i]); j++ {
			worst = max(worst, math.Abs(fromMerged[i][j]-withAdapter[i][j]))
			moved = max(moved, math.Abs(plain[i][j]-withAdapter[i][j]))
			scale = max(scale, math.Abs(withAdapter[i][j]))
		}
	}
	if worst/scale > 1e-5 {
		t.Errorf("merged model's log-probs differ from base + adapter by %.3g relative > 1e-5", worst/scale)
	}
	if moved/scale < 1e-3 {
		t.Errorf("the adapter hardly changes the log-probs (%.3g)", moved/scale)
	}

	if err := exec.Command(python, "-c", "import torch").Run(); err == nil {
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
		if b, err := exec.Command(python, filepath.Join(root, "scripts/torch_ref.py"), "forward", "--model", base, "--adapter", adapter,
			"--input", refInPath, "--out", refOut).CombinedOutput(); err != nil {
			t.Fatalf("reference: %v\n%s", err, b)
		}
		ref, _, err := safetensors.ReadFile(refOut)
		if err != nil {
			t.Fatal(err)
		}
		var d float64
		for i := range seqs {
			for j := 1; j < len(seqs[i]); j++ {
				d = max(d, math.Abs(withAdapter[i][j]-float64(ref["logprobs"].Data[i*T+j])))
			}
		}
		if d/scale > 1e-4 {
			t.Errorf("logprobs --adapter differs from PyTorch by %.3g relative > 1e-4", d/scale)
		}
	} else {
		t.Logf("PyTorch reference unavailable (%v)", err)
	}

	f := baseGenerateFlags(base)
	f.adapterDir, f.input, f.cfg.Temperature = adapter, inPath, 0
	got := runGenerateLines(t, f)
	f.modelDir, f.adapterDir = merged, ""
	want := runGenerateLines(t, f)
	if len(got) != len(want) || len(got) != 9 {
		t.Fatalf("generate: %d and %d lines", len(got), len(want))
	}
	for i := range got {
		if len(got[i].IDs) == 0 || got[i].IDs[0] != want[i].IDs[0] {
			t.Errorf("completion %d: greedy first token %v through the adapter, %v from the merged model", i, got[i].IDs, want[i].IDs)
		}
	}

	err := runLogprobs(&bytes.Buffer{}, logprobsFlags{modelDir: adapter, input: inPath, batch: 2, temperature: 1})
	if err == nil || !strings.Contains(err.Error(), "is a LoRA adapter") || !strings.Contains(err.Error(), "some/hub-model") {
		t.Errorf("an adapter as --model: %v", err)
	}
	dora := filepath.Join(t.TempDir(), "dora")
	os.MkdirAll(dora, 0o755)
	b, _ := os.ReadFile(filepath.Join(adapter, model.AdapterWeightsFile))
	os.WriteFile(filepath.Join(dora, model.AdapterWeightsFile), b, 0o644)
	os.WriteFile(filepath.Join(dora, model.AdapterConfigFile), []byte(`{"peft_type": "LORA", "r": 6, "target_modules": ["q_proj"], "use_dora": true}`), 0o644)
	err = runLogprobs(&bytes.Buffer{}, logprobsFlags{modelDir: base, adapterDir: dora, input: inPath, batch: 2, temperature: 1})
	if err == nil || !strings.Contains(err.Error(), "--adapter") || !strings.Contains(err.Error(), "DoRA") {
		t.Errorf("a DoRA adapter: %v", err)
	}
}
