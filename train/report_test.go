package train

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/data"
	"github.com/rltrain/rltrain/internal/tensorboard/tbread"
	"github.com/rltrain/rltrain/optim"
	"github.com/rltrain/rltrain/rollout"
	"github.com/rltrain/rltrain/train/config"
	"github.com/rltrain/rltrain/train/metrics"
)

// tbEvents reads every event file in dir in name order.
func tbEvents(t *testing.T, dir string) [][]tbread.Event {
	t.Helper()
	files, err := tbread.Files(dir)
	if err != nil || len(files) == 0 {
		t.Fatalf("no event files in %s (%v)", dir, err)
	}
	var out [][]tbread.Event
	for _, f := range files {
		evs, err := tbread.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 || evs[0].Version != "brain.Event:2" {
			t.Fatalf("%s does not start with the file version", f)
		}
		out = append(out, evs)
	}
	return out
}

// TestReportToTensorBoard runs the tiny task with log.report_to
// [jsonl, tensorboard] and reads the event files back with an independent
// decoder: every metrics.jsonl value of every RL and warm-up step is a
// scalar at its step, the printed samples are text, and a resumed run
// marks its restart.
func TestReportToTensorBoard(t *testing.T) {
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "log.report_to=[jsonl, tensorboard]", "log.sample_every=2", "train.steps=4", "checkpoint.every=2")
	var log bytes.Buffer
	runConfig(t, c, Options{Console: &log})

	lines, err := metrics.Read(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	rl := map[int]map[string]float64{}
	sft := map[int]map[string]float64{}
	for _, m := range lines {
		step := int(m["step"])
		delete(m, "step")
		if _, ok := m["sft/loss"]; ok {
			sft[step] = m
		} else {
			rl[step] = m
		}
	}
	if len(sft) != 3 || len(rl) != 5 {
		t.Fatalf("metrics.jsonl: %d warm-up lines, %d RL lines; want 3 and 5 (baseline eval and 4 steps)", len(sft), len(rl))
	}
	for _, k := range []string{"sft/grad_norm", "sft/learning_rate"} {
		if _, ok := sft[1][k]; !ok {
			t.Errorf("warm-up line lacks %s: %v", k, sft[1])
		}
	}
	for _, k := range []string{"learning_rate", "rewards/arithmetic/mean", "rewards/arithmetic/std"} {
		if _, ok := rl[2][k]; !ok {
			t.Errorf("RL line lacks %s", k)
		}
	}

	check := func(dir string, want map[int]map[string]float64) []tbread.Event {
		files := tbEvents(t, dir)
		if len(files) != 1 {
			t.Fatalf("%s: %d event files, want 1", dir, len(files))
		}
		got := map[int]map[string]float32{}
		for _, ev := range files[0][1:] {
			if len(ev.Scalars) > 0 {
				got[int(ev.Step)] = ev.Scalars
			}
		}
		for step, m := range want {
			for k, v := range m {
				g, ok := got[step][k]
				if !ok || (g != float32(v) && !(math.IsNaN(v) && math.IsNaN(float64(g)))) {
					t.Errorf("%s step %d %s: tensorboard %v (present %v), metrics.jsonl %v", dir, step, k, g, ok, v)
				}
			}
		}
		return files[0]
	}
	check(filepath.Join(out, "tensorboard", "sft"), sft)
	evs := check(filepath.Join(out, "tensorboard"), rl)
	texts := 0
	for _, ev := range evs {
		if s, ok := ev.Texts["samples"]; ok {
			texts++
			if !strings.Contains(s, "sample (step ") || (ev.Step != 2 && ev.Step != 4) {
				t.Errorf("samples at step %d: %q", ev.Step, s)
			}
		}
	}
	if texts != 2 {
		t.Errorf("%d sample texts, want 2 (steps 2 and 4)", texts)
	}
	// Without a progress bar the step lines carry the elapsed time.
	if !strings.Contains(log.String(), "step 4/4") || !strings.Contains(log.String(), "  elapsed ") {
		t.Errorf("console lacks elapsed time:\n%s", log.String())
	}

	// Resume from step 2 to 6: a second RL file that starts with the
	// restart marker at step 3.
	c2 := parseConfig(t, tinyYAML(out), "log.report_to=[jsonl, tensorboard]", "log.sample_every=2", "train.steps=6", "checkpoint.every=2")
	runConfig(t, c2, Options{Resume: filepath.Join(out, "checkpoints", "step-2")})
	files := tbEvents(t, filepath.Join(out, "tensorboard"))
	if len(files) != 2 {
		t.Fatalf("%d RL event files after resuming, want 2", len(files))
	}
	if first := files[0]; !first[1].Start || first[1].Step != 0 {
		t.Fatalf("a fresh run's first event %+v, want a restart at step 0", first[1])
	}
	second := files[1]
	if !second[1].Start || second[1].Step != 3 {
		t.Fatalf("resumed file's first event %+v, want a restart at step 3", second[1])
	}
	var steps []int64
	for _, ev := range second[2:] {
		if len(ev.Scalars) > 0 {
			steps = append(steps, ev.Step)
		}
	}
	if len(steps) != 4 || steps[0] != 3 || steps[3] != 6 {
		t.Fatalf("resumed file logs steps %v, want 3..6", steps)
	}
}

