package train

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/rltrain/rltrain/internal/dist"
	"github.com/rltrain/rltrain/model/safetensors"
	"github.com/rltrain/rltrain/train/config"
	"github.com/rltrain/rltrain/train/metrics"
)

// tinyYAML is a run small enough for unit tests: a from-scratch model on
// the arithmetic task, a few steps.
func tinyYAML(out string) string {
	return fmt.Sprintf(`
model:
  init: {hidden: 32, layers: 1, heads: 2, kv_heads: 1, ffn: 64, max_seq: 24}
data:
  task: arithmetic
  task_params: {difficulty: 1}
  eval_size: 8
rollout: {batch_size: 2, group_size: 4, max_new_tokens: 4}
optim: {lr: 1e-3}
sft: {steps: 3, lr: 1e-3, batch_size: 4}
train: {steps: 8, seed: 5, out_dir: %q}
checkpoint: {every: 4, keep_last: 0}
log: {every: 1, progress: false}
`, out)
}

func parseConfig(t *testing.T, yml string, sets ...string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, sets)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func runConfig(t *testing.T, c *config.Config, opts Options) *Summary {
	t.Helper()
	sum, log, err := runLogged(t, c, opts)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log)
	}
	return sum
}

// runLogged runs c to its end (a trainer that cannot be built fails t)
// and closes the trainer, so the run directory is free again; it returns
// how the run ended and what it logged (unless opts.Console is set).
func runLogged(t *testing.T, c *config.Config, opts Options) (*Summary, string, error) {
	t.Helper()
	var log bytes.Buffer
	if opts.Console == nil {
		opts.Console = &log
	}
	tr, err := New(c, opts)
	if err != nil {
		t.Fatalf("new trainer: %v\n%s", err, log.String())
	}
	defer tr.Close()
	sum, err := tr.Run(context.Background())
	return sum, log.String(), err
}

// volatile metrics depend on wall time, not on the computation.
func volatile(k string) bool {
	return strings.HasPrefix(k, "timing_s/") || strings.HasPrefix(k, "perf/throughput")
}

func comparableMetrics(t *testing.T, path string) []map[string]float64 {
	t.Helper()
	ms, err := metrics.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		for k := range m {
			if volatile(k) {
				delete(m, k)
			}
		}
	}
	return ms
}

