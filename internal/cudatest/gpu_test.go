package cudatest

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/kernels/cuda"
)

// The GPU conformance suite: the comparisons the emulator passes in
// kernels/cuda's tests, run against a real device through the NVIDIA
// driver (make gpu-test) or the stand-in driver (make gpu-standin). Without
// a GPU each test skips with the reason, unless RLTRAIN_REQUIRE_GPU is set
// (both make targets set it once they know a device, or the stand-in, is
// there), when a missing device fails instead of passing silently.

// openGPU returns a constructor of drivers on device 0 (RLTRAIN_GPU picks
// another ordinal), skipping the test when none can be opened.
func openGPU(t *testing.T) func() (cuda.Driver, error) {
	t.Helper()
	ordinal := 0
	if s := os.Getenv("RLTRAIN_GPU"); s != "" {
		if _, err := fmt.Sscan(s, &ordinal); err != nil {
			t.Fatalf("RLTRAIN_GPU=%q: %v", s, err)
		}
	}
	g, err := cuda.OpenGPU(ordinal)
	if err != nil {
		if os.Getenv("RLTRAIN_REQUIRE_GPU") != "" {
			t.Fatalf("RLTRAIN_REQUIRE_GPU is set but no GPU opens: %v", err)
		}
		t.Skipf("no GPU: %v", err)
	}
	t.Logf("%s", g.Info())
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	return func() (cuda.Driver, error) { return cuda.OpenGPU(ordinal) }
}

func TestGPUKernels(t *testing.T) { Kernels(t, openGPU(t)) }

// TestGPUModel: 20 GRPO steps of tiny models against the CPU.
func TestGPUModel(t *testing.T) { Model(t, openGPU(t), 20) }

// TestGPULoRA: 10 GRPO steps training tiny models' LoRA adapters, and
// decoding through them, against the CPU.
func TestGPULoRA(t *testing.T) { LoRA(t, openGPU(t), 10) }

// TestGPUModelBF16: tiny models with bf16 GEMM operands against the fp32
// CPU (skipped on devices older than compute capability 8.0).
func TestGPUModelBF16(t *testing.T) { ModelBF16(t, openGPU(t), 5) }

// TestGPUModelTF32: the same with TF32 GEMMs.
func TestGPUModelTF32(t *testing.T) { ModelTF32(t, openGPU(t), 5) }

func TestGPUBF16(t *testing.T) { BF16(t, openGPU(t)) }

func TestGPUSampling(t *testing.T) { Sampling(t, openGPU(t)) }

func TestGPUOnePass(t *testing.T) { OnePass(t, openGPU(t)) }

// TestGPUDriver checks the driver's own contract: an unknown kernel is an
// error, a byte round trip is exact, and a failing call names itself.
func TestGPUDriver(t *testing.T) {
	d, err := openGPU(t)()
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
	if err := d.CopyDtoD(p+32, p, 32); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 64)
	if err := d.CopyDtoH(got, p); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(src)+string(src) {
		t.Errorf("round trip %q, want %q twice", got, src)
	}
	if err := d.Memset(p+8, 8); err != nil {
		t.Fatal(err)
	}
	if err := d.CopyDtoH(got[:16], p); err != nil {
		t.Fatal(err)
	}
	if string(got[:8]) != "01234567" || string(got[8:16]) != "\x00\x00\x00\x00\x00\x00\x00\x00" {
		t.Errorf("after memset: %q", got[:16])
	}
	if err := d.Free(p); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestBenchGPU is make bench-gpu: every kernel at Qwen2.5-0.5B shapes
