//go:build cuda

package cudrv_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/kernels/cuda/cudatest"
	"github.com/rltrain/rltrain/kernels/cuda/cudrv"
)

// open returns a driver on device 0, skipping the test when none is
// present. (Without an NVIDIA driver at all, gorgonia.org/cu ends the
// process during init; scripts/gpu-ci.sh checks for a GPU first.)
func open(t *testing.T) func() (cuda.Driver, error) {
	n, err := cudrv.Devices()
	if err != nil || n == 0 {
		t.Skipf("no CUDA device (count %d, %v)", n, err)
	}
	return func() (cuda.Driver, error) { return cudrv.Open(0) }
}

func TestKernelsMatchCPU(t *testing.T) { cudatest.Kernels(t, open(t)) }

// TestModelMatchesCPU: 20 GRPO steps of tiny models against the CPU.
func TestModelMatchesCPU(t *testing.T) { cudatest.Model(t, open(t), 20) }

// TestModelBF16: tiny models with bf16 GEMM operands against the fp32 CPU.
func TestModelBF16(t *testing.T) { cudatest.ModelBF16(t, open(t), 5) }

// TestModelTF32: the same with TF32 GEMMs.
func TestModelTF32(t *testing.T) { cudatest.ModelTF32(t, open(t), 5) }

// TestBenchGPU is make bench-gpu: every kernel at Qwen2.5-0.5B shapes
// against its floor, the training step's MFU, decode tokens/s against the
// bandwidth bound, and peak device memory.
func TestBenchGPU(t *testing.T) {
	if os.Getenv("RLTRAIN_BENCH_GPU") == "" {
		t.Skip("set RLTRAIN_BENCH_GPU=1 to benchmark (make bench-gpu)")
	}
	d, err := open(t)()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	drv := d.(*cudrv.Driver)
	free0, total, err := drv.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	minFree := free0
	sample := func() {
		if f, _, err := drv.MemInfo(); err == nil {
			minFree = min(minFree, f)
		}
	}
	fmt.Printf("device: %s; floors and ratios assume %s peaks\n", drv.Name(), cudatest.H100.Name)
	cfg := cudatest.Qwen05B()
	res, err := cudatest.BenchKernels(drv, cudatest.ShapeOf(cfg, 4096, 1024), cudatest.H100, 20)
	sample()
	if err != nil {
		t.Fatal(err)
	}
	cudatest.WriteResults(os.Stdout, "kernels at Qwen2.5-0.5B shapes, 4096 tokens (4×1024)", res)
	for _, prec := range []cuda.Precision{cuda.PrecisionFP32, cuda.PrecisionBF16} {
		mb, err := cudatest.BenchModel(drv, cfg, cudatest.H100, prec, 4, 512, 64, 128, 32)
		sample()
		if err != nil {
			t.Fatal(err)
		}
		cudatest.WriteModelBench(os.Stdout, "Qwen2.5-0.5B (random weights)", mb)
	}
	// Nothing is freed during the run, so the lowest free memory seen is the
	// peak of this process.
	fmt.Printf("peak device memory: %.2f GiB of %.2f GiB\n", float64(free0-minFree)/(1<<30), float64(total)/(1<<30))
}

func TestDriverBasics(t *testing.T) {
	newDrv := open(t)
	d, err := newDrv()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t.Logf("device: %s", d.Name())
	if err := d.Launch("no_such_kernel", cuda.D1(1), cuda.D1(1), 0, nil); err == nil {
		t.Error("launching an unknown kernel succeeded")
	}
	p, err := d.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	src := []byte("0123456789abcdef0123456789abcdef")
	if err := d.CopyHtoD(p, src); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(src))
	if err := d.CopyDtoH(got, p); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(src) {
		t.Errorf("round trip %q, want %q", got, src)
	}
	if err := d.Free(p); err != nil {
		t.Fatal(err)
	}
}

func TestBF16(t *testing.T) { cudatest.BF16(t, open(t)) }

func TestSampling(t *testing.T) { cudatest.Sampling(t, open(t)) }
