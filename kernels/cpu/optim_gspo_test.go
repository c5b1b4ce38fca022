package cpu_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
)

// seqLogRatios is the reference mean_t(ℓ_t − ℓ_old,t) over each sequence's
// loss tokens, in float64.
func seqLogRatios(c *plCase) []float32 {
	out := make([]float32, len(c.offsets)-1)
	for i := range out {
		var s, n float64
		for t := c.offsets[i]; t < c.offsets[i+1]; t++ {
			s += float64(c.mask[t]) * (float64(c.logp[t]) - float64(c.old[t]))
			n += float64(c.mask[t])
		}
		if n > 0 {
			out[i] = float32(s / n)
		}
	}
	return out
}

// TestPolicyLossGSPOHand checks the sequence-level ratio by hand, ε = 0.2,
// token-mean over 5 tokens. Sequence 0: A = 1, log-ratios 0.1 and 0.3, so
// s = e^0.2 = 1.2214 > 1.2: clipped, each token's loss −1.2, no gradient.
// Sequence 1: A = −1, log-ratios −0.3, 0, 0.15, s = e^−0.05 = 0.951229:
// each token's loss 0.951229 and, through the mean, dL/dℓ_t =
// (1/5)·(1/3)·3·s = s/5 for each of its tokens.
func TestPolicyLossGSPOHand(t *testing.T) {
	c := plCase{
		logp:    []float32{0.1, 0.3, -0.3, 0, 0.15},
		old:     []float32{0, 0, 0, 0, 0},
		adv:     []float32{1, 1, -1, -1, -1},
		mask:    []float32{1, 1, 1, 1, 1},
		offsets: []int{0, 2, 5},
	}
	s1 := math.Exp(-0.05)
	wantLoss := (-2*1.2 + 3*s1) / 5
	wantGrad := []float64{0, 0, s1 / 5, s1 / 5, s1 / 5}
	b := cpu.New(1)
	for _, level := range []kernels.ISLevel{kernels.ISSequence, kernels.ISSequenceToken} {
		a := c.args(kernels.PolicyLossParams{EpsLow: 0.2, EpsHigh: 0.2, ClipRatioC: 3, IS: level,
			Norm: kernels.Normalizers{Tokens: 5, Seqs: 2, MaxLen: 3}})
		a.SeqLogRatio = cpu.F32(seqLogRatios(&c))
		st := b.PolicyLoss(a)
		if math.Abs(st.Loss-wantLoss) > 1e-6 {
			t.Errorf("level %d: loss %v, want %v", level, st.Loss, wantLoss)
		}
		for i, g := range cpu.Data(a.DLogp) {
			if math.Abs(float64(g)-wantGrad[i]) > 1e-6 {
				t.Errorf("level %d: dL/dℓ[%d] = %v, want %v", level, i, g, wantGrad[i])
			}
		}
		if st.ClipHigh != 2 || st.ClipLow != 0 {
			t.Errorf("level %d: clip counts high %v low %v, want 2 and 0 (both tokens of sequence 0)", level, st.ClipHigh, st.ClipLow)
		}
		if want := 2*math.Exp(0.2) + 3*s1; math.Abs(st.Ratio-want) > 1e-5 {
			t.Errorf("level %d: Σ ratio %v, want %v", level, st.Ratio, want)
		}
	}
}

// TestPolicyLossGSPOTokenAdvantages: with advantages that differ within a
// sequence, GSPO spreads the sequence's gradient evenly over its tokens
// while GSPO-token keeps each token's own. One sequence, s = 1, A = (2, −1),
// token-mean: GSPO gives (1/2)·(−2 + 1)/2 = −0.25 to both tokens, GSPO-token
// (−2/2, 1/2); the loss is −0.5 either way.
func TestPolicyLossGSPOTokenAdvantages(t *testing.T) {
	c := plCase{logp: []float32{-1, -2}, old: []float32{-1, -2}, adv: []float32{2, -1},
		mask: []float32{1, 1}, offsets: []int{0, 2}}
	b := cpu.New(1)
	for _, tc := range []struct {
		level kernels.ISLevel
		want  []float64
	}{
		{kernels.ISSequence, []float64{-0.25, -0.25}},
		{kernels.ISSequenceToken, []float64{-1, 0.5}},
		{kernels.ISToken, []float64{-1, 0.5}},
	} {
		a := c.args(kernels.PolicyLossParams{EpsLow: 0.2, EpsHigh: 0.2, IS: tc.level,
			Norm: kernels.Normalizers{Tokens: 2, Seqs: 1, MaxLen: 2}})
		st := b.PolicyLoss(a) // nil SeqLogRatio: on-policy, s = 1
		if math.Abs(st.Loss+0.5) > 1e-7 {
			t.Errorf("level %d: loss %v, want -0.5", tc.level, st.Loss)
		}
		for i, g := range cpu.Data(a.DLogp) {
			if math.Abs(float64(g)-tc.want[i]) > 1e-7 {
				t.Errorf("level %d: dL/dℓ[%d] = %v, want %v", tc.level, i, g, tc.want[i])
			}
		}
	}
}