// against its floor, the training step's MFU, decode tokens/s against the
// bandwidth bound, and peak device memory; printed, and written as JSON to
// RLTRAIN_BENCH_JSON when set (scripts/cuda/gpu-ci.sh: bench-gpu.json).
func TestBenchGPU(t *testing.T) {
	if os.Getenv("RLTRAIN_BENCH_GPU") == "" {
		t.Skip("set RLTRAIN_BENCH_GPU=1 to benchmark (make bench-gpu)")
	}
	d, err := openGPU(t)()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	drv := d.(*cuda.GPU)
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
	rep := &BenchReport{Device: drv.Info().String(), FloorsFor: H100.Name}
	fmt.Printf("device: %s; floors and ratios assume %s peaks\n", drv.Info(), H100.Name)
	// RLTRAIN_BENCH_TINY: a tiny model instead, for checking the harness
	// and its report end to end (make gpu-standin).
	cfg, rows, seqLen, title := Qwen05B(), 4096, 1024, "kernels at Qwen2.5-0.5B shapes, 4096 tokens (4×1024)"
	batch, seq, decBatch, promptLen, decSteps := 4, 512, 64, 128, 32
	if os.Getenv("RLTRAIN_BENCH_TINY") != "" {
		cfg, rows, seqLen, title = ModelConfigs()["qwen2"], 24, 12, "kernels of a tiny model"
		batch, seq, decBatch, promptLen, decSteps = 2, 8, 3, 4, 2
	}
	res, err := BenchKernels(drv, ShapeOf(cfg, rows, seqLen), H100, 20)
	sample()
	if err != nil {
		t.Fatal(err)
	}
	WriteResults(os.Stdout, title, res)
	rep.AddKernels(res)
	for _, prec := range []cuda.Precision{cuda.PrecisionFP32, cuda.PrecisionBF16} {
		if err := cuda.New(drv).SetPrecision(prec); err != nil {
			fmt.Printf("%s: skipped: %v\n", prec, err)
			continue
		}
		mb, err := BenchModel(drv, cfg, H100, prec, batch, seq, decBatch, promptLen, decSteps)
		sample()
		if err != nil {
			t.Fatal(err)
		}
		WriteModelBench(os.Stdout, cfg.ModelType+" (random weights)", mb)
		rep.AddModel(mb)
	}
	// Nothing is freed during the run, so the lowest free memory seen is the
	// peak of this process.
	peak := free0 - minFree
	fmt.Printf("peak device memory: %.2f GiB of %.2f GiB\n", float64(peak)/(1<<30), float64(total)/(1<<30))
	rep.Metrics = append(rep.Metrics, BenchMetric{Name: "peak_memory_bytes", Value: float64(max(peak, 1)), Better: "lower"})
	if path := os.Getenv("RLTRAIN_BENCH_JSON"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteJSON(f); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("wrote %s\n", path)
	}
}

// TestGPURollout: the rollout engine sampling on the device gives the CPU
// backend's completions token for token.
func TestGPURollout(t *testing.T) { Rollout(t, openGPU(t)) }

