package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryConfigRuns parses every shipped config and runs it for a couple
// of steps (GPU recipes, which need real checkpoints, are covered by
// TestGPURecipes).
func TestEveryConfigRuns(t *testing.T) {
	paths, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(paths) < 8 {
		t.Fatalf("found %d configs (%v)", len(paths), err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			sets := []string{"train.out_dir=" + out, "train.steps=2", "sft.steps=2", "data.eval_size=4", "checkpoint.every=0"}
			if filepath.Base(p) == "lora.yaml" {
				// Its base model is the demo's warm-up: a short one here.
				base := t.TempDir()
				if err := runTrain(context.Background(), &bytes.Buffer{}, &stderr, "../../configs/demo.yaml", runFlags{sftOnly: true,
					sets: []string{"train.out_dir=" + base, "sft.steps=2", "data.eval_size=4"}}); err != nil {
					t.Fatalf("base model: %v\n%s", err, stderr.String())
				}
				sets = append(sets, "model.path="+filepath.Join(base, "checkpoints", "sft-2"))
			}
			err := runTrain(context.Background(), &stdout, &stderr, p, runFlags{sets: sets})
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			if !strings.Contains(stdout.String(), "final accuracy") {
				t.Errorf("no final evaluation:\n%s", stdout.String())
			}
			if _, err := os.Stat(filepath.Join(out, "checkpoints", "step-2", "DONE")); err != nil {
				t.Errorf("no final checkpoint: %v", err)
			}
		})
	}
}

func TestRunBadInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	badJSONL := write("bad.jsonl", "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n{\"prompt\": 3}\n")
	for _, tc := range []struct {
		name, cfg string
		sets      []string
		want      string
	}{
		{"unknown key", "rollout:\n  grup_size: 4\n", nil, `cfg.yaml:2: unknown key "rollout.grup_size"`},
		{"wrong type", "optim:\n  lr: fast\n", nil, "cfg.yaml:2: optim.lr"},
		{"missing model dir", "data: {task: arithmetic}\nmodel: {path: /nonexistent/model}\n", nil, "model.path: stat /nonexistent/model"},
		{"malformed jsonl", "data: {train: " + badJSONL + "}\nreward: [{type: exact_match}]\n", nil, "bad.jsonl:2"},
		{"bad set", "data: {task: arithmetic}\n", []string{"optim.lrr=1"}, "optim.lrr"},
		{"gdpo with one reward", "data: {task: arithmetic}\nalgorithm: {advantage: gdpo}\n", nil, "gdpo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "cfg.yaml", tc.cfg)
			sets := append([]string{"train.out_dir=" + t.TempDir()}, tc.sets...)
			var stdout, stderr bytes.Buffer
			err := runTrain(context.Background(), &stdout, &stderr, p, runFlags{sets: sets})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestConfigDocIsCurrent keeps configs/README.md equal to `rltrain config
// --doc`; regenerate it with `bin/rltrain config --doc > configs/README.md`.
func TestConfigDocIsCurrent(t *testing.T) {
	want, err := os.ReadFile("../../configs/README.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := execute(t, "config", "--doc")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Error("configs/README.md is out of date: run `bin/rltrain config --doc > configs/README.md`")
	}
}

// TestConfigPrintsLikeRun: `rltrain config CONFIG` is a shorter name for
// `rltrain run CONFIG --print-config`.
func TestConfigPrintsLikeRun(t *testing.T) {
	var viaRun bytes.Buffer
	sets := []string{"optim.lr=3e-6"}
	if err := runTrain(nil, &viaRun, &bytes.Buffer{}, "../../configs/demo.yaml", runFlags{sets: sets, printConfig: true}); err != nil {
		t.Fatal(err)
	}
	viaConfig, err := execute(t, "config", "../../configs/demo.yaml", "--set", sets[0])
	if err != nil {
		t.Fatal(err)
	}
	if viaRun.Len() == 0 || viaRun.String() != viaConfig || !bytes.Contains(viaRun.Bytes(), []byte("lr: 3e-06")) {
		t.Errorf("run --print-config:\n%s\nconfig:\n%s", viaRun.String(), viaConfig)
	}
}
