package optim

import "math"

// EMPGScales is EMPG's self-calibrating gradient scaling (Entropy-Modulated
// Policy Gradients, Liu et al., arXiv 2509.09265): for step entropies H
// (here one per completion, the mean entropy of its tokens under the
// sampling policy), min-max normalised over the batch,
//
//	Ĥ_i = (H_i − min H) / (max H − min H + 1e-8)
//	g_i = exp(−k·Ĥ_i) / (mean_j exp(−k·Ĥ_j) + 1e-8)
//
// so the scales average 1 over the batch: confident (low-entropy)
// completions get their advantages amplified, uncertain ones attenuated.
// NaN entries (excluded completions) get scale 1 and are left out of the
// normalisation.
func EMPGScales(H []float64, k float64) []float64 {
	g := make([]float64, len(H))
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, h := range H {
		if !math.IsNaN(h) {
			lo, hi = math.Min(lo, h), math.Max(hi, h)
		}
	}
	var sum float64
	var n int
	for i, h := range H {
		if math.IsNaN(h) {
			continue
		}
		g[i] = math.Exp(-k * (h - lo) / (hi - lo + 1e-8))
		sum += g[i]
		n++
	}
	for i, h := range H {
		if math.IsNaN(h) || n == 0 {
			g[i] = 1
			continue
		}
		g[i] /= sum/float64(n) + 1e-8
	}
	return g
}
