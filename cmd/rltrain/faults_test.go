package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/model/safetensors"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const tinyRunYAML = `model:
  init: {hidden: 32, layers: 1, heads: 2, kv_heads: 1, ffn: 64, max_seq: 24}
data: {task: arithmetic, task_params: {difficulty: 1}, eval_size: 4}
rollout: {batch_size: 2, group_size: 2, max_new_tokens: 4}
sft: {steps: 3, lr: 1e-3, batch_size: 4}
train: {steps: 2, seed: 5}
checkpoint: {every: 0}
log: {every: 1, progress: false}
`

// An interruption during the warm-up names the warm-up step and prints the
// exact command that resumes the run, --set flags included and quoted.
func TestInterruptHintDuringSFT(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "my cfg.yaml", tinyRunYAML)
	out := filepath.Join(dir, "out")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	f := runFlags{sets: []string{"train.out_dir=" + out, "sft.lr=2e-3", "log.file=" + filepath.Join(dir, "a b.jsonl")}}
	if err := runTrain(ctx, &stdout, &stderr, cfg, f); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	want := "interrupted after warm-up step 0; resume with: " + shellQuote(os.Args[0]) + " run '" + cfg + "' --set train.out_dir=" + out +
		" --set sft.lr=2e-3 --set 'log.file=" + filepath.Join(dir, "a b.jsonl") + "' --resume\n"
	if !strings.Contains(stdout.String(), want) {
		t.Fatalf("stdout:\n%s\nwant it to contain:\n%s", stdout.String(), want)
	}
	f.resume = "latest"
	stdout.Reset()
	if err := runTrain(context.Background(), &stdout, &stderr, cfg, f); err != nil {
		t.Fatalf("the printed resume command fails: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "final accuracy") {
		t.Errorf("resumed run did not finish:\n%s", stdout.String())
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain/path.yaml": "plain/path.yaml",
		"a b":             "'a b'",
		"it's":            `'it'\''s'`,
		"":                "''",
		"x=$HOME":         "'x=$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// A broken tokenizer.json named by model.tokenizer is reported with the
// option, the file and the entry.
func TestBadTokenizerNamesFileAndEntry(t *testing.T) {
	dir := t.TempDir()
	tj := writeFile(t, dir, "tokenizer.json", `{"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}}`)
	cfg := writeFile(t, dir, "cfg.yaml", strings.Replace(tinyRunYAML, "model:\n", "model:\n  tokenizer: "+tj+"\n", 1))
	var stdout, stderr bytes.Buffer
	err := runTrain(context.Background(), &stdout, &stderr, cfg, runFlags{sets: []string{"train.out_dir=" + filepath.Join(dir, "out")}, dryRun: true})
	want := "model.tokenizer: " + tj + `: model.vocab: tokens "a" and "b" have the same id 0`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want it to contain %q", err, want)
	}
}

// TestResumeWithSpaceAndOverwrite: `--resume PATH` works like
// `--resume=PATH` whichever side of the config it is; --overwrite deletes
// the previous run's checkpoints, so a later --resume picks this run's.
func TestResumeWithSpaceAndOverwrite(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := writeFile(t, dir, "cfg.yaml", strings.Replace(tinyRunYAML, "train: {steps: 2, seed: 5}", "train: {steps: 4, seed: 5, out_dir: "+out+"}", 1))
	ck := filepath.Join(out, "checkpoints")
	if log, err := execute(t, "run", cfg, "--set", "checkpoint.every=2", "--set", "sft.steps=0"); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	for _, args := range [][]string{
		{"run", cfg, "--resume", filepath.Join(ck, "step-2"), "--set", "sft.steps=0"},
		{"run", "--resume", filepath.Join(ck, "step-2"), cfg, "--set", "sft.steps=0"},
		{"run", cfg, "--resume", "latest", "--set", "sft.steps=0", "--set", "train.steps=5"},
	} {
		log, err := execute(t, args...)
		if err != nil {
			t.Fatalf("%q: %v\n%s", args, err, log)
		}
		if !strings.Contains(log, "resumed from") {
			t.Errorf("%q did not resume:\n%s", args, log)
		}
	}
	if _, err := execute(t, "run", cfg, "extra.yaml"); err == nil || !strings.Contains(err.Error(), "want one CONFIG argument") {
		t.Errorf("two configs: %v", err)
	}

	// A fresh run with --overwrite: one step, no warm-up.
	log, err := execute(t, "run", cfg, "--overwrite", "--set", "train.steps=1", "--set", "sft.steps=0")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	entries, _ := os.ReadDir(ck)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "step-1" {
		t.Errorf("after --overwrite the checkpoints are %v, want only step-1", names)
	}
	b, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if n := strings.Count(string(b), "\n"); n != 2 { // baseline evaluation and step 1
		t.Errorf("after --overwrite metrics.jsonl has %d lines, want 2:\n%s", n, b)
	}
}

// generate on a model with NaN weights warns, naming the tensor.
func TestGenerateWarnsOnNonFiniteWeights(t *testing.T) {
	dir := tinyModelDir(t, "LlamaForCausalLM")
	path := filepath.Join(dir, "model.safetensors")
	ts, meta, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var list []*safetensors.Tensor
	for name, x := range ts {
		if name == "model.norm.weight" {
			x.Data[3] = float32(math.Inf(1))
		}
		list = append(list, x)
	}
	if err := safetensors.WriteFile(path, list, meta, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	f := baseGenerateFlags(dir)
	f.prompt = "[1, 5, 7]"
	var out, errOut bytes.Buffer
	runGenerate(&out, &errOut, f)
	if want := `tensor "model.norm.weight" holds +Inf (at index 3)`; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q, want it to contain %q", errOut.String(), want)
	}
}

// logprobs refuses a sequence longer than the model's context (generate
// does too) and an input without any sequence.
func TestLogprobsLimits(t *testing.T) {
	dir := tinyModelDir(t, "LlamaForCausalLM") // max_position_embeddings 2048
	long := "[1" + strings.Repeat(",3", 2048) + "]"
	for _, tc := range []struct{ in, want string }{
		{`{"ids":` + long + "}\n", "in.jsonl:1: 2049 tokens; the model takes at most 2048 positions"},
		{"", "in.jsonl: no sequences to score"},
		{"\n  \n", "in.jsonl: no sequences to score"},
	} {
		p := writeFile(t, t.TempDir(), "in.jsonl", tc.in)
		err := runLogprobs(&bytes.Buffer{}, logprobsFlags{modelDir: dir, input: p, batch: 4, temperature: 1})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("input of %d bytes: error %v, want it to mention %q", len(tc.in), err, tc.want)
		}
	}
}

// --dry-run finds an over-long prompt when data.truncation is error.
func TestDryRunFindsLongPrompt(t *testing.T) {
	dir := t.TempDir()
	data := writeFile(t, dir, "train.jsonl", "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n{\"prompt\": \""+strings.Repeat("7", 100)+"\", \"answer\": \"1\"}\n")
	cfg := writeFile(t, dir, "cfg.yaml", `model:
  init: {hidden: 32, layers: 1, heads: 2, kv_heads: 1, ffn: 64, max_seq: 24}
data: {train: `+data+`, truncation: error}
rollout: {max_new_tokens: 4}
reward: [{type: exact_match}]
train: {out_dir: `+filepath.Join(dir, "out")+`}
`)
	_, err := execute(t, "run", cfg, "--dry-run")
	if want := data + ":2 (id 2): the prompt has 100 tokens"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("dry run: %v, want %q", err, want)
	}
}
