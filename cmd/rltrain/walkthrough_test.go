package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/data/verltest"
	"github.com/rltrain/rltrain/internal/tensorboard/tbread"
	"github.com/rltrain/rltrain/train/metrics"
)

// writeVerlGSM8K writes a stand-in for verl's GSM8K train or test parquet.
func writeVerlGSM8K(t *testing.T, path, split string, n int) {
	t.Helper()
	var rows []verltest.Row
	for i := range n {
		a, b := 3+i, 4+2*i
		q := fmt.Sprintf("Tom has %d apples and buys %d more. How many apples does he have?", a, b)
		solution := fmt.Sprintf("%d+%d=<<%d+%d=%d>>%d\n#### %d", a, b, a, b, a+b, a+b, a+b)
		rows = append(rows, verltest.GSM8KRow(int64(i), q, solution, fmt.Sprint(a+b), split))
	}
	verltest.WriteParquet(t, path, rows, verltest.Snappy)
}

// TestWalkthroughGSM8K runs the README's walkthrough "RL on GSM8K with
// Qwen2.5-0.5B-Instruct, coming from TRL/verl" on a stand-in: a tiny random
// model of Qwen2's architecture with Qwen's real tokenizer and chat
// template, and verl-format parquet files of GSM8K-style problems. Every
// command of the walkthrough that can run here runs, with the recipe as
// written plus the overrides that shrink it to the stand-in.
func TestWalkthroughGSM8K(t *testing.T) {
	if _, err := os.Stat(filepath.Join(qwenTokenizerDir, "tokenizer.json")); err != nil {
		t.Skip("the Qwen tokenizer is not installed in .cache/tokenizers: run make setup")
	}
	const recipe = "../../configs/gpu/qwen2.5-0.5b-gsm8k-verl.yaml"
	dir := t.TempDir()
	modelDir := tinyQwen(t, "Qwen2ForCausalLM")
	trainPath, testPath := filepath.Join(dir, "train.parquet"), filepath.Join(dir, "test.parquet")
	writeVerlGSM8K(t, trainPath, "train", 12)
	writeVerlGSM8K(t, testPath, "test", 4)
	out := filepath.Join(dir, "run")
	sets := []string{"model.path=" + modelDir, "data.train=" + trainPath, "data.eval=" + testPath,
		"backend.type=cpu", "backend.precision=fp32", "train.steps=2", "train.eval_every=0",
		"rollout.batch_size=2", "rollout.group_size=2", "rollout.max_new_tokens=8", "train.micro_batch_size=2",
		"train.out_dir=" + out, "checkpoint.every=2", "log.sample_every=1"}

	// rltrain config: the recipe resolves.
	var cfgOut bytes.Buffer
	if err := printConfig(&cfgOut, recipe, sets); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfgOut.String(), "report_to:") {
		t.Fatalf("config output lacks log.report_to:\n%s", cfgOut.String())
	}

	// rltrain run --dry-run: every prompt rendered with Qwen's template.
	var stdout, stderr bytes.Buffer
	if err := runTrain(context.Background(), &stdout, &stderr, recipe, runFlags{sets: sets, dryRun: true}); err != nil {
		t.Fatalf("dry run: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "train examples: 12, eval examples: 4, skipped: 0") || !strings.Contains(stdout.String(), "longest prompt: ") {
		t.Fatalf("dry run printed:\n%s", stdout.String())
	}

	// rltrain tokenize --chat: the prompt as training renders it.
	var tokOut bytes.Buffer
	if err := runTokenize(&tokOut, strings.NewReader(""), tokenizeFlags{tokenizer: modelDir, chat: true, text: "What is 2+3?"}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tokOut.String(), `"<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"`) {
		t.Fatalf("tokenize --chat printed %q", tokOut.String())
	}

	// rltrain eval --dump: the baseline.
	baseline := filepath.Join(dir, "baseline.jsonl")
	var evalOut bytes.Buffer
	if err := runEval(&evalOut, &stderr, recipe, evalFlags{sets: sets, samples: 1, dump: baseline}); err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr.String())
	}
	checkDump(t, baseline, 4)

	// rltrain run.
	stdout.Reset()
	if err := runTrain(context.Background(), &stdout, &stderr, recipe, runFlags{sets: sets}); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"baseline accuracy (before RL)", "final accuracy", "checkpoint: "} {
		if !strings.Contains(stdout.String(), want) {
			t.Fatalf("run printed no %q:\n%s", want, stdout.String())
		}
	}
	ms, err := metrics.Read(filepath.Join(out, "metrics.jsonl"))
	if err != nil || len(ms) != 3 {
		t.Fatalf("metrics.jsonl: %d lines (%v), want the baseline and 2 steps", len(ms), err)
	}
	if _, ok := ms[2]["rewards/correct/std"]; !ok {
		t.Errorf("no rewards/correct/std in %v", ms[2])
	}
	// tensorboard --logdir: scalars and samples.
	files, err := tbread.Files(filepath.Join(out, "tensorboard"))
	if err != nil || len(files) != 1 {
		t.Fatalf("tensorboard files %v (%v)", files, err)
	}
	evs, err := tbread.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var scalars, texts int
	for _, ev := range evs {
		if _, ok := ev.Scalars["reward"]; ok {
			scalars++
		}
		texts += len(ev.Texts)
	}
	if scalars != 2 || texts != 2 {
		t.Fatalf("tensorboard: reward at %d steps, %d sample texts; want 2 and 2", scalars, texts)
	}

	// The checkpoint is a Hugging Face model directory in bf16.
	ck := filepath.Join(out, "checkpoints", "step-2")
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"} {
		if _, err := os.Stat(filepath.Join(ck, f)); err != nil {
			t.Errorf("checkpoint lacks %s", f)
		}
	}
	var tc map[string]any
	raw, _ := os.ReadFile(filepath.Join(ck, "tokenizer_config.json"))
	if json.Unmarshal(raw, &tc) != nil || !strings.Contains(fmt.Sprint(tc["chat_template"]), "{%") {
		t.Errorf("the checkpoint's chat_template is not the model's Jinja template")
	}

	// rltrain plot, then rltrain eval --model on the checkpoint.
	if log, err := execute(t, "plot", out); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if pngs, _ := filepath.Glob(filepath.Join(out, "plots", "*.png")); len(pngs) == 0 {
		t.Error("plot wrote no charts")
	}
	final := filepath.Join(dir, "final.jsonl")
	if err := runEval(&evalOut, &stderr, recipe, evalFlags{sets: sets, modelDir: ck, samples: 1, dump: final}); err != nil {
		t.Fatalf("eval of the checkpoint: %v\n%s", err, stderr.String())
	}
	checkDump(t, final, 4)
}

func checkDump(t *testing.T, path string, want int) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != want {
		t.Fatalf("%s: %d lines, want %d", path, len(lines), want)
	}
	for _, l := range lines {
		var d struct {
			Prompt  string              `json:"prompt"`
			Answer  string              `json:"answer"`
			Rewards map[string]*float64 `json:"rewards"`
		}
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(d.Prompt, "<|im_start|>") || d.Answer == "" || d.Rewards["correct"] == nil {
			t.Fatalf("%s: %s", path, l)
		}
	}
}
