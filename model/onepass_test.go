package model

import (
	"math"
	"testing"
)

// paddedBatch is three sequences of 4, 3 and 2 tokens, right-padded, with
// their next-token targets and a made-up gradient of each target's
// log-prob.
func paddedBatch() (b Batch, targets []int32, dlogp []float32) {
	b = Batch{IDs: []int32{3, 7, 9, 11, 5, 8, 1, 0, 2, 4, 6, 10}, B: 3, T: 4, Lens: []int{4, 3, 2}}
	targets = NextTokenTargets(b)
	dlogp = make([]float32, len(targets))
	for i := range dlogp {
		dlogp[i] = float32(i%5) - 1.5
	}
	return b, targets, dlogp
}

// TestLossGradEqualsTwoCalls checks the one-pass output layer at the model
// level: log-probs and every parameter gradient of LossGrad and Backward
// equal those of the TokenLogProbs and TokenLogProbsBackward kernels
// followed by Backward (1e-5 of the largest), with padding, masked rows and
// a temperature.
func TestLossGradEqualsTwoCalls(t *testing.T) {
	for name, cfg := range testConfigs() {
		t.Run(name, func(t *testing.T) {
			m := randomModel(t, cfg, 5)
			b, targets, dlogp := paddedBatch()
			ws := m.NewWorkspace()
			run := func(onePass bool) ([]float32, []float32) {
				m.EnableGrads()
				m.ZeroGrads()
				if _, err := m.Forward(ws, b); err != nil {
					t.Fatal(err)
				}
				var lp []float32
				if onePass {
					lp = lossGrad(t, m, ws, Output{Targets: targets, InvTemp: 1 / 0.7}, dlogp)
				} else {
					lp = twoPass(t, m, ws, targets, 1/0.7, dlogp)
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
				sameUpTo(t, c.what+": one pass against two calls", c.got, c.want, 1e-5)
			}
		})
	}
}

// TestOutputSpans checks the compact-row log-probs (LogProbs with spans)
// against the same rows of a full-row TokenLogProbs (1e-6 relative: only
// the products' row counts differ), and that LossGrad with spans gives the
// gradients of the full-row two-kernel path whose dL/dℓ is zero outside the
// spans (1e-5 of the largest).
func TestOutputSpans(t *testing.T) {
	m := randomModel(t, testConfigs()["llama"], 9)
	b := Batch{IDs: []int32{3, 7, 9, 11, 5, 8, 1, 0, 2, 4, 6, 10}, B: 3, T: 4, Lens: []int{4, 3, 2}}
	full := NextTokenTargets(b)
	spans := [][2]int{{1, 3}, {4, 4}, {5, 6}, {8, 9}}
	var targets []int32
	var dlogpCompact []float32
	dlogpFull := make([]float32, len(full))
	for _, sp := range spans {
		for r := sp[0]; r < sp[1]; r++ {
			targets = append(targets, full[r])
			g := float32(r%3) - 0.7
			dlogpCompact = append(dlogpCompact, g)
			dlogpFull[r] = g
		}
	}
	ws := m.NewWorkspace()
	m.EnableGrads()
	if _, err := m.Forward(ws, b); err != nil {
		t.Fatal(err)
	}
	m.ZeroGrads()
	all := twoPass(t, m, ws, full, 1.25, dlogpFull)
	want := make([]float32, m.Grads.Len())
	m.be.Download(want, m.Grads)

	if _, err := m.Forward(ws, b); err != nil {
		t.Fatal(err)
	}
	out := Output{Spans: spans, Targets: targets, InvTemp: 1.25}
	got, _, err := m.LogProbs(ws, out)
	if err != nil {
		t.Fatal(err)
	}
	k := 0
	for _, sp := range spans {
		for r := sp[0]; r < sp[1]; r++ {
			if d := math.Abs(float64(got[k] - all[r])); d > 1e-6*math.Max(1, math.Abs(float64(all[r]))) {
				t.Errorf("row %d: compact log-prob %v, full %v", r, got[k], all[r])
			}
			k++
		}
	}
	m.ZeroGrads()
	lossGrad(t, m, ws, out, dlogpCompact)
	g := make([]float32, m.Grads.Len())
	m.be.Download(g, m.Grads)
	sameUpTo(t, "gradients with spans against the full-row path", g, want, 1e-5)
}
