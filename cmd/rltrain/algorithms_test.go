package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/rltrain/rltrain/train/metrics"
)

// TestEveryAlgorithmImproves: from one shared supervised warm-up, a short
// run of each algorithm's config raises the training reward on the
// arithmetic task: the mean over the last 8 of 40 steps exceeds the mean
// over the first 8 (a loose threshold at a fixed seed).
func TestEveryAlgorithmImproves(t *testing.T) {
	if testing.Short() {
		t.Skip("trains seven short runs")
	}
	warm := t.TempDir()
	var out, errs bytes.Buffer
	if err := runTrain(context.Background(), &out, &errs, "../../configs/grpo.yaml", runFlags{sftOnly: true, sets: []string{
		"sft.steps=60", "train.out_dir=" + warm, "data.eval_size=0"}}); err != nil {
		t.Fatalf("warm-up: %v\n%s", err, errs.String())
	}
	start := filepath.Join(warm, "checkpoints", "sft-60")
	for _, name := range []string{"grpo", "dr_grpo", "dapo", "rloo", "gdpo", "ppo", "drpo"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var out, errs bytes.Buffer
			err := runTrain(context.Background(), &out, &errs, "../../configs/"+name+".yaml", runFlags{sets: []string{
				"model.path=" + start, "sft.steps=0", "train.steps=40", "train.out_dir=" + dir,
				"checkpoint.every=0", "data.eval_size=0"}})
			if err != nil {
				t.Fatalf("%v\n%s", err, errs.String())
			}
			ms, err := metrics.Read(filepath.Join(dir, "metrics.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			mean := func(rows []map[string]float64) float64 {
				s := 0.0
				for _, m := range rows {
					s += m["reward"]
				}
				return s / float64(len(rows))
			}
			first, last := mean(ms[:8]), mean(ms[len(ms)-8:])
			t.Logf("%s: mean reward %.3f over the first 8 steps, %.3f over the last 8", name, first, last)
			if !(last > first) {
				t.Errorf("%s did not improve the reward: %.3f -> %.3f", name, first, last)
			}
		})
	}
}
