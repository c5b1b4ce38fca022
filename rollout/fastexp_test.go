package rollout

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestExpNonPos(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	worst := 0.0
	for i := range 200000 {
		x := -r.Float64() * 40
		if i%4 == 0 {
			x = -r.Float64() * 700
		}
		got, want := expNonPos(x), math.Exp(x)
		worst = max(worst, math.Abs(got-want)/want)
	}
	if worst > 1e-9 {
		t.Fatalf("relative error %.3g > 1e-9", worst)
	}
	if expNonPos(0) != 1 || expNonPos(-800) != 0 {
		t.Fatalf("exp(0) = %g, exp(-800) = %g", expNonPos(0), expNonPos(-800))
	}
}

func BenchmarkExp(b *testing.B) {
	xs := make([]float64, 4096)
	for i := range xs {
		xs[i] = -float64(i) / 200
	}
	b.Run("math", func(b *testing.B) {
		s := 0.0
		for b.Loop() {
			for _, x := range xs {
				s += math.Exp(x)
			}
		}
	})
	b.Run("expNonPos", func(b *testing.B) {
		s := 0.0
		for b.Loop() {
			for _, x := range xs {
				s += expNonPos(x)
			}
		}
	})
}