func TestNoLearningSignalWarnings(t *testing.T) {
	var log bytes.Buffer
	tr := &Trainer{cfg: config.Default(), log: &log}
	for step := 1; step <= 7; step++ {
		tr.checkSignal(step, map[string]float64{"frac_reward_zero_std": 1})
	}
	if got := strings.Count(log.String(), "no learning signal"); got != 2 {
		t.Fatalf("%d warnings over 7 steps, want 2 (after steps 3 and 6):\n%s", got, log.String())
	}
	if !strings.Contains(log.String(), "for 3 steps (through step 3)") {
		t.Errorf("warning: %s", log.String())
	}
	log.Reset()
	tr.checkSignal(8, map[string]float64{"frac_reward_zero_std": 0.5})
	tr.checkSignal(9, map[string]float64{"frac_reward_zero_std": 1})
	tr.checkSignal(10, map[string]float64{"frac_reward_zero_std": 1})
	if log.Len() != 0 {
		t.Fatalf("warned after a step with signal reset the count: %s", log.String())
	}

	// DRPO: no group with both a correct and an incorrect completion.
	log.Reset()
	tr = &Trainer{cfg: config.Default(), log: &log}
	tr.alg.Loss = optim.LossDRPO
	for step := 1; step <= 3; step++ {
		tr.checkSignal(step, map[string]float64{"drpo/mixed_groups": 0, "frac_reward_zero_std": 0})
	}
	if !strings.Contains(log.String(), "no group had both a correct and an incorrect completion") {
		t.Fatalf("DRPO warning missing: %s", log.String())
	}
}

// eval.correct_reward and eval.correct_threshold decide correctness for
// eval accuracy and DRPO; reordering the rewards changes nothing when the
// reward is named.
func TestCorrectReward(t *testing.T) {
	g := &rolledGroup{
		ex:    data.Example{},
		comps: make([]rollout.Completion, 3),
		// [reward][sample]: "format" always 1, "answer" right only for
		// sample 1 and half right for sample 2.
		comp: [][]float64{{1, 1, 1}, {0, 1, 0.5}},
	}
	names := []string{"format", "answer"}
	judge := func(cfgSets map[string]any, names []string, g *rolledGroup) []bool {
		c := config.Default()
		if v, ok := cfgSets["reward"].(string); ok {
			c.Eval.CorrectReward = v
		}
		if v, ok := cfgSets["threshold"].(float64); ok {
			c.Eval.CorrectThreshold = v
		}
		idx, err := correctIndex(c, false, names)
		if err != nil {
			t.Fatal(err)
		}
		tr := &Trainer{cfg: c, correctIndex: idx}
		out := make([]bool, len(g.comps))
		for si := range g.comps {
			out[si] = tr.isCorrect(g, si)
		}
		return out
	}
	eq := slices.Equal[[]bool]
	if got := judge(nil, names, g); !eq(got, []bool{true, true, true}) {
		t.Errorf("default (first reward): %v", got)
	}
	if got := judge(map[string]any{"reward": "answer"}, names, g); !eq(got, []bool{false, true, true}) {
		t.Errorf("correct_reward answer: %v", got)
	}
	if got := judge(map[string]any{"reward": "answer", "threshold": 1.0}, names, g); !eq(got, []bool{false, true, false}) {
		t.Errorf("correct_reward answer, threshold 1: %v", got)
	}
	swapped := &rolledGroup{comps: g.comps, comp: [][]float64{g.comp[1], g.comp[0]}}
	if got := judge(map[string]any{"reward": "answer"}, []string{"answer", "format"}, swapped); !eq(got, []bool{false, true, true}) {
		t.Errorf("reordered rewards: %v", got)
	}
	c := config.Default()
	c.Eval.CorrectReward = "nope"
	if _, err := correctIndex(c, false, names); err == nil || !strings.Contains(err.Error(), "the rewards are format, answer") {
		t.Errorf("unknown reward: %v", err)
	}
	if idx, _ := correctIndex(config.Default(), true, names); idx != -1 {
		t.Errorf("a built-in task judges by its verifier by default, got index %d", idx)
	}
}

func TestConsoleLineKLAndFinishNames(t *testing.T) {
	m := map[string]float64{"reward": 0.5, "kl": 0, "kl_reward": 0.0123}
	if line := consoleLine(3, 10, m, "text"); !strings.Contains(line, "kl 0.0123") {
		t.Errorf("kl_in reward: %q", line)
	}
	if line := consoleLine(3, 10, map[string]float64{"kl": 0.5}, "text"); !strings.Contains(line, "kl 0.5") {
		t.Errorf("kl in the loss: %q", line)
	}
	for f, want := range map[rollout.FinishReason]string{rollout.FinishEOS: "stop", rollout.FinishStop: "stop", rollout.FinishLength: "length"} {
		if got := f.Public(); got != want {
			t.Errorf("finish %q shown as %q, want %q", f, got, want)
		}
	}
}

