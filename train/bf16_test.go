package train

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/train/config"
)

// bf16StepTol bounds the difference of a step's metrics between the CPU
// backend in fp32 and the emulated CUDA backend with bf16 GEMM operands,
// relative to max(1e-3, |cpu|). It is internal/cudatest's bf16ModelTol
// (2⁻⁸·√k for the longest reduction of the tiny models, ≈ 4e-2): the same
// rounding, seen through the trainer's metrics.
const bf16StepTol = 4e-2

// TestCUDAEmulatedBF16MatchesCPU: five GRPO steps with backend.precision
// bf16 on the emulated CUDA backend follow the fp32 CPU run within the
// documented bf16 tolerance.
func TestCUDAEmulatedBF16MatchesCPU(t *testing.T) {
	run := func(backend, precision string) []map[string]float64 {
		out := t.TempDir()
		c := parseConfig(t, tinyYAML(out), "train.steps=5", "sft.steps=0", "checkpoint.every=0",
			"data.eval_size=0", "backend.type="+backend, "backend.precision="+precision,
			"algorithm.beta=0.04", "algorithm.entropy_coef=0.01")
		runConfig(t, c, Options{})
		return comparableMetrics(t, filepath.Join(out, "metrics.jsonl"))
	}
	cpuM, bf16M := run("cpu", "fp32"), run("cuda-emu", "bf16")
	if len(cpuM) != 5 || len(bf16M) != 5 {
		t.Fatalf("%d and %d metric lines", len(cpuM), len(bf16M))
	}
	for i := range cpuM {
		t.Logf("step %d: loss %.6g / %.6g, kl %.3g / %.3g, entropy %.6g / %.6g, grad_norm %.6g / %.6g, reward %.4g / %.4g", i+1,
			cpuM[i]["loss"], bf16M[i]["loss"], cpuM[i]["kl"], bf16M[i]["kl"], cpuM[i]["entropy"], bf16M[i]["entropy"],
			cpuM[i]["grad_norm"], bf16M[i]["grad_norm"], cpuM[i]["reward"], bf16M[i]["reward"])
		for _, k := range []string{"reward", "completions/mean_length", "loss", "pg_loss", "kl", "entropy", "grad_norm"} {
			a, b := cpuM[i][k], bf16M[i][k]
			if math.Abs(a-b) > bf16StepTol*max(1e-3, math.Abs(a)) {
				t.Errorf("step %d %s: cpu fp32 %.6g, cuda (emulated) bf16 %.6g", i+1, k, a, b)
			}
		}
	}
}

// NewBackend applies backend.precision and backend.tf32 to the CUDA
// backends and refuses them on the CPU backend.
func TestNewBackendPrecision(t *testing.T) {
	be, err := NewBackend(config.Backend{Type: "cuda-emu", Precision: "bf16", TF32: true})
	if err != nil {
		t.Fatal(err)
	}
	if p := be.(*cuda.Backend).Precision(); p != cuda.PrecisionBF16 {
		t.Errorf("precision %s, want bf16", p)
	}
	if n := be.Name(); n != "cuda (emulator, bf16 GEMMs)" {
		t.Errorf("name %q", n)
	}
	for _, c := range []config.Backend{{Type: "cpu", Precision: "bf16"}, {Type: "cpu", TF32: true}, {Type: "cuda-emu", Precision: "fp16"}} {
		if _, err := NewBackend(c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
