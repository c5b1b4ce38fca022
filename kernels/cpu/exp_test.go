package cpu

import (
	"math"
	"testing"
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
