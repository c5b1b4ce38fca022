package main

import (
	"bytes"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestGenerateBackends: --backend cuda-emu samples the completions of the
// CPU backend (the same counter-based streams over logits within float
// rounding), with log-probs within 1e-5 relative to max(1, |log-prob|).
func TestGenerateBackends(t *testing.T) {
	f := idPromptsFlags(t, "{\"ids\": [1, 5, 7]}\n{\"ids\": [9, 10, 11, 12, 13]}\n")
	cpuLines := runGenerateLines(t, f)
	f.dev.typ = "cuda-emu"
	emuLines := runGenerateLines(t, f)
	if len(cpuLines) != len(emuLines) {
		t.Fatalf("%d and %d lines", len(cpuLines), len(emuLines))
	}
	for i := range cpuLines {
		a, b := cpuLines[i], emuLines[i]
		if !slices.Equal(a.IDs, b.IDs) || a.Finish != b.Finish {
			t.Fatalf("line %d: cpu %v (%s), cuda-emu %v (%s)", i, a.IDs, a.Finish, b.IDs, b.Finish)
		}
		for j := range a.Logprobs {
			if d := math.Abs(float64(a.Logprobs[j] - b.Logprobs[j])); !(d <= 1e-5*max(1, math.Abs(float64(a.Logprobs[j])))) {
				t.Errorf("line %d token %d: log-prob %v on the CPU, %v on cuda-emu", i, j, a.Logprobs[j], b.Logprobs[j])
			}
		}
	}
}

// TestBackendFlagWithoutGPU: --backend cuda on a machine without a GPU is
// an error naming what is missing and the alternatives; a bad name lists
// the valid ones.
func TestBackendFlagWithoutGPU(t *testing.T) {
	dir := tinyModelDir(t, "LlamaForCausalLM")
	f := baseGenerateFlags(dir)
	f.prompt = "x"
	f.dev.typ = "tpu"
	var out bytes.Buffer
	if err := runGenerate(&out, &out, f); err == nil || !strings.Contains(err.Error(), "cpu, cuda or cuda-emu") {
		t.Errorf("--backend tpu: %v", err)
	}
	if _, err := os.Stat("/dev/nvidiactl"); err == nil || os.Getenv("LD_LIBRARY_PATH") != "" {
		t.Skip("a GPU or a stand-in driver may be visible")
	}
	f.dev.typ = "cuda"
	err := runGenerate(&out, &out, f)
	if err == nil || !strings.Contains(err.Error(), "cuda-emu") {
		t.Errorf("--backend cuda without a GPU: %v", err)
	}
}

// TestVersionReportsCUDA: version always has a cuda line: the GPUs found,
// or why there are none.
func TestVersionReportsCUDA(t *testing.T) {
	out, err := execute(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "\ncuda: ") {
		t.Errorf("version output has no cuda line:\n%s", out)
	}
}
