package train

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rltrain/rltrain/internal/dist"
	"github.com/rltrain/rltrain/model/safetensors"
	"github.com/rltrain/rltrain/optim"
	"github.com/rltrain/rltrain/train/config"
	"github.com/rltrain/rltrain/train/metrics"
)

// The data-parallel proofs: the same runs with one process and with two
// ranks under mpirun (this test binary in child mode, see TestMain).

// dumpEnv names a directory where the ranks' rank 0 writes every step's
// rollouts (rolloutDump) as step-N.json.
const dumpEnv = "RLTRAIN_TEST_DUMP"

// testRankSetup is the child mode's data-parallel set-up.
func testRankSetup(dist.Comm) {
	if dir := os.Getenv(dumpEnv); dir != "" {
		stepDone = dumpRollouts(dir)
		gradsSummed = dumpGradients(dir)
	}
}

// dumpGradients writes the first update's summed policy gradient (rank 0)
// as raw float32 to grads.bin.
func dumpGradients(dir string) func(t *Trainer) {
	done := false
	return func(t *Trainer) {
		if done || !t.leader() {
			return
		}
		done = true
		g := make([]float32, t.pol.Model.Grads.Len())
		t.be.Download(g, t.pol.Model.Grads)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "grads.bin"), dist.Float32Bytes(g), 0o644)
	}
}

// readGrads reads dumpGradients' file.
func readGrads(t *testing.T, dir string) []float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "grads.bin"))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
	}
	return out
}

// dumpedSample is one completion with its reward, as bits so that
// equality is exact (and NaN survives JSON).
type dumpedSample struct {
	Prompt   []int32  `json:"prompt"`
	IDs      []int32  `json:"ids"`
	Text     string   `json:"text"`
	Finish   string   `json:"finish"`
	Logprobs []uint32 `json:"logprobs"`
	Reward   uint64   `json:"reward"`
	Excluded bool     `json:"excluded"`
}

func dumpRollouts(dir string) func(t *Trainer, step int, s *rlStep) {
	return func(t *Trainer, step int, s *rlStep) {
		if !t.leader() {
			return
		}
		var out []dumpedSample
		for _, g := range s.groups {
			for si, c := range g.comps {
				lp := make([]uint32, len(c.Logprobs))
				for i, v := range c.Logprobs {
					lp[i] = math.Float32bits(v)
				}
				out = append(out, dumpedSample{Prompt: g.prompt, IDs: c.IDs, Text: c.Text, Finish: string(c.Finish),
					Logprobs: lp, Reward: math.Float64bits(g.totals[si]), Excluded: g.excl[si]})
			}
		}
		b, _ := json.Marshal(out)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("step-%d.json", step)), b, 0o644)
	}
}

func readDump(t *testing.T, dir string, step int) []dumpedSample {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("step-%d.json", step)))
	if err != nil {
		t.Fatal(err)
	}
	var out []dumpedSample
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// runRanks runs the trainer on c with n ranks under mpirun (resuming from
// the newest checkpoint when resume), dumping rollouts into dump.
func runRanks(t *testing.T, n int, c *config.Config, resume bool, dump string) {
	t.Helper()
	mpirun, err := dist.Mpirun()
	if err != nil {
		t.Skip(err.Error() + "; the data-parallel tests need it")
	}
	path := filepath.Join(t.TempDir(), "cfg.yaml")
	yml, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, yml, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mpirun, dist.MpirunFlags(n, os.Args[0], "-test.run=^$")...)
	cmd.Env = append(os.Environ(), "RLTRAIN_TEST_CONFIG="+path, dumpEnv+"="+dump)
	if resume {
		cmd.Env = append(cmd.Env, "RLTRAIN_TEST_RESUME=latest")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%d ranks: %v\n%s", n, err, out)
	}
}

