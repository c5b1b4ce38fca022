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
