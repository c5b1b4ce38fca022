package train

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rltrain/rltrain/model/safetensors"
	"github.com/rltrain/rltrain/train/config"
	"github.com/rltrain/rltrain/train/metrics"
)

// TestSIGTERMDuringSFTResumesBitExact: a warm-up interrupted by SIGTERM
// saves sft-N with its optimizer state; resumed, the run ends with the same
// weights and metrics, byte for byte, as one never interrupted.
func TestSIGTERMDuringSFTResumesBitExact(t *testing.T) {
	yml := func(out string) *config.Config {
		return parseConfig(t, tinyYAML(out), "sft.steps=600", "sft.warmup_steps=50", "train.steps=2", "checkpoint.every=0")
	}
	ref := t.TempDir()
	runConfig(t, yml(ref), Options{})

	out := t.TempDir()
	c := yml(out)
	ch := startChild(t, c, "")
	ch.waitFor(t, "sft step 20", func() bool { return strings.Contains(ch.log.String(), "sft step 20/") })
	ch.Process.Signal(syscall.SIGTERM)
	if err := ch.wait(); err != nil {
		t.Fatalf("after SIGTERM during the warm-up the run exited with %v, want 0\n%s", err, ch.log.String())
	}
	last, err := LatestCheckpoint(filepath.Join(out, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(last), "sft-") || filepath.Base(last) == "sft-600" {
		t.Fatalf("checkpoint after SIGTERM during the warm-up: %s\n%s", last, ch.log.String())
	}
	if _, err := os.Stat(filepath.Join(last, optimizerFile)); err != nil {
		t.Fatalf("warm-up checkpoint without optimizer state: %v", err)
	}
	runConfig(t, c, Options{Resume: "latest"})
	want, got := finalWeights(t, filepath.Join(ref, "checkpoints", "step-2")), finalWeights(t, filepath.Join(out, "checkpoints", "step-2"))
	if !bytes.Equal(want, got) {
		t.Errorf("weights after a warm-up interrupted at %s and resumed differ from an uninterrupted run's", filepath.Base(last))
	}
	wm, gm := comparableMetrics(t, filepath.Join(ref, "metrics.jsonl")), comparableMetrics(t, filepath.Join(out, "metrics.jsonl"))
	if len(wm) != len(gm) {
		t.Fatalf("%d metric lines, want %d", len(gm), len(wm))
	}
	for i := range wm {
		for k, v := range wm[i] {
			if g, ok := gm[i][k]; !ok || (g != v && !(g != g && v != v)) {
				t.Errorf("line %d %s: %v, want %v", i, k, gm[i][k], v)
			}
		}
	}
}

// TestSecondRunOnOneDirectoryRefuses: while a run holds train.out_dir, a
// second one (even --overwrite or --resume) refuses at once, naming the
// holder's PID; once the first closes, the directory is free.
func TestSecondRunOnOneDirectoryRefuses(t *testing.T) {
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "train.steps=1", "sft.steps=0", "checkpoint.every=0")
	first, err := New(c, Options{Console: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []Options{{}, {Overwrite: true}, {Resume: "latest"}} {
		_, err = New(c, Options{Console: &bytes.Buffer{}, Overwrite: opts.Overwrite, Resume: opts.Resume})
		want := fmt.Sprintf("is in use by another run (process %d holds", os.Getpid())
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "train.out_dir") {
			t.Fatalf("second run with %+v: %v, want it to contain %q", opts, err, want)
		}
	}
	// Evaluation writes nothing and needs no lock.
	ev, err := New(c, Options{Console: &bytes.Buffer{}, EvalOnly: true})
	if err != nil {
		t.Fatalf("evaluation while a run holds the directory: %v", err)
	}
	ev.Close()
	if _, err := first.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	first.Close()
	second, err := New(c, Options{Console: &bytes.Buffer{}, Resume: "latest"})
	if err != nil {
		t.Fatalf("after the first run closed: %v", err)
	}
	second.Close()
}

// TestLockDiesWithTheProcess: a run killed with SIGKILL leaves no stale
// lock behind.
func TestLockDiesWithTheProcess(t *testing.T) {
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "train.steps=100000", "sft.steps=0", "checkpoint.every=0")
	ch := startLogged(t, c, 2)
	_, err := New(c, Options{Console: &bytes.Buffer{}, Overwrite: true})
	if want := fmt.Sprintf("process %d holds", ch.Process.Pid); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("while the child runs: %v, want %q", err, want)
	}
	ch.Process.Kill()
	ch.wait()
	tr, err := New(c, Options{Console: &bytes.Buffer{}, Overwrite: true})
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	tr.Close()
}

