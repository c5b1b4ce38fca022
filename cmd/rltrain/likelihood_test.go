package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/train"
)

// TestLikelihoodRewardMatchesLogprobs: the likelihood reward of each
// evaluated completion equals the sum of the reference's per-token
// log-probs that rltrain logprobs gives for the same text (prompt, the
// completion's steps before its last ";", then ";" and the reference), to
// 1e-5.
func TestLikelihoodRewardMatchesLogprobs(t *testing.T) {
	dir := t.TempDir()
	var out, errs bytes.Buffer
	cfg := "../../configs/likelihood.yaml"
	if err := runTrain(context.Background(), &out, &errs, cfg, runFlags{sftOnly: true, sets: []string{
		"sft.steps=40", "train.out_dir=" + dir, "data.eval_size=0"}}); err != nil {
		t.Fatalf("warm-up: %v\n%s", err, errs.String())
	}
	ckpt := filepath.Join(dir, "checkpoints", "sft-40")
	dump := filepath.Join(dir, "dump.jsonl")
	out.Reset()
	if err := runEval(&out, &errs, cfg, evalFlags{modelDir: ckpt, samples: 3, temperature: 1, limit: 6, dump: dump,
		sets: []string{"train.out_dir=" + dir, "data.eval_size=6"}}); err != nil {
		t.Fatalf("eval: %v\n%s", err, errs.String())
	}
	raw, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	var lines []train.EvalDumpLine
	var in strings.Builder
	var refLens []int
	for sc := bufio.NewScanner(bytes.NewReader(raw)); sc.Scan(); {
		var l train.EvalDumpLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		steps := strings.Split(l.Answer, ";")
		ref := ";" + steps[len(steps)-1] // the final result
		reasoning := l.Completion
		if i := strings.LastIndex(reasoning, ";"); i >= 0 {
			reasoning = reasoning[:i]
		}
		b, _ := json.Marshal(map[string]string{"text": l.Prompt + reasoning + ref})
		in.Write(append(b, '\n'))
		lines = append(lines, l)
		refLens = append(refLens, len(ref)) // one token per character
	}
	if len(lines) != 18 {
		t.Fatalf("%d dumped generations, want 18", len(lines))
	}
	inPath := filepath.Join(dir, "in.jsonl")
	os.WriteFile(inPath, []byte(in.String()), 0o644)
	var lpOut bytes.Buffer
	if err := runLogprobs(&lpOut, logprobsFlags{modelDir: ckpt, input: inPath, batch: 5, threads: 2, temperature: 1}); err != nil {
		t.Fatal(err)
	}
	i := 0
	worst := 0.0
	for sc := bufio.NewScanner(&lpOut); sc.Scan(); i++ {
		var got logprobsOut
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		var want float64
		for _, lp := range got.Logprobs[len(got.Logprobs)-refLens[i]:] {
			want += *lp
		}
		r := lines[i].Rewards["likelihood"]
		if r == nil {
			t.Fatalf("generation %d: no likelihood reward", i)
		}
		worst = math.Max(worst, math.Abs(*r-want))
		if math.Abs(*r-want) > 1e-5 {
			t.Errorf("generation %d (%q): reward %v, rltrain logprobs %v", i, lines[i].Completion, *r, want)
		}
	}
	if i != len(lines) {
		t.Fatalf("%d logprobs lines for %d generations", i, len(lines))
	}
	t.Logf("%d generations, largest difference %.2g", i, worst)
}