// runOne runs the trainer on c in this process, dumping rollouts into
// dump.
func runOne(t *testing.T, c *config.Config, resume bool, dump string) {
	t.Helper()
	stepDone, gradsSummed = dumpRollouts(dump), dumpGradients(dump)
	defer func() { stepDone, gradsSummed = nil, nil }()
	opts := Options{}
	if resume {
		opts.Resume = "latest"
	}
	runConfig(t, c, opts)
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-r", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v %s", src, err, out)
	}
}

// metricLines reads metrics.jsonl keyed by step (RL lines only).
func metricLines(t *testing.T, out string) map[int]map[string]float64 {
	t.Helper()
	ms, err := metrics.Read(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[int]map[string]float64{}
	for _, m := range ms {
		step := int(m["step"])
		if _, sft := m["sft/loss"]; sft {
			continue
		}
		if lines[step] == nil {
			lines[step] = map[string]float64{}
		}
		for k, v := range m {
			lines[step][k] = v
		}
	}
	return lines
}

// metricsTolerance: a step's metrics with two ranks equal the one-process
// ones to 1e-6 relative. metricsFloor is an absolute floor for a metric
// that is a near-zero difference of terms of order one: with whitened
// advantages and ratio 1 the token-mean loss is Σ A / T, analytically 0,
// measured ~1e-9; its rounding noise is relative to the float32 terms
// (order one), so it is compared to float32's epsilon.
const (
	metricsTolerance = 1e-6
	metricsFloor     = 1.2e-7
)

// updateMetrics are the metrics of the step's updates: with several
// updates in a step, the later ones run on weights that already carry
// the float32 summation-order difference of the earlier gradients.
func updateMetrics() map[string]bool {
	keys := map[string]bool{"grad_norm": true, "vf_loss": true, "learning_rate": true, "drpo/objective": true, "drpo/kl": true}
	for k := range new(optim.PolicyMetrics).Map() {
		keys[k] = true
	}
	return keys
}

// compareMetrics checks b against a; skip names metrics not compared.
func compareMetrics(t *testing.T, what string, a, b map[string]float64, skip map[string]bool) (worst float64, worstKey string) {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		t.Fatalf("%s: no metrics line (%d and %d keys)", what, len(a), len(b))
	}
	for k, va := range a {
		// rollout/logp_diff_* measure rounding, which depends on how the
		// ranks split the batch's forward passes; the KV cache peak is
		// each rank's own.
		if volatile(k) || strings.HasPrefix(k, "perf/") || strings.HasPrefix(k, "timing_s/") || strings.HasPrefix(k, "rollout/logp_diff_") ||
			k == "rollout/peak_kv_blocks" || skip[k] {
			continue
		}
		vb, ok := b[k]
		if !ok {
			t.Errorf("%s: %s missing with two ranks", what, k)
			continue
		}
		if math.IsNaN(va) && math.IsNaN(vb) {
			continue
		}
		d := math.Abs(va - vb)
		rel := d / math.Max(math.Max(math.Abs(va), math.Abs(vb)), 1e-300)
		if d > metricsTolerance*math.Max(math.Abs(va), math.Abs(vb))+metricsFloor {
			t.Errorf("%s: %s = %v with one process, %v with two ranks (relative %.3g > %g)", what, k, va, vb, rel, metricsTolerance)
		}
		if rel > worst && d > 0 {
			worst, worstKey = rel, k
		}
	}
	if b["perf/world_size"] != 2 || a["perf/world_size"] != 1 {
		t.Errorf("%s: perf/world_size %v and %v, want 1 and 2", what, a["perf/world_size"], b["perf/world_size"])
	}
	return worst, worstKey
}

// weightBound: after 10 steps the weights of the two-rank and the
// one-process runs differ only by float32 summation order (gradients
// summed over ranks instead of in one pass, the micro-batches' GEMMs of
// other shapes), amplified by AdamW's normalisation of small gradients.
// Measured on this machine (largest absolute difference, weights of order
// 1): GRPO 1.5e-7, PPO 1.4e-6 (one update per step) and 2.9e-6 (four),
// DRPO 5.3e-7; the bound leaves 3x over the largest.
const weightBound = 1e-5

