package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