// TestGPUDriverContract checks the documented driver and cuBLAS behaviour
// the binding relies on: launches beyond the hardware limits are refused,
// kernel parameters are read at their declared sizes (garbage in the
// unused half of an 8-byte slot changes nothing), cuBLAS checks its
// leading dimensions. On the stand-in it also checks what the stand-in
// adds to make tests meaningful: fresh memory is not zeroed, copies are
// range-checked, an (injected) kernel fault is sticky in its context but
// not in a new one.
func TestGPUDriverContract(t *testing.T) {
	g, err := cuda.OpenGPU(0)
	if err != nil {
		openGPU(t) // skips, or fails under RLTRAIN_REQUIRE_GPU
		t.Fatal(err)
	}
	defer g.Close()
	standin := strings.Contains(g.Info().Name, "stand-in")
	const n = 1000
	p, err := g.Alloc(4 * n)
	if err != nil {
		t.Fatal(err)
	}
	host := make([]byte, 4*n)
	if standin {
		if err := g.CopyDtoH(host, p); err != nil {
			t.Fatal(err)
		}
		for i, b := range host {
			if b != 0xff {
				t.Fatalf("fresh device memory byte %d is %#x: cuMemAlloc does not zero, the stand-in fills 0xff", i, b)
			}
		}
		if err := g.CopyHtoD(p+8, host); err == nil {
			t.Error("a copy past the end of an allocation succeeded")
		}
	}
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	if err := g.CopyHtoD(p, f32bytes(ones)); err != nil {
		t.Fatal(err)
	}
	// scale(float* x, int n, float s): n and s are 4-byte parameters in
	// 8-byte slots whose high halves hold garbage.
	args := []uint64{uint64(p), uint64(n) | 0xdeadbeef<<32, uint64(math.Float32bits(3)) | 0xfeedface<<32}
	if err := g.Launch("scale", cuda.D1(4), cuda.D1(256), 0, args); err != nil {
		t.Fatal(err)
	}
	if err := g.CopyDtoH(host, p); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if v := math.Float32frombits(binary.LittleEndian.Uint32(host[4*i:])); v != 3 {
			t.Fatalf("x[%d] = %v after scale by 3: parameters not read at their declared 4 bytes", i, v)
		}
	}
	for _, bad := range []struct {
		what        string
		grid, block cuda.Dim3
		shared      int
	}{
		{"a zero grid", cuda.Dim3{X: 0, Y: 1, Z: 1}, cuda.D1(32), 0},
		{"1025 threads a block", cuda.D1(1), cuda.D1(1025), 0},
		{"a 33×33 block", cuda.D1(1), cuda.Dim3{X: 33, Y: 33, Z: 1}, 0},
		{"grid y of 65536", cuda.Dim3{X: 1, Y: 65536, Z: 1}, cuda.D1(32), 0},
		{"1 MiB of dynamic shared memory", cuda.D1(1), cuda.D1(32), 1 << 20},
	} {
		if err := g.Launch("scale", bad.grid, bad.block, bad.shared, args); err == nil {
			t.Errorf("a launch with %s succeeded", bad.what)
		}
	}
	if err := g.Sync(); err != nil {
		t.Fatalf("a refused launch left an error behind: %v", err)
	}
	c, err := g.Alloc(4 * 4)
	if err != nil {
		t.Fatal(err)
	}
	// C (2×2) = A (2×k) · B (k×2), column-major, with lda 1 < 2 rows.
	if err := g.Sgemm(false, false, 2, 2, 2, 1, p, 1, p, 2, 0, c, 2); err == nil || !strings.Contains(err.Error(), "CUBLAS_STATUS_INVALID_VALUE") {
		t.Errorf("sgemm with lda < m: %v", err)
	}
	if !standin {
		return
	}
	// An injected fault of the next launch: it is reported at the next
	// call (no CUDA_LAUNCH_BLOCKING) and by every call after it.
	t.Setenv("CUDA_LAUNCH_BLOCKING", "")
	t.Setenv("STANDIN_LAUNCH_FAIL_AT", "1")
	if err := g.Launch("scale", cuda.D1(4), cuda.D1(256), 0, args); err != nil {
		t.Errorf("the faulting launch itself reported %v (launches are asynchronous)", err)
	}
	os.Unsetenv("STANDIN_LAUNCH_FAIL_AT")
	for _, call := range []func() error{
		func() error { return g.CopyDtoH(host, p) },
		func() error { _, err := g.Alloc(16); return err },
		g.Sync,
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "CUDA_ERROR_ILLEGAL_ADDRESS") {
			t.Errorf("after a kernel fault: %v, want CUDA_ERROR_ILLEGAL_ADDRESS", err)
		}
	}
	g2, err := cuda.OpenGPU(0)
	if err != nil {
		t.Fatalf("a new context after a fault in another: %v", err)
	}
	defer g2.Close()
	if _, err := g2.Alloc(16); err != nil {
		t.Errorf("a new context inherited the fault: %v", err)
	}
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}