// gradTolerance bounds the difference between the gradient two ranks sum
// and the one-process gradient, relative to its largest component: float32
// summation order only (per-rank normalisers would be off by a factor of
// the token ratio). Measured: see TestDataParallelUnevenTokens's log.
const gradTolerance = 1e-5

func maxWeightDiff(t *testing.T, a, b string) float64 {
	t.Helper()
	ta, _, err := safetensors.ReadModel(a)
	if err != nil {
		t.Fatal(err)
	}
	tb, _, err := safetensors.ReadModel(b)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for name, x := range ta {
		y, ok := tb[name]
		if !ok {
			t.Fatalf("%s missing from %s", name, b)
		}
		xv, yv := x.Data, y.Data
		for i := range xv {
			worst = math.Max(worst, math.Abs(float64(xv[i]-yv[i])))
		}
	}
	return worst
}

// dpConfig is a shipped config made quick: a short warm-up, 10 steps, a
// 32-prompt evaluation, batch-invariant sampling (completions that do not
// depend on which other prompts a rank decodes with).
func dpConfig(t *testing.T, name, out string, sets ...string) *config.Config {
	t.Helper()
	all := append([]string{"sft.steps=60", "train.steps=10", "data.eval_size=32", "rollout.batch_invariant=true",
		"checkpoint.every=10", "checkpoint.keep_last=0", "log.every=1", "log.progress=false", "train.out_dir=" + out}, sets...)
	c, err := config.Load(filepath.Join("..", "configs", name+".yaml"), all)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDataParallelEqualsOneProcess runs each algorithm from the same
// warm-up checkpoint (written by one process) with one process and with
// two ranks: the step-1 completions and rewards are identical, the
// baseline evaluation (sharded across ranks) too, step-1 metrics agree to
// 1e-6 relative and weights after 10 steps within weightBound. Then one
// process resumes the two ranks' step-10 checkpoint and two ranks resume
// it too: their step 11 agrees the same way.
//
// With several updates in a step (PPO's shipped config: 2 epochs of 2
// minibatches) the metrics of the updates after the first differ by more
// (measured 4e-6 relative on ppo_kl): they are computed on weights that
// already differ by the gradients' summation order. That case checks the
// rest of the step's metrics and the weights.
func TestDataParallelEqualsOneProcess(t *testing.T) {
	if _, err := dist.Mpirun(); err != nil {
		t.Skip(err.Error() + "; the data-parallel tests need it")
	}
	cases := []struct {
		name, config string
		sets         []string
		oneUpdate    bool // one optimizer update per step
		reverse      bool // also resume the two ranks' checkpoint
	}{
		{"grpo", "grpo", nil, true, true},
		{"ppo", "ppo", []string{"train.ppo_epochs=1", "train.mini_batch_size=0"}, true, true},
		{"ppo-minibatches", "ppo", nil, false, false},
		{"drpo", "drpo", nil, true, true},
		// Batch-wide statistics: dynamic sampling's refill rounds,
		// GDPO's per-reward batch normalisation, REINFORCE++'s batch
		// whitening.
		{"dapo", "dapo", nil, true, false},
		{"gdpo", "gdpo", nil, true, false},
		{"reinforce_pp", "grpo", []string{"algorithm.advantage=reinforce_pp"}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := func(out string, more ...string) *config.Config {
				return dpConfig(t, tc.config, out, append(append([]string(nil), tc.sets...), more...)...)
			}
			skip := map[string]bool{}
			if !tc.oneUpdate {
				skip = updateMetrics()
			}
			dir := t.TempDir()
			base, one, two := filepath.Join(dir, "base"), filepath.Join(dir, "one"), filepath.Join(dir, "two")
			runConfig(t, cfg(base), Options{SFTOnly: true})
			copyTree(t, base, one)
			copyTree(t, base, two)
			runOne(t, cfg(one), true, filepath.Join(dir, "dump1"))
			runRanks(t, 2, cfg(two), true, filepath.Join(dir, "dump2"))

			s1, s2 := readDump(t, filepath.Join(dir, "dump1"), 1), readDump(t, filepath.Join(dir, "dump2"), 1)
			if len(s1) == 0 || len(s1) != len(s2) {
				t.Fatalf("step 1: %d completions with one process, %d with two ranks", len(s1), len(s2))
			}
			for i := range s1 {
				a, _ := json.Marshal(s1[i])
				b, _ := json.Marshal(s2[i])
				if string(a) != string(b) {
					t.Fatalf("step 1 completion %d differs:\none process %s\ntwo ranks   %s", i, a, b)
				}
			}
			m1, m2 := metricLines(t, one), metricLines(t, two)
			if m1[0]["eval/accuracy"] != m2[0]["eval/accuracy"] || m1[0]["eval/reward"] != m2[0]["eval/reward"] {
				t.Errorf("baseline evaluation: %v with one process, %v with two ranks", m1[0], m2[0])
			}
			worst, key := compareMetrics(t, "step 1", m1[1], m2[1], skip)
			d := maxWeightDiff(t, filepath.Join(one, "checkpoints", "step-10"), filepath.Join(two, "checkpoints", "step-10"))
			if d > weightBound {
				t.Errorf("weights after 10 steps differ by %.3g (bound %g)", d, weightBound)
			}
			t.Logf("%d step-1 completions identical; step-1 metrics worst %.3g relative (%s); weights after 10 steps within %.3g", len(s1), worst, key, d)
			if !tc.reverse {
				return
			}
			// The reverse: one process resumes the checkpoint two ranks
			// wrote, and two ranks resume it as well.
			three := filepath.Join(dir, "three")
			copyTree(t, two, three)
			runOne(t, cfg(three, "train.steps=12"), true, filepath.Join(dir, "dump3"))
			runRanks(t, 2, cfg(two, "train.steps=12"), true, filepath.Join(dir, "dump4"))
			worst, key = compareMetrics(t, "step 11 after resuming", metricLines(t, three)[11], metricLines(t, two)[11], skip)
			d = maxWeightDiff(t, filepath.Join(three, "checkpoints", "step-12"), filepath.Join(two, "checkpoints", "step-12"))
			if d > weightBound {
				t.Errorf("resumed from the two ranks' checkpoint: weights after 2 more steps differ by %.3g (bound %g)", d, weightBound)
			}
			t.Logf("resumed: step-11 metrics worst %.3g relative (%s); weights after 2 steps within %.3g", worst, key, d)
		})
	}
}