// Every evaluation generation is dumped with its rewards, and the dump
// agrees with the reported accuracy.
func TestEvalDump(t *testing.T) {
	res, lines, _ := evalDumped(t, parseConfig(t, tinyYAML(t.TempDir())))
	if len(lines) != 16 {
		t.Fatalf("%d dump lines, want 8 prompts x 2 samples", len(lines))
	}
	correct := 0
	for i, d := range lines {
		score := d.Rewards["arithmetic"]
		if d.Sample != i%2 || d.ID == "" || d.Prompt == "" || score == nil || d.Reward == nil || d.Answer == "" ||
			(d.FinishReason != "stop" && d.FinishReason != "length") || d.Correct != (*score >= 0.5) {
			t.Fatalf("line %d: %+v", i, d)
		}
		if d.Correct {
			correct++
		}
	}
	if got := float64(correct) / 16; got != res.Accuracy {
		t.Fatalf("dump has %v correct, accuracy %v", got, res.Accuracy)
	}
}

// evalDumped evaluates c's held-out set, two samples per prompt, and
// returns the result, the dumped generations and the console's log.
func evalDumped(t *testing.T, c *config.Config) (*EvalResult, []EvalDumpLine, string) {
	t.Helper()
	var log bytes.Buffer
	tr, err := New(c, Options{EvalOnly: true, Console: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var dump bytes.Buffer
	tr.DumpEvaluations(&dump)
	res, err := tr.EvaluateSampled(tr.EvalExamples(), 2, 1.0)
	if err != nil {
		t.Fatal(err)
	}
	var lines []EvalDumpLine
	for _, l := range strings.Split(strings.TrimSpace(dump.String()), "\n") {
		var d EvalDumpLine
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, d)
	}
	return res, lines, log.String()
}

// An evaluation whose judging reward fails on some samples judges the
// others: accuracy and pass@k are over the judged samples (a failed sample
// is neither correct nor wrong, as in training, where it is excluded), and
// the failed ones are counted as eval/excluded.
func TestEvalPartlyExcluded(t *testing.T) {
	// Every third request fails; the others alternate correct, wrong.
	script := filepath.Join(t.TempDir(), "judge.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
n=0
while IFS= read -r line; do
  n=$((n+1))
  case $((n % 3)) in
    0) echo '{"error": "cannot judge"}' ;;
    1) echo 1 ;;
    *) echo 0 ;;
  esac
done
`), 0o755)
	c := parseConfig(t, tinyYAML(t.TempDir()), "eval.correct_reward=judge",
		`reward=[{name: judge, type: external, params: {command: ["sh", "`+script+`"], workers: 1, timeout: 60s}}]`)
	res, lines, log := evalDumped(t, c)
	var judged, correct, excluded int
	passed, promptJudged := map[string]bool{}, map[string]bool{}
	for _, d := range lines {
		score := d.Rewards["judge"]
		if score == nil {
			excluded++
			if d.Correct {
				t.Errorf("an unjudged sample counted correct: %+v", d)
			}
			continue
		}
		judged++
		promptJudged[d.ID] = true
		if d.Correct {
			correct++
			passed[d.ID] = true
		}
	}
	if excluded == 0 || judged == 0 || correct == 0 || correct == judged {
		t.Fatalf("the test wants judged, excluded, correct and wrong samples: %d judged (%d correct), %d excluded", judged, correct, excluded)
	}
	if want := float64(correct) / float64(judged); res.Accuracy != want {
		t.Errorf("accuracy %v, want %d correct of %d judged = %v (%d excluded)", res.Accuracy, correct, judged, want, excluded)
	}
	if want := float64(len(passed)) / float64(len(promptJudged)); res.PassAtK != want {
		t.Errorf("pass@2 %v, want %v", res.PassAtK, want)
	}
	if m := res.Metrics(); res.Excluded != excluded || m["eval/excluded"] != float64(excluded) {
		t.Errorf("excluded %d, metrics %v: want %d", res.Excluded, m, excluded)
	}
	if want := fmt.Sprintf("failed on %d of %d samples", excluded, excluded+judged); !strings.Contains(log, want) {
		t.Errorf("log %q: want %q", log, want)
	}
}

// The metrics an external reward program returns with its scores are
// logged as rewards/<name>/<metric> (their mean over the step), not dropped.
func TestExternalRewardMetricsLogged(t *testing.T) {
	script := filepath.Join(t.TempDir(), "reward.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
while IFS= read -r line; do
  echo '{"score": 0.5, "metrics": {"judge_calls": 2, "parsed": 1}}'
done
`), 0o755)
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "train.steps=2", "sft.steps=0", "checkpoint.every=0",
		`reward=[{name: ext, type: external, params: {command: ["sh", "`+script+`"], timeout: 60s}}]`)
	runConfig(t, c, Options{})
	ms, err := metrics.Read(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[1:] {
		if m["rewards/ext/judge_calls"] != 2 || m["rewards/ext/parsed"] != 1 || m["rewards/ext/mean"] != 0.5 || m["rewards/ext/std"] != 0 {
			t.Fatalf("step %v: %v", m["step"], m)
		}
	}
}
