package cpu_test

import (
	"github.com/rltrain/rltrain/internal/torchref"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
)

// torchRef runs scripts/torch_optim_ref.py with req on stdin and decodes
// its answer into resp.
func torchRef(t *testing.T, req, resp any) {
	t.Helper()
	torchref.JSON(t, "torch_optim_ref.py", req, resp)
}

// TestAdamWMatchesTorch runs 10 AdamW steps (with a warm-up learning rate
// that changes every step, and weight decay) on 5000 parameters and
// compares parameters and both moments with torch.optim.AdamW: difference
// ≤ 1e-6, relative for values above 1 and absolute below.
func TestAdamWMatchesTorch(t *testing.T) {
	const n, steps = 5000, 10
	r := rand.New(rand.NewPCG(7, 8))
	param := make([]float32, n)
	for i := range param {
		param[i] = float32(r.NormFloat64())
	}
	grads := make([][]float32, steps)
	lrs := make([]float32, steps)
	for s := range grads {
		grads[s] = make([]float32, n)
		for i := range grads[s] {
			// Mixed magnitudes, including exact zeros.
			if r.IntN(10) > 0 {
				grads[s][i] = float32(r.NormFloat64() * math.Pow(10, -3*r.Float64()))
			}
		}
		lrs[s] = 1e-2 * float32(s+1) / steps
	}
	hp := kernels.AdamWParams{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
	req := map[string]any{"op": "adamw", "param": param, "grads": grads, "lr": lrs,
		"beta1": hp.Beta1, "beta2": hp.Beta2, "eps": hp.Eps, "weight_decay": hp.WeightDecay}
	var want struct{ Param, ExpAvg, ExpAvgSq []float32 }
	var raw map[string][]float32
	torchRef(t, req, &raw)
	want.Param, want.ExpAvg, want.ExpAvgSq = raw["param"], raw["exp_avg"], raw["exp_avg_sq"]

	for _, threads := range []int{1, 2} {
		b := cpu.New(threads)
		p := append(cpu.F32(nil), param...)
		m, v := make(cpu.F32, n), make(cpu.F32, n)
		for s := range steps {
			hp.LR, hp.Step = lrs[s], s+1
			b.AdamW(p, cpu.F32(grads[s]), m, v, n, hp)
		}
		check := func(name string, got, want []float32, tol float64) {
			if len(want) != n {
				t.Fatalf("reference %s has %d values, want %d", name, len(want), n)
			}
			worst := 0.0
			for i := range got {
				d := math.Abs(float64(got[i] - want[i]))
				worst = math.Max(worst, d/math.Max(1, math.Abs(float64(want[i]))))
			}
			if worst > tol {
				t.Errorf("threads %d: %s differs from PyTorch by %g (tolerance %g)", threads, name, worst, tol)
			}
			if testing.Verbose() {
				t.Logf("threads %d: %s max difference %g", threads, name, worst)
			}
		}
		check("param", p, want.Param, 1e-6)
		check("exp_avg", m, want.ExpAvg, 1e-6)
		check("exp_avg_sq", v, want.ExpAvgSq, 1e-6)
	}
}

// TestSumSquaresAndScale checks the reduction against a float64 loop and
// its independence from the thread count.
func TestSumSquaresAndScale(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{0, 1, 4095, 4096, 100003} {
		x := make(cpu.F32, n)
		var want float64
		for i := range x {
			x[i] = float32(r.NormFloat64())
			want += float64(x[i]) * float64(x[i])
		}
		s1, s2 := cpu.New(1).SumSquares(x), cpu.New(3).SumSquares(x)
		if s1 != s2 {
			t.Errorf("n=%d: %v with 1 thread, %v with 3", n, s1, s2)
		}
		if math.Abs(s1-want) > 1e-9*math.Max(1, want) {
			t.Errorf("n=%d: sum of squares %v, want %v", n, s1, want)
		}
		cpu.New(2).Scale(x, 0.5)
		if got := cpu.New(2).SumSquares(x); math.Abs(got-want/4) > 1e-9*math.Max(1, want) {
			t.Errorf("n=%d: after Scale(0.5) sum %v, want %v", n, got, want/4)
		}
	}
}

// TestSegmentKernels checks the two DRPO helpers on a hand example.
func TestSegmentKernels(t *testing.T) {
	b := cpu.New(1)
	x := cpu.F32{1, 2, 3, 4, 5, 6}
	mask := cpu.F32{0, 1, 1, 1, 0, 1}
	off := []int{0, 3, 5}
	out := make([]float64, 2)
	b.SegmentSums(out, x, mask, off)
	if out[0] != 5 || out[1] != 4 {
		t.Errorf("segment sums %v, want [5 4]", out)
	}
	dst := cpu.F32{9, 9, 9, 9, 9, 9}
	b.SegmentBroadcast(dst, mask, off, []float32{2, -1})
	want := []float32{0, 2, 2, -1, 0, 0}
	for i := range want {
		if dst[i] != want[i] {
			t.Fatalf("broadcast %v, want %v", dst, want)
		}
	}
}

// Compile-time check that the CPU backend provides the optimizer kernels.
var _ kernels.Optim = (*cpu.Backend)(nil)