// rankPID finds the process of rank among the children of the launcher
// (Open MPI's mpirun starts local ranks as its own children).
func rankPID(launcher, rank int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after
		// its closing parenthesis.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 || f[1] != strconv.Itoa(launcher) {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv == "OMPI_COMM_WORLD_RANK="+strconv.Itoa(rank) {
				return pid
			}
		}
	}
	return 0
}

// TestDataParallelRankKilled SIGKILLs rank 1 of a two-rank run in the
// middle of its steps (rank 0 writes a checkpoint after every step, so it
// is often writing one): the job ends non-zero within 60 s, and the
// newest complete checkpoint is intact and resumable. Then the same with
// rank 1 stopped (SIGSTOP: a hung rank) and a 10 s collective timeout
// (long enough that a loaded machine's checkpoint writes do not trip it):
// rank 0's watchdog aborts the job.
func TestDataParallelRankKilled(t *testing.T) {
	t.Run("killed", func(t *testing.T) { rankFails(t, syscall.SIGKILL, "") })
	t.Run("hung", func(t *testing.T) { rankFails(t, syscall.SIGSTOP, "another rank died or hangs") })
}

func rankFails(t *testing.T, sig syscall.Signal, wantLog string) {
	mpirun, err := dist.Mpirun()
	if err != nil {
		t.Skip(err.Error() + "; the data-parallel tests need it")
	}
	out := t.TempDir()
	c := dpConfig(t, "grpo", out, "sft.steps=0", "train.steps=1000", "checkpoint.every=1", "checkpoint.keep_last=3", "data.eval_size=0", "train.collective_timeout=10s")
	path := filepath.Join(t.TempDir(), "cfg.yaml")
	yml, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, yml, 0o644)
	cmd := exec.Command(mpirun, dist.MpirunFlags(2, os.Args[0], "-test.run=^$")...)
	cmd.Env = append(os.Environ(), "RLTRAIN_TEST_CONFIG="+path)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ckpts := filepath.Join(out, "checkpoints")
	deadline := time.Now().Add(120 * time.Second)
	for {
		dirs, _ := completeCheckpoints(ckpts)
		if len(dirs) >= 3 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended before it was killed: %v\n%s", err, log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no third checkpoint within 120 s\n%s", log.String())
		}
	}
	pid := rankPID(cmd.Process.Pid, 1)
	if pid == 0 {
		cmd.Process.Kill()
		t.Fatalf("rank 1 not found among mpirun's children")
	}
	killed := time.Now()
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	select {
	case err := <-done:
		took := time.Since(killed)
		if err == nil {
			t.Fatalf("the job exited 0 after rank 1 got %v\n%s", sig, log.String())
		}
		if wantLog != "" && !strings.Contains(log.String(), wantLog) {
			t.Errorf("the job's log lacks %q:\n%s", wantLog, log.String())
		}
		t.Logf("rank 1 got %v: the job ended in %v (%v)", sig, took.Round(time.Millisecond), err)
	case <-time.After(120 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		cmd.Process.Kill()
		t.Fatalf("the job still ran 120 s after rank 1 got %v\n%s", sig, log.String())
	}
	last, err := LatestCheckpoint(ckpts)
	if err != nil {
		t.Fatalf("newest complete checkpoint: %v", err)
	}
	st, err := readState(last)
	if err != nil {
		t.Fatalf("newest complete checkpoint %s: %v", last, err)
	}
	// Resumable: one process continues from it for two steps.
	c2 := dpConfig(t, "grpo", out, "sft.steps=0", fmt.Sprintf("train.steps=%d", st.Step+2), "checkpoint.every=1", "checkpoint.keep_last=3", "data.eval_size=0", "train.collective_timeout=10s")
	sum := runConfig(t, c2, Options{Resume: "latest"})
	if sum.Steps != st.Step+2 {
		t.Fatalf("resumed from %s (step %d) and ran to step %d, want %d", last, st.Step, sum.Steps, st.Step+2)
	}
	t.Logf("resumed from %s", filepath.Base(last))
}