// TestResumeIntoNewMetricsFile: resuming another run's checkpoint into a
// fresh train.out_dir, or with a new log.file, continues that run's
// metrics (its lines up to the checkpoint are copied) instead of refusing;
// when they cannot be found the new file starts at the checkpoint.
func TestResumeIntoNewMetricsFile(t *testing.T) {
	a := t.TempDir()
	c := parseConfig(t, tinyYAML(a), "sft.steps=0")
	runConfig(t, c, Options{})
	want := comparableMetrics(t, filepath.Join(a, "metrics.jsonl"))
	step4 := filepath.Join(a, "checkpoints", "step-4")
	check := func(name, metricsPath string, c *config.Config, wantLog string, want []map[string]float64) {
		t.Helper()
		var log bytes.Buffer
		runConfig(t, c, Options{Resume: step4, Console: &log})
		if !strings.Contains(log.String(), wantLog) {
			t.Errorf("%s: log does not say %q:\n%s", name, wantLog, log.String())
		}
		got := comparableMetrics(t, metricsPath)
		if len(got) != len(want) {
			t.Fatalf("%s: %d metric lines, want %d", name, len(got), len(want))
		}
		for i := range want {
			if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
				t.Errorf("%s: line %d\n got %v\nwant %v", name, i, got[i], want[i])
			}
		}
	}
	b := t.TempDir()
	check("new out_dir", filepath.Join(b, "metrics.jsonl"), parseConfig(t, tinyYAML(b), "sft.steps=0"), "continues "+filepath.Join(a, "metrics.jsonl"), want)
	other := filepath.Join(t.TempDir(), "other.jsonl")
	check("new log.file", other, parseConfig(t, tinyYAML(a), "sft.steps=0", "log.file="+other), "continues", want)

	// The first run's metrics are gone: the new file starts after step 4.
	if err := os.Remove(filepath.Join(a, "metrics.jsonl")); err != nil {
		t.Fatal(err)
	}
	d := t.TempDir()
	check("history lost", filepath.Join(d, "metrics.jsonl"), parseConfig(t, tinyYAML(d), "sft.steps=0"), "starts afresh after step-4", want[len(want)-4:])
	// That file's own checkpoints count its own lines: resuming from one
	// in place works.
	c = parseConfig(t, tinyYAML(d), "sft.steps=0", "train.steps=10")
	runConfig(t, c, Options{Resume: "latest"})
	if ms := comparableMetrics(t, filepath.Join(d, "metrics.jsonl")); len(ms) != 6 || ms[5]["step"] != 10 {
		t.Errorf("after resuming in place: %d lines", len(ms))
	}
}

// poison sets one value of tensor name in a safetensors file to NaN.
func poison(t *testing.T, path, name string) {
	t.Helper()
	ts, meta, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tt, ok := ts[name]
	if !ok {
		t.Fatalf("%s has no tensor %s", path, name)
	}
	tt.Data[len(tt.Data)/2] = float32(math.NaN())
	var list []*safetensors.Tensor
	for _, x := range ts {
		list = append(list, x)
	}
	if err := safetensors.WriteFile(path, list, meta, safetensors.F32); err != nil {
		t.Fatal(err)
	}
}

