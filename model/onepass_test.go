package model

import (
	"math"
	"testing"
)

// TestLogProbsAndBackwardEqualsTwoCalls checks the one-pass output layer
// at the model level: log-probs and every parameter gradient equal those of
// TokenLogProbs followed by BackwardLogProbs (1e-5 of the largest), with
// padding, masked rows and a temperature.
func TestLogProbsAndBackwardEqualsTwoCalls(t *testing.T) {
	for name, cfg := range testConfigs() {
		t.Run(name, func(t *testing.T) {
			m := randomModel(t, cfg, 5)
			b := Batch{IDs: []int32{3, 7, 9, 11, 5, 8, 1, 0, 2, 4, 6, 10}, B: 3, T: 4, Lens: []int{4, 3, 2}}
			targets := NextTokenTargets(b)
			dlogp := make([]float32, len(targets))
			for i := range dlogp {
				dlogp[i] = float32(i%5) - 1.5
			}
			ws := m.NewWorkspace()
			run := func(onePass bool) ([]float32, []float32) {
				m.EnableGrads()
				m.ZeroGrads()
				if _, err := m.Forward(ws, b); err != nil {
					t.Fatal(err)
				}
				var lp []float32
				if onePass {
					lp = m.LogProbsAndBackward(ws, targets, 1/0.7, dlogp)
				} else {
					lp, _ = m.TokenLogProbs(ws, targets, 1/0.7, false)
					m.BackwardLogProbs(ws, dlogp, nil)
				}
				g := make([]float32, m.Grads.Len())
				m.be.Download(g, m.Grads)
				return lp, g
			}
			lp2, g2 := run(false)
			lp1, g1 := run(true)
			for _, c := range []struct {
				what      string
				got, want []float32
			}{{"log-probs", lp1, lp2}, {"gradients", g1, g2}} {
				var num, den float64
				for i := range c.want {
					num = math.Max(num, math.Abs(float64(c.got[i]-c.want[i])))
					den = math.Max(den, math.Abs(float64(c.want[i])))
				}
				if den == 0 || num > 1e-5*den {
					t.Errorf("%s: one pass differs from two calls by %.3g (largest %.3g)", c.what, num, den)
				}
			}
		})
	}
}