// TestDataParallelUnevenTokens: two ranks whose shares hold very different
// numbers of completion tokens (one prompt trained to a 12-character
// answer, the other to a 1-character one; each rank samples one of them)
// make the same update as one process under every loss aggregation: the
// normalisers (token and sequence counts, the longest completion) are the
// whole batch's, not each rank's. Averaging per rank would weigh the short
// rank's tokens ~6 times as much under token-mean.
func TestDataParallelUnevenTokens(t *testing.T) {
	if _, err := dist.Mpirun(); err != nil {
		t.Skip(err.Error() + "; the data-parallel tests need it")
	}
	dir := t.TempDir()
	train := filepath.Join(dir, "train.jsonl")
	os.WriteFile(train, []byte(`{"prompt": "L:", "answer": "abcdefghijkl"}
{"prompt": "S:", "answer": "z"}
`), 0o644)
	yml := func(out, agg string) string {
		return fmt.Sprintf(`
model: {init: {hidden: 64, layers: 2, heads: 4, kv_heads: 2, ffn: 192, max_seq: 32}}
data: {train: %q}
rollout: {batch_size: 2, group_size: 4, max_new_tokens: 16, temperature: 1.0, batch_invariant: true}
reward: [{type: exact_match}]
algorithm: {advantage: grpo, loss_agg_mode: %s}
optim: {lr: 3e-4, weight_decay: 0.0}
sft: {steps: 25, lr: 3e-3, batch_size: 2}
train: {steps: 1, seed: 3, out_dir: %q}
checkpoint: {every: 1, keep_last: 0}
log: {every: 1, progress: false}
`, train, agg, out)
	}
	for _, agg := range []string{"token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"} {
		t.Run(agg, func(t *testing.T) {
			sub := t.TempDir()
			base, one, two := filepath.Join(sub, "base"), filepath.Join(sub, "one"), filepath.Join(sub, "two")
			runConfig(t, parseConfig(t, yml(base, agg)), Options{SFTOnly: true})
			copyTree(t, base, one)
			copyTree(t, base, two)
			runOne(t, parseConfig(t, yml(one, agg)), true, filepath.Join(sub, "dump1"))
			runRanks(t, 2, parseConfig(t, yml(two, agg)), true, filepath.Join(sub, "dump2"))
			// Rank r sampled prompt r's group of 4.
			samples := readDump(t, filepath.Join(sub, "dump2"), 1)
			var tokens [2]int
			for i, s := range samples {
				tokens[i/4] += len(s.IDs)
			}
			lo, hi := min(tokens[0], tokens[1]), max(tokens[0], tokens[1])
			if lo == 0 || hi < 3*lo {
				t.Fatalf("ranks hold %v completion tokens: not uneven enough to test the normalisers (want a ratio of 3 or more)", tokens)
			}
			m1 := metricLines(t, one)[1]
			if m1["grad_norm"] == 0 || m1["reward_std"] == 0 {
				var texts []string
				for _, s := range samples {
					texts = append(texts, s.Text)
				}
				t.Fatalf("no learning signal to compare (grad_norm %v, reward_std %v): completions %q", m1["grad_norm"], m1["reward_std"], texts)
			}
			worst, key := compareMetrics(t, "step 1", m1, metricLines(t, two)[1], nil)
			g1, g2 := readGrads(t, filepath.Join(sub, "dump1")), readGrads(t, filepath.Join(sub, "dump2"))
			var diff, scale float64
			for i := range g1 {
				diff = math.Max(diff, math.Abs(float64(g1[i]-g2[i])))
				scale = math.Max(scale, math.Abs(float64(g1[i])))
			}
			if diff > gradTolerance*scale {
				t.Errorf("summed gradient differs from one process's by %.3g, %.3g of its largest component (bound %g)", diff, diff/scale, gradTolerance)
			}
			t.Logf("ranks' completion tokens %v; loss %.4g, grad_norm %.4g; metrics worst %.3g relative (%s); gradient within %.3g of its largest component", tokens, m1["loss"], m1["grad_norm"], worst, key, diff/scale)
		})
	}
}

