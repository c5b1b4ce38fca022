package optim

import (
	"math"
	"testing"
)

// TestEMPGScales by hand: entropies 1, 2, 3 normalise to 0, 0.5, 1; with
// k = 1 the raw scales e^0, e^−0.5, e^−1 are divided by their mean.
func TestEMPGScales(t *testing.T) {
	raw := []float64{1, math.Exp(-0.5), math.Exp(-1)}
	mean := (raw[0] + raw[1] + raw[2]) / 3
	got := EMPGScales([]float64{1, math.NaN(), 2, 3}, 1)
	want := []float64{raw[0] / mean, 1, raw[1] / mean, raw[2] / mean}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-7 {
			t.Errorf("scale %d = %v, want %v", i, got[i], want[i])
		}
	}
	// Equal entropies: every scale 1; k = 0: every scale 1.
	for _, g := range [][]float64{EMPGScales([]float64{2, 2}, 3), EMPGScales([]float64{1, 5}, 0)} {
		for _, x := range g {
			if math.Abs(x-1) > 1e-7 {
				t.Errorf("scales %v, want all 1", g)
			}
		}
	}
}
