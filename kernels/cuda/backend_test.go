package cuda_test

import (
	"testing"

	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/kernels/cuda/cudatest"
)

func emu() (cuda.Driver, error) { return cuda.NewEmu(), nil }

// TestKernelsMatchCPU runs every kernel on the emulated driver against the
// CPU backend.
func TestKernelsMatchCPU(t *testing.T) { cudatest.Kernels(t, emu) }

// TestModelMatchesCPU runs tiny models end to end (forward, 5 GRPO steps,
// decoding) on the emulated driver against the CPU backend.
func TestModelMatchesCPU(t *testing.T) { cudatest.Model(t, emu, 5) }

// TestBF16 checks the bf16 building blocks on the emulated driver.
func TestBF16(t *testing.T) { cudatest.BF16(t, emu) }

// TestSampling checks device sampling on the emulated driver.
func TestSampling(t *testing.T) { cudatest.Sampling(t, emu) }

// TestModelBF16 runs tiny models with bf16 GEMM operands against the fp32
// CPU backend.
func TestModelBF16(t *testing.T) { cudatest.ModelBF16(t, emu, 5) }