// gspoRandom draws a batch whose sequence ratios stay at least 0.02 from
// the clip boundaries 1 ± 0.1 (so the loss is smooth under the finite
// difference step), with some sequences clipped on each side.
func gspoRandom(t *testing.T, r *rand.Rand, lens []int) plCase {
	for range 1000 {
		c := plRandom(r, lens)
		ok, clipped := true, 0
		for _, lr := range seqLogRatios(&c) {
			s := math.Exp(float64(lr))
			if math.Abs(s-0.9) < 0.02 || math.Abs(s-1.1) < 0.02 {
				ok = false
			}
			if s < 0.9 || s > 1.1 {
				clipped++
			}
		}
		if ok && clipped > 0 {
			return c
		}
	}
	t.Fatal("no suitable draw")
	return plCase{}
}

// TestPolicyLossGSPOFiniteDifferences differentiates GSPO's loss, the
// sequence ratio recomputed from the perturbed ℓ, by central differences
// (step 2⁻¹⁰, tolerance 1e-4) with per-token advantages, KL, entropy, TIS
// and every aggregation mode; and checks that with one advantage per
// sequence and no TIS GSPO-token's gradient equals GSPO's (to 1e-7).
func TestPolicyLossGSPOFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	c := gspoRandom(t, r, []int{3, 5, 1, 4, 6, 2})
	norm := kernels.Normalizers{Tokens: 30, Seqs: 8, MaxLen: 6}
	b := cpu.New(2)
	const h = 1.0 / 1024
	for _, agg := range []kernels.AggMode{kernels.AggTokenMean, kernels.AggSeqMeanTokenMean, kernels.AggSeqMeanTokenSum, kernels.AggSeqMeanTokenSumNorm} {
		p := kernels.PolicyLossParams{EpsLow: 0.1, EpsHigh: 0.1, ClipRatioC: 3, Beta: 0.3, KL: kernels.KLK3,
			EntropyCoef: 0.01, TISCap: 1.1, Agg: agg, Norm: norm, IS: kernels.ISSequence}
		loss := func() (*kernels.PolicyLossArgs, kernels.PolicyLossStats) {
			a := c.args(p)
			a.SeqLogRatio = cpu.F32(seqLogRatios(&c))
			return a, b.PolicyLoss(a)
		}
		a, _ := loss()
		g := append([]float32(nil), cpu.Data(a.DLogp)...)
		for i := range c.logp {
			keep := c.logp[i]
			c.logp[i] = keep + h
			_, up := loss()
			c.logp[i] = keep - h
			_, down := loss()
			c.logp[i] = keep
			if want := (up.Loss - down.Loss) / (2 * h); math.Abs(float64(g[i])-want) > 1e-4 {
				t.Errorf("agg %d: dL/dℓ[%d] = %v, finite difference %v", agg, i, g[i], want)
			}
		}

		// One advantage per sequence (and no per-token TIS weight):
		// GSPO-token's gradient is GSPO's.
		cs := c
		cs.adv = append([]float32(nil), c.adv...)
		for i := 0; i+1 < len(c.offsets); i++ {
			for k := c.offsets[i]; k < c.offsets[i+1]; k++ {
				cs.adv[k] = c.adv[c.offsets[i]]
			}
		}
		var grads [2][]float32
		for j, level := range []kernels.ISLevel{kernels.ISSequence, kernels.ISSequenceToken} {
			q := p
			q.IS, q.TISCap = level, 0
			a := cs.args(q)
			a.SeqLogRatio = cpu.F32(seqLogRatios(&cs))
			b.PolicyLoss(a)
			grads[j] = cpu.Data(a.DLogp)
		}
		for i := range grads[0] {
			if math.Abs(float64(grads[0][i]-grads[1][i])) > 1e-7 {
				t.Errorf("agg %d: token %d: GSPO dL/dℓ %v, GSPO-token %v", agg, i, grads[0][i], grads[1][i])
			}
		}
	}
}

// TestPolicyLossGSPOChunks: calls over consecutive token ranges (as the
// one-pass output layer makes them) add up to one call over all tokens,
// gradients equal bit for bit.
func TestPolicyLossGSPOChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	c := plRandom(r, []int{7, 3, 9, 2})
	b := cpu.New(2)
	p := kernels.PolicyLossParams{EpsLow: 0.05, EpsHigh: 0.05, ClipRatioC: 3, TISCap: 2, Agg: kernels.AggSeqMeanTokenMean,
		Norm: kernels.Normalizers{Tokens: 17, Seqs: 4, MaxLen: 9}, IS: kernels.ISSequence}
	whole := c.args(p)
	whole.SeqLogRatio = cpu.F32(seqLogRatios(&c))
	want := b.PolicyLoss(whole)
	parts := c.args(p)
	parts.SeqLogRatio = whole.SeqLogRatio
	var got kernels.PolicyLossStats
	n := len(c.logp)
	for lo := 0; lo < n; lo += 4 {
		parts.Lo, parts.Hi = lo, min(lo+4, n)
		got.Add(b.PolicyLoss(parts))
	}
	if math.Abs(got.Loss-want.Loss) > 1e-12 || got.Seqs != want.Seqs || got.Tokens != want.Tokens {
		t.Errorf("chunked loss %v seqs %d tokens %v, whole %v %d %v", got.Loss, got.Seqs, got.Tokens, want.Loss, want.Seqs, want.Tokens)
	}
	for i, g := range cpu.Data(parts.DLogp) {
		if g != cpu.Data(whole.DLogp)[i] {
			t.Errorf("token %d: chunked dL/dℓ %v, whole %v", i, g, cpu.Data(whole.DLogp)[i])
		}
	}
}