// TestNonFiniteCheckpointRejected: NaN in a checkpoint's optimizer state or
// weights is refused on load, naming the file and tensor (it used to turn
// the weights into NaN a step later).
func TestNonFiniteCheckpointRejected(t *testing.T) {
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "train.steps=2", "checkpoint.every=1", "sft.steps=0", "checkpoint.keep_last=0")
	runConfig(t, c, Options{})
	ck := filepath.Join(out, "checkpoints")
	poison(t, filepath.Join(ck, "step-1", optimizerFile), "v.model.norm.weight")
	poison(t, filepath.Join(ck, "step-2", "model.safetensors"), "model.layers.0.mlp.down_proj.weight")
	for _, tc := range []struct{ dir, want string }{
		{"step-1", `optimizer.safetensors: tensor "v.model.norm.weight" holds NaN`},
		{"step-2", `model weights: tensor "model.layers.0.mlp.down_proj.weight" holds NaN`},
	} {
		_, err := New(c, Options{Resume: filepath.Join(ck, tc.dir), Console: &bytes.Buffer{}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("resume from %s: %v, want it to contain %q", tc.dir, err, tc.want)
		}
	}
	// As a model to start from.
	c2 := parseConfig(t, tinyYAML(t.TempDir()), "model.path="+filepath.Join(ck, "step-2"), "sft.steps=0")
	if _, err := New(c2, Options{Console: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "model.path: ") || !strings.Contains(err.Error(), "holds NaN") {
		t.Errorf("model.path with NaN weights: %v", err)
	}
}

// TestEveryUpdateSkippedFails: a run that ends without a single applied
// update (here every loss is NaN, for fewer steps than the divergence
// stop needs) reports an error instead of exiting 0.
func TestEveryUpdateSkippedFails(t *testing.T) {
	for _, sft := range []bool{false, true} {
		out := t.TempDir()
		c := parseConfig(t, tinyYAML(out), "train.steps=3", "sft.steps=0", "checkpoint.every=0")
		if sft {
			c = parseConfig(t, tinyYAML(out), "sft.steps=3", "checkpoint.every=0")
		}
		tr, err := New(c, Options{Console: &bytes.Buffer{}})
		if err != nil {
			t.Fatal(err)
		}
		m := tr.pol.Model
		tr.be.Upload(tr.be.View(m.Params, m.NumParams()-1, 1), []float32{float32(math.NaN())})
		_, err = tr.Run(context.Background())
		tr.Close()
		want := "every update of the 3 steps was skipped"
		if sft {
			want = "sft: every update of the 3 warm-up steps was skipped"
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("sft %v: %v, want %q", sft, err, want)
		}
	}
}

// Checkpoint directories are 0755 like the rest of the run directory
// (os.MkdirTemp makes them 0700).
func TestCheckpointDirMode(t *testing.T) {
	out := t.TempDir()
	runConfig(t, parseConfig(t, tinyYAML(out), "train.steps=1", "sft.steps=0"), Options{})
	st, err := os.Stat(filepath.Join(out, "checkpoints", "step-1"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("checkpoint directory mode %v, want 0755", st.Mode().Perm())
	}
}

// longPromptData writes a JSONL file of short prompts with one far longer
// than the tiny model's 24 positions at line 7.
func longPromptData(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= 12; i++ {
		p := fmt.Sprintf("%d+1=", i)
		if i == 7 {
			p = strings.Repeat("9", 200) + "+1="
		}
		fmt.Fprintf(&b, "{\"prompt\": %q, \"answer\": \"%d\"}\n", p, i+1)
	}
	path := filepath.Join(t.TempDir(), "train.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOverLongPrompt: a prompt longer than the model's context used to stop
// the run at the step that sampled it, on every resume. It is now handled
// when the data is loaded, as data.truncation says.
func TestOverLongPrompt(t *testing.T) {
	file := longPromptData(t)
	cfg := func(out string, sets ...string) *config.Config {
		base := []string{"data.task=", "data.task_params={}", "data.train=" + file, "data.eval_size=0", "sft.steps=0",
			"reward=[{type: exact_match}]", "rollout.batch_size=12", "rollout.group_size=2", "train.steps=2", "checkpoint.every=0"}
		return parseConfig(t, tinyYAML(out), append(base, sets...)...)
	}
	// skip (the default): dropped at load, reported once, counted.
	out := t.TempDir()
	var log bytes.Buffer
	runConfig(t, cfg(out), Options{Console: &log})
	if want := "data: skipped 1 prompts longer than 23 tokens (1 training, 0 evaluation; data.truncation: skip); the first: " + file + ":7 (id 7), 203 tokens"; strings.Count(log.String(), want) != 1 {
		t.Errorf("log does not say once %q:\n%s", want, log.String())
	}
	ms := comparableMetrics(t, filepath.Join(out, "metrics.jsonl"))
	if len(ms) != 2 || ms[0]["data/skipped_long_prompts"] != 1 {
		t.Errorf("metrics %v: want data/skipped_long_prompts 1 on every step", ms)
	}
	// error: refused when the trainer is built (what --dry-run does).
	_, err := New(cfg(t.TempDir(), "data.truncation=error"), Options{Console: &bytes.Buffer{}})
	if want := file + ":7 (id 7): the prompt has 203 tokens, more than the 23"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("truncation error: %v, want %q", err, want)
	}
	// left and right: kept, truncated when sampled, counted per step.
	for _, side := range []string{"left", "right"} {
		out := t.TempDir()
		log.Reset()
		runConfig(t, cfg(out, "data.truncation="+side, "data.max_prompt_length=20"), Options{Console: &log})
		if !strings.Contains(log.String(), "data: 1 prompts are longer than 20 tokens") {
			t.Errorf("%s: log:\n%s", side, log.String())
		}
		ms := comparableMetrics(t, filepath.Join(out, "metrics.jsonl"))
		if len(ms) != 2 || ms[0]["prompts/truncated"]+ms[1]["prompts/truncated"] < 1 {
			t.Errorf("%s: metrics %v: want the truncation counted", side, ms)
		}
	}
	if _, err := New(cfg(t.TempDir(), "data.max_prompt_length=24"), Options{Console: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "leaves no room") {
		t.Errorf("max_prompt_length beyond the context: %v", err)
	}
}

// TestEveryRewardFails: when the rewards fail on every sample (the reward
// program is missing), the step's reward and the evaluation's accuracy are
// null, not 0; each such step warns, and after reward.max_failed_steps in
// a row the run stops with an error instead of exiting 0.
func TestEveryRewardFails(t *testing.T) {
	sets := []string{"train.steps=5", "sft.steps=0", "checkpoint.every=1",
		"reward=[{name: ext, type: external, params: {command: [" + filepath.Join(t.TempDir(), "missing-grader") + "]}}]",
		"eval.correct_reward=ext"}
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), sets...)
	_, log, err := runLogged(t, c, Options{})
	if want := "step 3: the rewards failed on every sample for 3 steps in a row (reward.max_failed_steps); stopping: the last checkpoint is step 2"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("run: %v, want %q\n%s", err, want, log)
	}
	if !strings.Contains(log, "step 1: every sample was excluded") || !strings.Contains(log, "accuracy is unknown") {
		t.Errorf("no warning:\n%s", log)
	}
	ms, err := metrics.Read(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 { // the baseline evaluation and steps 1 and 2
		t.Fatalf("%d metric lines, want 3", len(ms))
	}
	if v, ok := ms[0]["eval/accuracy"]; !ok || !math.IsNaN(v) {
		t.Errorf("eval/accuracy %v (present %v), want null", v, ok)
	}
	for _, m := range ms[1:] {
		if v, ok := m["reward"]; !ok || !math.IsNaN(v) {
			t.Errorf("step %v: reward %v, want null", m["step"], v)
		}
	}
	// 0 never stops.
	c = parseConfig(t, tinyYAML(t.TempDir()), append(sets, "reward.max_failed_steps=0", "train.steps=4")...)
	runConfig(t, c, Options{})
}