func finalWeights(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMain(m *testing.M) {
	// Child mode: run the trainer on the config in RLTRAIN_TEST_CONFIG, so
	// a test can SIGKILL a real training process.
	if path := os.Getenv("RLTRAIN_TEST_CONFIG"); path != "" {
		c, err := config.Load(path, nil)
		var comm dist.Comm
		if err == nil {
			var tr *Trainer
			if comm, err = dist.Open(dist.Options{Timeout: c.Train.CollectiveTimeout}); err == nil {
				testRankSetup(comm)
				stepDone = holdAfterStep(stepDone)
				tr, err = New(c, Options{Console: os.Stderr, Resume: os.Getenv("RLTRAIN_TEST_RESUME"), Comm: comm,
					SFTOnly: os.Getenv("RLTRAIN_TEST_SFT_ONLY") != ""})
			}
			if err == nil {
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				var sum *Summary
				sum, err = tr.Run(ctx)
				stop()
				if err == nil && sum.Interrupted {
					fmt.Fprintf(os.Stderr, "interrupted at step %d, checkpoint %s\n", sum.Steps, sum.LastCheckpoint)
				}
				if cerr := tr.Close(); err == nil {
					err = cerr
				}
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if comm != nil {
			comm.Close()
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestResumeIsBitExact: a run of 8 steps, and the same run SIGKILLed after
// its step-4 checkpoint and resumed, end with byte-identical weights and
// identical metrics for every step (wall-clock timings aside).
func TestResumeIsBitExact(t *testing.T) {
	for _, tc := range []struct{ name, extra string }{
		{"task", ""},
		{"jsonl-epochs", "JSONL"},
		{"ppo-gae-reference", "PPO"},
		{"grpo-kl-loss-minibatches", "KL"},
		{"budgeted-groups-jsonl", "BUDGET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sets []string
			if tc.extra == "JSONL" || tc.extra == "BUDGET" {
				// 5 prompts, batch 2: epochs end mid-batch every few steps.
				dir := t.TempDir()
				var b strings.Builder
				for i := 0; i < 5; i++ {
					fmt.Fprintf(&b, "{\"prompt\": \"%d+%d=\", \"answer\": \"%d\"}\n", i, i+1, 2*i+1)
				}
				train := filepath.Join(dir, "train.jsonl")
				os.WriteFile(train, []byte(b.String()), 0o644)
				sets = []string{"data.task=", "data.task_params={}", "data.train=" + train, "data.eval_size=0", "reward.0.type=exact_match", "sft.steps=0"}
				if tc.extra == "BUDGET" {
					// Running pass rates (in the checkpoint) set the
					// group sizes of prompts seen again.
					sets = append(sets, "rollout.budget=pass_rate", "rollout.min_group_size=1", "rollout.max_group_size=7")
				}
			}
			switch tc.extra {
			case "PPO":
				sets = []string{"algorithm.advantage=gae", "algorithm.beta=0.01", "algorithm.kl_in=reward",
					"algorithm.target_kl=0.01", "train.ppo_epochs=2", "train.mini_batch_size=4"}
			case "KL":
				sets = []string{"algorithm.beta=0.04", "algorithm.entropy_coef=0.01", "train.mini_batch_size=4",
					"train.micro_batch_size=2", "algorithm.epsilon_high=0.28", "algorithm.tis_cap=2"}
			}
			full := filepath.Join(t.TempDir(), "full")
			a := parseConfig(t, tinyYAML(full), sets...)
			runConfig(t, a, Options{})

			part := filepath.Join(t.TempDir(), "part")
			b := parseConfig(t, tinyYAML(part), sets...)
			killAfter(t, b, 4)
			// The kill must land before the run finished, and the resume
			// must start from the step-4 checkpoint.
			if _, err := os.Stat(filepath.Join(part, "checkpoints", "step-8")); err == nil {
				t.Fatal("the killed run had already finished")
			}
			var log bytes.Buffer
			runConfig(t, b, Options{Resume: "latest", Console: &log})
			if !strings.Contains(log.String(), "step-4 (rl step 4)") {
				t.Fatalf("resume did not start at step 4:\n%s", log.String())
			}

			wa := finalWeights(t, filepath.Join(full, "checkpoints", "step-8"))
			wb := finalWeights(t, filepath.Join(part, "checkpoints", "step-8"))
			if !bytes.Equal(wa, wb) {
				t.Error("final weights differ between the uninterrupted and the resumed run")
			}
			ma := comparableMetrics(t, filepath.Join(full, "metrics.jsonl"))
			mb := comparableMetrics(t, filepath.Join(part, "metrics.jsonl"))
			// Steps 1..8, preceded by the step-0 baseline evaluation when
			// the run has an evaluation set.
			if len(ma) != len(mb) || len(ma) < 8 || ma[len(ma)-1]["step"] != 8 {
				t.Fatalf("metrics lines: %d and %d, want the 8 steps", len(ma), len(mb))
			}
			for i := range ma {
				if !mapsEqual(ma[i], mb[i]) {
					t.Errorf("step %d metrics differ:\n full    %v\n resumed %v", i+1, ma[i], mb[i])
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !(v == w || (v != v && w != w)) {
			return false
		}
	}
	return true
}

// TestIncompleteCheckpointsAreNeverPicked covers every state a crash
// during a save can leave: a temporary directory, and a directory without
// its DONE marker.
func TestIncompleteCheckpointsAreNeverPicked(t *testing.T) {
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "train.steps=4")
	runConfig(t, c, Options{})
	ck := filepath.Join(out, "checkpoints")
	good := filepath.Join(ck, "step-4")
	// A save killed before the rename.
	tmp := filepath.Join(ck, tmpPrefix+"step-8-123")
	os.MkdirAll(tmp, 0o755)
	os.WriteFile(filepath.Join(tmp, stateFile), []byte("{"), 0o644)
	// A directory that lost its marker.
	bad := filepath.Join(ck, "step-12")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "model.safetensors"), []byte("x"), 0o644)
	got, err := LatestCheckpoint(ck)
	if err != nil || got != good {
		t.Fatalf("latest checkpoint %q (%v), want %q", got, err, good)
	}
	// Resuming works from the good one.
	c.Train.Steps = 5
	sum := runConfig(t, c, Options{Resume: "latest"})
	if sum.Steps != 5 {
		t.Errorf("resumed run ended at step %d, want 5", sum.Steps)
	}
}

func TestResumeRejectsBreakingChanges(t *testing.T) {
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "train.steps=2")
	runConfig(t, c, Options{})
	changed := parseConfig(t, tinyYAML(out), "train.steps=3", "algorithm.advantage=rloo")
	_, err := New(changed, Options{Resume: "latest", Console: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "algorithm.advantage") {
		t.Fatalf("resume with another algorithm: %v", err)
	}
	shape := parseConfig(t, tinyYAML(out), "train.steps=3", "model.init.hidden=64")
	if _, err := New(shape, Options{Resume: "latest", Console: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "model.init.hidden") {
		t.Fatalf("resume with another model shape: %v", err)
	}
	// Harmless: more steps, another log interval.
	var log bytes.Buffer
	ok := parseConfig(t, tinyYAML(out), "train.steps=3", "log.every=2")
	tr, err := New(ok, Options{Resume: "latest", Console: &log})
	if err != nil {
		t.Fatalf("harmless change refused: %v", err)
	}
	tr.Close()
	if !strings.Contains(log.String(), "log.every") {
		t.Errorf("harmless change not reported:\n%s", log.String())
	}
	// Starting fresh over existing checkpoints needs --overwrite.
	if _, err := New(c, Options{Console: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("fresh start over checkpoints: %v", err)
	}
}

func TestCorruptCheckpoint(t *testing.T) {
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "train.steps=4")
	runConfig(t, c, Options{})
	ck := filepath.Join(out, "checkpoints", "step-4")
	p := filepath.Join(ck, "model.safetensors")
	st, _ := os.Stat(p)
	os.Truncate(p, st.Size()/2)
	_, err := New(c, Options{Resume: ck, Console: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "model.safetensors") {
		t.Fatalf("corrupt weights: %v", err)
	}
	os.WriteFile(filepath.Join(ck, stateFile), []byte("{not json"), 0o644)
	if _, err = New(c, Options{Resume: ck, Console: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), stateFile) {
		t.Fatalf("corrupt state: %v", err)
	}
}

// TestCheckpointLoadsAsModel: a checkpoint is a Hugging Face model
// directory with its tokenizer.
func TestCheckpointLoadsAsModel(t *testing.T) {
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "train.steps=1")
	runConfig(t, c, Options{})
	dir := filepath.Join(out, "checkpoints", "step-1")
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", optimizerFile, stateFile, doneFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("checkpoint lacks %s", f)
		}
	}
	c2 := parseConfig(t, tinyYAML(t.TempDir()), "model.path="+dir, "sft.steps=0", "train.steps=1")
	c2.Train.OutDir = t.TempDir()
	runConfig(t, c2, Options{})
	ts, _, err := safetensors.ReadModel(dir)
	if err != nil || len(ts) == 0 {
		t.Fatalf("read checkpoint weights: %v", err)
	}
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	if !slices.Contains(names, "model.embed_tokens.weight") {
		t.Errorf("checkpoint tensors %v lack the embedding", names)
	}
}

// TestFailingRewardIsIsolated: a reward program that answers NaN for some
// completions and crashes on others never stops the run; those samples are
// excluded from the loss and counted.
func TestFailingRewardIsIsolated(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "reward.sh")
	// Answers NaN (not JSON) for completions containing "1", exits for
	// those containing "2", else scores 1.
	os.WriteFile(script, []byte(`#!/bin/sh
while IFS= read -r line; do
  case "$line" in
    *'"completion":"2'*) exit 3 ;;
    *'"completion":"1'*) echo '{"score": NaN}' ;;
    *) echo '{"score": 1}' ;;
  esac
done
`), 0o755)
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "train.steps=3", "checkpoint.every=0",
		"reward.0.type=external", "reward.0.name=ext", "reward.0.params.command=[\"sh\", \""+script+"\"]",
		"reward.0.params.timeout=60s")
	var log bytes.Buffer
	sum := runConfig(t, c, Options{Console: &log})
	if sum.Steps != 3 {
		t.Fatalf("run stopped at step %d", sum.Steps)
	}
	ms := comparableMetrics(t, filepath.Join(out, "metrics.jsonl"))
	var errs, excluded float64
	for _, m := range ms {
		errs += m["reward/errors/ext"]
		excluded += m["reward/excluded"]
		for k, v := range m {
			if v != v && !strings.HasPrefix(k, "eval/") {
				t.Errorf("metric %s is NaN", k)
			}
		}
	}
	if errs == 0 || excluded == 0 {
		t.Errorf("reward errors %v, excluded %v: the failures were not counted\n%s", errs, excluded, log.String())
	}
}

// TestDivergenceStopsCleanly: an absurd learning rate drives the weights
// to non-finite values; updates with non-finite losses or gradients are
// skipped, and after a few such steps the run stops with a clear error
// while the last good checkpoint stays intact and loadable.
func TestDivergenceStopsCleanly(t *testing.T) {
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "train.steps=40", "checkpoint.every=1", "checkpoint.keep_last=3",
		"optim.lr=1e30", "optim.max_grad_norm=0", "sft.steps=0")
	_, log, err := runLogged(t, c, Options{})
	if err == nil || !strings.Contains(err.Error(), "non-finite") {
		t.Fatalf("diverging run: error %v\n%s", err, log)
	}
	last, err := LatestCheckpoint(filepath.Join(out, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	c.Train.Steps = 40
	tr2, err := New(c, Options{Resume: last, Console: &bytes.Buffer{}})
	if err != nil {
		t.Fatalf("the last checkpoint %s does not load: %v", last, err)
	}
	defer tr2.Close()
	if ss := tr2.be.SumSquares(tr2.pol.Model.Params); !finite(ss) {
		t.Errorf("the last checkpoint %s holds non-finite weights", last)
	}
}

// TestFullDiskDuringSave: a save that fails half-way (ENOSPC) leaves the
// previous checkpoint as the newest complete one and no partial directory.
func TestFullDiskDuringSave(t *testing.T) {
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "train.steps=4", "checkpoint.every=2", "sft.steps=0")
	writeFault = func(path string) error {
		if strings.Contains(path, "step-4") && strings.HasSuffix(path, optimizerFile) {
			return fmt.Errorf("write %s: %w", path, syscall.ENOSPC)
		}
		return nil
	}
	defer func() { writeFault = nil }()
	_, _, err := runLogged(t, c, Options{})
	if err == nil || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), "intact") {
		t.Fatalf("save on a full disk: %v", err)
	}
	ck := filepath.Join(out, "checkpoints")
	last, err := LatestCheckpoint(ck)
	if err != nil || filepath.Base(last) != "step-2" {
		t.Fatalf("newest complete checkpoint %q (%v), want step-2", last, err)
	}
	entries, _ := os.ReadDir(ck)
	for _, e := range entries {
		if e.Name() != "step-2" {
			t.Errorf("left behind %s", e.Name())
		}
	}
	writeFault = nil
	c.Train.Steps = 4
	runConfig(t, c, Options{Resume: "latest"})
}

func TestBench(t *testing.T) {
	c := parseConfig(t, tinyYAML(t.TempDir()), "sft.steps=0", "checkpoint.every=0")
	tr, err := New(c, Options{Console: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	r, err := tr.Bench(context.Background(), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !(r.StepSeconds > 0 && r.RolloutTokensPerSec > 0 && r.TrainTokensPerSec > 0 && r.GEMMPeakGFLOPS > 0 && r.MFU > 0 && r.PeakRSSMB > 0) {
		t.Errorf("bench result has empty fields: %+v", r)
	}
	if want := 2 * 1 * 1 * 16 * 4; r.KVBytesPerToken != want {
		t.Errorf("KV bytes per token %d, want %d", r.KVBytesPerToken, want)
	}
	for _, k := range []string{"timing_s/rollout", "timing_s/reward", "timing_s/update"} {
		if _, ok := r.Timing[k]; !ok {
			t.Errorf("timing split lacks %s", k)
		}
	}
}

// TestSIGTERMSavesAndExitsZero: SIGTERM finishes the current step, writes
// a checkpoint of it and exits 0; --resume continues from there.
func TestSIGTERMSavesAndExitsZero(t *testing.T) {
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "train.steps=400", "checkpoint.every=0", "sft.steps=0")
	ch := startLogged(t, c, 4)
	ch.Process.Signal(syscall.SIGTERM)
	if err := ch.wait(); err != nil {
		t.Fatalf("after SIGTERM the run exited with %v, want 0\n%s", err, ch.log.String())
	}
	if !strings.Contains(ch.log.String(), "interrupted at step") {
		t.Fatalf("the run did not report an interruption:\n%s", ch.log.String())
	}
	last, err := LatestCheckpoint(filepath.Join(out, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := metrics.Read(filepath.Join(out, "metrics.jsonl"))
	logged := int(ms[len(ms)-1]["step"])
	if want := fmt.Sprintf("step-%d", logged); filepath.Base(last) != want {
		t.Fatalf("checkpoint %s after %d logged steps, want %s", last, logged, want)
	}
	c.Train.Steps = logged + 2
	sum := runConfig(t, c, Options{Resume: "latest"})
	if sum.Steps != logged+2 {
		t.Errorf("resumed run ended at %d", sum.Steps)
	}
}

// TestCUDAEmulatedMatchesCPU: five GRPO steps on the CUDA backend (its
// kernels run by the CPU emulator) follow the CPU backend's run: same
// completions and rewards, losses and gradient norms within 1e-3.
func TestCUDAEmulatedMatchesCPU(t *testing.T) {
	run := func(backend string) []map[string]float64 {
		out := t.TempDir()
		c := parseConfig(t, tinyYAML(out), "train.steps=5", "sft.steps=0", "checkpoint.every=0",
			"data.eval_size=0", "backend.type="+backend, "algorithm.beta=0.04", "algorithm.entropy_coef=0.01")
		runConfig(t, c, Options{})
		return comparableMetrics(t, filepath.Join(out, "metrics.jsonl"))
	}
	cpuM, cudaM := run("cpu"), run("cuda-emu")
	if len(cpuM) != 5 || len(cudaM) != 5 {
		t.Fatalf("%d and %d metric lines", len(cpuM), len(cudaM))
	}
	t.Logf("step 5: loss %.6g / %.6g, kl %.3g / %.3g, grad_norm %.6g / %.6g", cpuM[4]["loss"], cudaM[4]["loss"],
		cpuM[4]["kl"], cudaM[4]["kl"], cpuM[4]["grad_norm"], cudaM[4]["grad_norm"])
	for i := range cpuM {
		for _, k := range []string{"reward", "completions/mean_length", "loss", "pg_loss", "kl", "entropy", "grad_norm"} {
			a, b := cpuM[i][k], cudaM[i][k]
			if math.Abs(a-b) > 1e-3*max(1, math.Abs(a)) {
				t.Errorf("step %d %s: cpu %.6g, cuda (emulated) %.6g", i+1, k, a, b)
			}
		}
	}
}