// TestDataParallelNCCLStandin runs two ranks on the emulated CUDA backend
// with the stand-in libnccl.so.2 (NCCL's API over MPI): the trainer sums
// gradients through the NCCL binding (id broadcast, ncclCommInitRank, one
// ncclAllReduce per bucket and one for the value head, on the device
// buffers) and the step matches one process on the same backend.
func TestDataParallelNCCLStandin(t *testing.T) {
	if _, err := dist.Mpirun(); err != nil {
		t.Skip(err.Error() + "; the data-parallel tests need it")
	}
	if _, err := exec.LookPath("mpicc"); err != nil {
		t.Skip("mpicc not found: install Open MPI (make setup) to build the stand-in NCCL")
	}
	dir := t.TempDir()
	script, _ := filepath.Abs("../scripts/standin-nccl.sh")
	if out, err := exec.Command("bash", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("build the stand-in NCCL: %v\n%s", err, out)
	}
	t.Setenv(dist.NCCLLibraryEnv, filepath.Join(dir, "libnccl.so.2"))
	trace := filepath.Join(dir, "trace")
	t.Setenv("RLTRAIN_NCCL_STANDIN_TRACE", trace)
	cfg := func(out string) *config.Config {
		return parseConfig(t, tinyYAML(out), "backend.type=cuda-emu", "algorithm.advantage=gae", "sft.steps=0",
			"train.steps=2", "checkpoint.every=2", "data.eval_size=0", "rollout.batch_invariant=true")
	}
	one, two := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	runOne(t, cfg(one), false, filepath.Join(dir, "dump1"))
	runRanks(t, 2, cfg(two), false, filepath.Join(dir, "dump2"))
	compareMetrics(t, "step 1", metricLines(t, one)[1], metricLines(t, two)[1], nil)
	if d := maxWeightDiff(t, filepath.Join(one, "checkpoints", "step-2"), filepath.Join(two, "checkpoints", "step-2")); d > weightBound {
		t.Errorf("weights after 2 steps differ by %.3g (bound %g)", d, weightBound)
	}
	for r := 0; r < 2; r++ {
		raw, err := os.ReadFile(fmt.Sprintf("%s.%d", trace, r))
		if err != nil {
			t.Fatalf("rank %d made no NCCL call: %v", r, err)
		}
		calls := string(raw)
		if !strings.Contains(calls, fmt.Sprintf("ncclCommInitRank nranks=2 rank=%d", r)) ||
			(r == 0) != strings.Contains(calls, "ncclGetUniqueId") || !strings.Contains(calls, "ncclCommDestroy") {
			t.Errorf("rank %d's NCCL calls:\n%s", r, calls)
		}
		// One update per step: the gradient buffer (one bucket) and the
		// value head, in place, float32, sum.
		if n := strings.Count(calls, "ncclAllReduce"); n != 4 || strings.Count(calls, "datatype=7 op=0 inplace=1") != 4 {
			t.Errorf("rank %d: %d all-reduces, want 2 per step:\n%s", r, n, calls)
		}
	}
}

