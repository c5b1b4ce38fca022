package cpu

import (
	"math"
	"testing"

	"github.com/rltrain/rltrain/kernels"
)

func TestExpfAccuracy(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x < 88.5; x += 0.0137 {
		got, want := float64(expf(x)), math.Exp(float64(x))
		worst = max(worst, math.Abs(got-want)/want)
	}
	if worst > 4e-7 {
		t.Errorf("expf relative error %.3g > 4e-7", worst)
	}
	if expf(-100) != 0 || !math.IsInf(float64(expf(100)), 1) || expf(0) != 1 {
		t.Errorf("expf edge cases: %g %g %g", expf(-100), expf(100), expf(0))
	}
	if nan := float32(math.NaN()); !math.IsNaN(float64(expf(nan))) {
		t.Error("expf(NaN) is not NaN")
	}
}

func BenchmarkExpf(b *testing.B) {
	s := float32(0)
	for i := 0; i < b.N; i++ {
		s += expf(float32(i&1023) * -0.01)
	}
	_ = s
}

func BenchmarkMathExp(b *testing.B) {
	s := 0.0
	for i := 0; i < b.N; i++ {
		s += math.Exp(float64(i&1023) * -0.01)
	}
	_ = s
}

func BenchmarkExpfArray(b *testing.B) {
	in, out := make([]float32, 4096), make([]float32, 4096)
	for i := range in {
		in[i] = float32(i) * -0.003
	}
	for i := 0; i < b.N; i++ {
		for j, v := range in {
			out[j] = expf(v)
		}
	}
}

func BenchmarkMathExpArray(b *testing.B) {
	in, out := make([]float32, 4096), make([]float32, 4096)
	for i := range in {
		in[i] = float32(i) * -0.003
	}
	for i := 0; i < b.N; i++ {
		for j, v := range in {
			out[j] = float32(math.Exp(float64(v)))
		}
	}
}

func TestExpShiftMatchesExpf(t *testing.T) {
	src := []float32{-200, -87.31, -3, 0, 0.5, 10, 88.71, 300, float32(math.NaN())}
	dst := make([]float32, len(src))
	expShift(dst, src, 1)
	for i, v := range src {
		want := expf(v - 1)
		if dst[i] != want && !(math.IsNaN(float64(want)) && math.IsNaN(float64(dst[i]))) {
			t.Errorf("expShift(%g) = %g, expf gives %g", v, dst[i], want)
		}
	}
}

func BenchmarkExpShiftArray(b *testing.B) {
	in, out := make([]float32, 4096), make([]float32, 4096)
	for i := range in {
		in[i] = float32(i) * -0.003
	}
	for i := 0; i < b.N; i++ {
		expShift(out, in, 0)
	}
}

// TestExpShiftAccuracy covers the vector path (when built with
// GOEXPERIMENT=simd on an AVX-512 machine) and the scalar one: every
// element within 4e-7 relative, out-of-range and NaN lanes as expf, and the
// sum to 1e-6.
func TestExpShiftAccuracy(t *testing.T) {
	t.Logf("vector path: %v", simdEnabled())
	src := make([]float32, 5003)
	for i := range src {
		src[i] = float32(i%997)*0.09 - 80
	}
	src[17], src[600], src[4999] = -200, float32(math.NaN()), 300
	dst := make([]float32, len(src))
	sum := expShift(dst, src, 1.5)
	var want float64
	for i, v := range src {
		w := expf(v - 1.5)
		if math.IsNaN(float64(w)) {
			if !math.IsNaN(float64(dst[i])) {
				t.Fatalf("element %d: NaN input gave %g", i, dst[i])
			}
			continue
		}
		want += float64(w)
		if d := math.Abs(float64(dst[i]) - float64(w)); d > 4e-7*math.Abs(float64(w)) {
			t.Fatalf("element %d (x=%g): %g, expf %g", i, v, dst[i], w)
		}
	}
	if !math.IsNaN(sum) {
		t.Errorf("sum with a NaN element is %g, want NaN", sum)
	}
	src[600] = 0
	sum = expShift(dst, src, 1.5)
	want += float64(expf(-1.5))
	if math.Abs(sum-want) > 1e-6*want {
		t.Errorf("sum %g, want %g", sum, want)
	}
}

// TestDotAxpy covers the vector and scalar paths and every tail length.
func TestDotAxpy(t *testing.T) {
	for n := 0; n < 70; n++ {
		a, b := make([]float32, n), make([]float32, n)
		for i := range a {
			a[i], b[i] = float32(i%7)-2.5, float32(i%5)*0.3-0.4
		}
		var want float64
		for i := range a {
			want += float64(a[i]) * float64(b[i])
		}
		if got := dot(a, b); math.Abs(float64(got)-want) > 1e-5*(1+math.Abs(want)) {
			t.Fatalf("dot of %d: %g, want %g", n, got, want)
		}
		y := append([]float32(nil), b...)
		axpy(1.5, a, y)
		for i := range y {
			if w := b[i] + 1.5*a[i]; math.Abs(float64(y[i]-w)) > 1e-6 {
				t.Fatalf("axpy of %d at %d: %g, want %g", n, i, y[i], w)
			}
		}
	}
}

// TestVectorHelpersMatchScalar: the AdamW element update is bit-identical
// to the scalar code, and max/scale agree, at every tail length.
func TestVectorHelpersMatchScalar(t *testing.T) {
	c := kernels.AdamWScalars{Decay: 0.999, Beta1: 0.9, OneMinusBeta1: 0.1, Beta2: 0.999, OneMinusBeta2: 0.001, NegStep: -0.003, BC2Sqrt: 0.04, Eps: 1e-8}
	for n := 1; n < 70; n++ {
		mk := func(k float32) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32((i*7+int(k))%11)*0.13*k - 0.3
			}
			return v
		}
		p1, g, m1, v1 := mk(1), mk(2), mk(3), mk(0.5)
		for i := range v1 {
			v1[i] = v1[i] * v1[i]
		}
		p2, m2, v2 := append([]float32(nil), p1...), append([]float32(nil), m1...), append([]float32(nil), v1...)
		adamwRange(p1, g, m1, v1, c)
		adamwRangeScalar(p2, g, m2, v2, c)
		for i := range p1 {
			if p1[i] != p2[i] || m1[i] != m2[i] || v1[i] != v2[i] {
				t.Fatalf("n=%d: AdamW element %d differs from the scalar update", n, i)
			}
		}
		if maxSlice(g) != maxSliceScalar(g) {
			t.Fatalf("n=%d: max %g, scalar %g", n, maxSlice(g), maxSliceScalar(g))
		}
		d1, d2 := make([]float32, n), make([]float32, n)
		scaleInto(d1, g, 0.7)
		scaleIntoScalar(d2, g, 0.7)
		for i := range d1 {
			if d1[i] != d2[i] {
				t.Fatalf("n=%d: scale differs at %d", n, i)
			}
		}
		// RMSNorm's row helpers: the output is bit-identical, the sum of
		// squares (exact products, float64 additions in another order)
		// within a few float64 ulps.
		normRow(d1, g, p1, 0.37)
		normRowScalar(d2, g, p1, 0.37)
		for i := range d1 {
			if d1[i] != d2[i] {
				t.Fatalf("n=%d: RMSNorm row differs at %d", n, i)
			}
		}
		if a, b := sumSquares(g), sumSquaresScalar(g); math.Abs(a-b) > 1e-14*b {
			t.Fatalf("n=%d: sum of squares %v, scalar %v", n, a, b)
		}
	}
}
