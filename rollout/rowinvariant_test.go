package rollout

import (
	"math"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/model"
)

// gradLogp is a TokenLoss that keeps the one-pass output layer's log-probs
// and asks for no gradient.
type gradLogp struct {
	be   kernels.Backend
	logp []float32
}

func (g *gradLogp) TokenGrad(logp, _, dlogp, _ kernels.Buf, r0, r1 int) bool {
	g.be.Download(g.logp[r0:r1], g.be.View(logp, r0, r1-r0))
	g.be.Zero(g.be.View(dlogp, r0, r1-r0))
	return true
}

// trainerLogProbs computes every completion's log-probs as the trainer
// does: one padded forward pass over all the sequences, then the output
// layer over the completion rows, by the two-call path (LogProbs) and by
// the one-pass path (LossGrad).
func trainerLogProbs(t *testing.T, m *model.Model, prompts [][]int32, comps []Completion, invTemp float32) (twoCall, onePass [][]float32) {
	t.Helper()
	T := 0
	for _, c := range comps {
		T = max(T, len(prompts[c.Prompt])+len(c.IDs))
	}
	b := model.Batch{B: len(comps), T: T, IDs: make([]int32, len(comps)*T), Lens: make([]int, len(comps))}
	o := model.Output{Spans: make([][2]int, len(comps)), InvTemp: invTemp}
	for i, c := range comps {
		p := prompts[c.Prompt]
		copy(b.IDs[i*T:], p)
		copy(b.IDs[i*T+len(p):], c.IDs)
		b.Lens[i] = len(p) + len(c.IDs)
		o.Spans[i] = [2]int{i*T + len(p) - 1, i*T + len(p) - 1 + len(c.IDs)}
		o.Targets = append(o.Targets, c.IDs...)
	}
	ws := m.NewWorkspace()
	defer ws.Free()
	if _, err := m.Forward(ws, b); err != nil {
		t.Fatal(err)
	}
	flat, _, err := m.LogProbs(ws, o)
	if err != nil {
		t.Fatal(err)
	}
	g := &gradLogp{be: m.Backend(), logp: make([]float32, len(o.Targets))}
	if _, err := m.LossGrad(ws, o, g); err != nil {
		t.Fatal(err)
	}
	off := 0
	for _, c := range comps {
		n := len(c.IDs)
		twoCall = append(twoCall, flat[off:off+n])
		onePass = append(onePass, g.logp[off:off+n])
		off += n
	}
	return twoCall, onePass
}

// TestRowInvariantLogProbsExact: with the model row-invariant, the
// log-probs the sampler records equal, to the bit, those the trainer
// computes for the same completions in one padded batch, by either output
// layer path — at a temperature other than 1, with the decode attention's
// C kernel (head size 64) and its Go path (16), for a batch that exceeds 64
// rows in every product. Without it the test logs how far they are apart.
func TestRowInvariantLogProbsExact(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  model.Config
	}{{"head 16", tinyConfig()}, {"head 64", wideConfig()}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.GroupSize, cfg.MaxNewTokens, cfg.Temperature, cfg.Seed = 4, 12, 0.8, 3
			ids := randomPrompts(6, 3, 20, tc.cfg.Vocab, 21)
			for _, on := range []bool{false, true} {
				m := newModel(t, tc.cfg, 2, 5)
				if on && !m.SetRowInvariant(true) {
					t.Skip("the CPU backend has no row-invariant products here (no AVX-512)")
				}
				comps, _ := generate(t, m, cfg, Prompts(ids), nil)
				invTemp := float32(1 / cfg.Temperature)
				twoCall, onePass := trainerLogProbs(t, m, ids, comps, invTemp)
				worst, tokens := 0.0, 0
				for i, c := range comps {
					for k, lp := range c.Logprobs {
						tokens++
						worst = max(worst, math.Abs(float64(lp-twoCall[i][k])), math.Abs(float64(lp-onePass[i][k])))
						if on && (lp != twoCall[i][k] || lp != onePass[i][k]) {
							t.Fatalf("completion %d token %d: sampler %v, trainer %v (two-call) %v (one pass)", i, k, lp, twoCall[i][k], onePass[i][k])
						}
					}
				}
				t.Logf("%s: %d tokens, max |sampler - trainer| %.3g", map[bool]string{false: "default", true: "row-invariant"}[on], tokens, worst)
				if tokens < 64 {
					t.Fatalf("only %d tokens", tokens)
				}
			}
		})
	}
}