// TestDataParallelWarmup: the supervised warm-up with two ranks (each
// running half of every batch's rows, the answer-token count of the whole
// batch as normaliser) follows the one-process warm-up: the first step's
// loss and gradient norm within 1e-6 relative (later steps run on weights
// that carry the summation-order difference), the same weights within
// weightBound after 20 steps.
func TestDataParallelWarmup(t *testing.T) {
	if _, err := dist.Mpirun(); err != nil {
		t.Skip(err.Error() + "; the data-parallel tests need it")
	}
	dir := t.TempDir()
	one, two := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	cfg := func(out string) *config.Config { return dpConfig(t, "grpo", out, "sft.steps=20", "data.eval_size=0") }
	runConfig(t, cfg(one), Options{SFTOnly: true})
	t.Setenv("RLTRAIN_TEST_SFT_ONLY", "1")
	runRanks(t, 2, cfg(two), false, filepath.Join(dir, "dump"))
	read := func(out string) []map[string]float64 {
		ms, err := metrics.Read(filepath.Join(out, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	a, b := read(one), read(two)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d warm-up metric lines with one process, %d with two ranks", len(a), len(b))
	}
	var worst float64
	for i := range a {
		for _, k := range []string{"sft/loss", "sft/grad_norm"} {
			va, vb := a[i][k], b[i][k]
			d := math.Abs(va - vb)
			if i == 0 && d > metricsTolerance*math.Max(math.Abs(va), math.Abs(vb))+metricsFloor {
				t.Errorf("warm-up step 1: %s = %v with one process, %v with two ranks", k, va, vb)
			}
			worst = math.Max(worst, d/math.Max(math.Abs(va), 1e-300))
		}
	}
	// A summation-order difference moves a weight by a fraction of the
	// learning rate per AdamW step (the update is normalised), so the bound
	// scales with it: weightBound was set at the RL learning rate, and the
	// warm-up's is larger. Measured after 20 steps: 3.8e-6 with the AVX-512
	// kernels, 1.27e-5 with the portable ones (other summation orders).
	c := cfg(one)
	bound := weightBound * c.SFT.LR / c.Optim.LR
	d := maxWeightDiff(t, filepath.Join(one, "checkpoints", "sft-20"), filepath.Join(two, "checkpoints", "sft-20"))
	if d > bound {
		t.Errorf("weights after the warm-up differ by %.3g (bound %.3g)", d, bound)
	}
	t.Logf("%d warm-up steps: loss and grad norm within %.3g relative over all steps; weights within %.3g", len(a), worst, d)
}
