package rollout

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGreedyRowMatchesScalar checks the vector greedy path against the
// scalar one: the same token (lowest id among tied maxima) and a log-prob
// within 1e-6, on spread and on tight logits, ties, −Inf and NaN entries.
func TestGreedyRowMatchesScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 200 {
		V := []int{16, 48, 4096, 32000, 97}[trial%5]
		row := make([]float32, V)
		scale := []float64{0.01, 1, 30}[trial%3]
		for i := range row {
			row[i] = float32(r.NormFloat64() * scale)
		}
		switch trial % 7 {
		case 1: // a tie for the maximum, the later copy first in memory order of chunks
			a, b := r.IntN(V), r.IntN(V)
			row[a], row[b] = 50, 50
		case 2:
			row[r.IntN(V)] = float32(math.Inf(-1))
		case 3:
			row[r.IntN(V)] = float32(math.NaN())
		case 4: // a far outlier: most exponentials underflow
			row[r.IntN(V)] = 200
		}
		gt, gl := greedyRow(row)
		wt, wl := greedyRowScalar(row)
		if gt != wt || math.Abs(float64(gl-wl)) > 1e-6 {
			t.Fatalf("trial %d (V=%d): greedyRow = (%d, %g), scalar (%d, %g)", trial, V, gt, gl, wt, wl)
		}
	}
}

// TestExpWeightsMatchesScalar checks the vector sampling weights against
// expNonPos, for temperatures from 0.1 to 2: each weight e^x within
// (1e-6 + 2.4e-7·|x|) relative, the second term being the float32
// rounding of the argument x = (z − max)/T (or within 1e-30 absolute), and
// the sum within 1e-6.
func TestExpWeightsMatchesScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for trial := range 60 {
		V := []int{16, 4096, 32000}[trial%3]
		row := make([]float32, V)
		for i := range row {
			row[i] = float32(r.NormFloat64() * 4)
		}
		mx, ok := rowMax(row)
		if !ok {
			t.Skip("no vector path in this build")
		}
		invT := []float64{1, 1 / 0.1, 1 / 0.7, 1 / 2.0}[trial%4]
		w := make([]float64, V)
		sum, _ := expWeights(w, row, mx, invT)
		var want float64
		for i, v := range row {
			x := (float64(v) - float64(mx)) * invT
			e := expNonPos(x)
			want += e
			if d := math.Abs(w[i] - e); d > (1e-6+2.4e-7*math.Abs(x))*e && d > 1e-30 {
				t.Fatalf("trial %d: weight %d = %g, want %g", trial, i, w[i], e)
			}
		}
		if math.Abs(sum-want) > 1e-6*want {
			t.Fatalf("trial %d: sum %g, want %g", trial, sum, want)
		}
	}
}
