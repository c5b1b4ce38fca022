package cpu

import (
	"math"
	"sort"

	"github.com/rltrain/rltrain/kernels"
)

// optimMaxLogRatio bounds |ℓ − ℓ_old| before exponentiation so that a
// diverged token cannot produce an infinite ratio; the gradient is zero
// beyond the bound.
const optimMaxLogRatio = 20

// PolicyLoss implements kernels.Optim. Sequences are split across threads;
// every token is independent once its sequence's aggregation weight is
// known, so one pass over the tokens suffices.
func (b *Backend) PolicyLoss(a *kernels.PolicyLossArgs) kernels.PolicyLossStats {
	dlogp := Data(a.DLogp)
	dent := Data(a.DEntropy)
	nseq := len(a.Offsets) - 1
	if a.Hi > 0 {
		clear(dlogp[a.Lo:a.Hi])
		if dent != nil {
			clear(dent[a.Lo:a.Hi])
		}
	} else {
		clear(dlogp)
		clear(dent)
	}
	if nseq <= 0 {
		return kernels.PolicyLossStats{}
	}
	// Only the sequences overlapping the token range take part.
	lo, hi := a.Range()
	first := sort.Search(nseq, func(i int) bool { return a.Offsets[i+1] > lo })
	last := sort.Search(nseq, func(i int) bool { return a.Offsets[i] >= hi })
	nseq = last - first
	if nseq <= 0 {
		return kernels.PolicyLossStats{}
	}
	parts := optimParts(hi-lo, b.threads)
	if parts > nseq {
		parts = nseq
	}
	partial := make([]kernels.PolicyLossStats, parts)
	optimParallel(nseq, parts, func(p, lo, hi int) {
		for i := first + lo; i < first+hi; i++ {
			policyLossSeq(a, i, &partial[p])
		}
	})
	var st kernels.PolicyLossStats
	for _, s := range partial {
		st.Add(s)
	}
	return st
}

// part returns floats [lo, hi) of b, or nil when b is nil (an optional
// buffer that is absent).
func part(b kernels.Buf, lo, hi int) []float32 {
	if b == nil {
		return nil
	}
	return Data(b)[lo:hi]
}

// aggWeight is the aggregation weight of one unit of mask in a sequence
// of seqTokens loss tokens.
func aggWeight(p *kernels.PolicyLossParams, seqTokens float64) float64 {
	switch p.Agg {
	case kernels.AggTokenMean:
		return optimInv(p.Norm.Tokens)
	case kernels.AggSeqMeanTokenMean:
		return optimInv(seqTokens * float64(p.Norm.Seqs))
	case kernels.AggSeqMeanTokenSum:
		return optimInv(float64(p.Norm.Seqs))
	case kernels.AggSeqMeanTokenSumNorm:
		return optimInv(float64(p.Norm.Seqs) * float64(p.Norm.MaxLen))
	}
	return 0
}

// surrogate is one token's clipped surrogate: its loss pg, dpg = d pg/dℓ,
// the ratio ρ and which clip applied.
type surrogate struct {
	pg, dpg, rho    float64
	low, high, dual bool
}

// clippedSurrogate is pg = max(−Aρ, −A·clip(ρ, 1−eL, 1+eH)), capped at −C·A
// for A < 0 (dual clip, C = dualC > 1), for the log-ratio lr = ℓ − ℓ_old;
// the log-ratio is clamped to ±optimMaxLogRatio, where the gradient is 0.
func clippedSurrogate(lr, A, eL, eH, dualC float64) surrogate {
	lrIn := math.Abs(lr) <= optimMaxLogRatio
	lr = math.Max(-optimMaxLogRatio, math.Min(optimMaxLogRatio, lr))
	rho := math.Exp(lr)
	unclipped := -A * rho
	clipped := -A * math.Max(1-eL, math.Min(1+eH, rho))
	s := surrogate{pg: unclipped, dpg: -A * rho, rho: rho}
	if clipped > unclipped {
		s.pg, s.dpg = clipped, 0
	}
	s.low = A < 0 && rho < 1-eL
	s.high = A > 0 && rho > 1+eH
	if dualC > 1 && A < 0 && s.pg > -dualC*A {
		s.pg, s.dpg, s.dual = -dualC*A, 0, true
	}
	if !lrIn {
		s.dpg = 0
	}
	return s
}

// tisWeight is truncated importance sampling's min(exp(ℓ_old −
// ℓ_rollout), cap).
func tisWeight(old, roll, cap float32) float64 {
	return math.Min(math.Exp(math.Min(optimMaxLogRatio, float64(old)-float64(roll))), float64(cap))
}

// seqSpan returns the loss tokens of sequence i this call handles, [lo,
// hi), and the sequence's whole mask sum; ok is false when the call has
// nothing of it to do. The call that holds the sequence's start counts it.
func seqSpan(a *kernels.PolicyLossArgs, i int, st *kernels.PolicyLossStats) (lo, hi int, seqTokens float64, ok bool) {
	lo, hi = a.Offsets[i], a.Offsets[i+1]
	if hi <= lo {
		return 0, 0, 0, false
	}
	if a.P.MaskTruncated && a.Truncated != nil && a.Truncated[i] {
		return 0, 0, 0, false
	}
	for _, m := range Data(a.Mask)[lo:hi] {
		seqTokens += float64(m)
	}
	if seqTokens == 0 {
		return 0, 0, 0, false
	}
	rlo, rhi := a.Range()
	if lo >= rlo {
		st.Seqs++
	}
	lo, hi = max(lo, rlo), min(hi, rhi)
	return lo, hi, seqTokens, hi > lo
}

// gspoSeqGrad is GSPO's dL/dℓ_t, the same for every token t of sequence
// i: (1/|o|)·Σ_u m_u·isw_u·∂pg_u/∂log s, summed over the whole sequence
// (not only this call's range), before the aggregation weight.
func gspoSeqGrad(a *kernels.PolicyLossArgs, i int, seqLR, seqTokens float64) float64 {
	p := &a.P
	eL, eH, dualC := float64(p.EpsLow), float64(p.EpsHigh), float64(p.ClipRatioC)
	s0, s1 := a.Offsets[i], a.Offsets[i+1]
	allMask, allAdv := Data(a.Mask)[s0:s1], Data(a.Adv)[s0:s1]
	var g float64
	for u, m := range allMask {
		if m == 0 {
			continue
		}
		dpg := clippedSurrogate(seqLR, float64(allAdv[u]), eL, eH, dualC).dpg
		if p.TISCap > 0 && a.RolloutLogp != nil {
			dpg *= tisWeight(Data(a.OldLogp)[s0+u], Data(a.RolloutLogp)[s0+u], p.TISCap)
		}
		g += float64(m) * dpg
	}
	return g / seqTokens
}

// policyLossSeq handles the tokens of sequence i, adding its metrics to st.
func policyLossSeq(a *kernels.PolicyLossArgs, i int, st *kernels.PolicyLossStats) {
	p := &a.P
	lo, hi, seqTokens, ok := seqSpan(a, i, st)
	if !ok {
		return
	}
	mask := Data(a.Mask)[lo:hi]
	w := aggWeight(p, seqTokens)

	logp, old, adv, dlogp := part(a.Logp, lo, hi), part(a.OldLogp, lo, hi), part(a.Adv, lo, hi), part(a.DLogp, lo, hi)
	ref, ent, dent := part(a.RefLogp, lo, hi), part(a.Entropy, lo, hi), part(a.DEntropy, lo, hi)
	var roll []float32
	if p.TISCap > 0 {
		roll = part(a.RolloutLogp, lo, hi)
	}
	beta := float64(p.Beta)
	entCoef := float64(p.EntropyCoef)
	dualC := float64(p.ClipRatioC)
	eL, eH := float64(p.EpsLow), float64(p.EpsHigh)

	// Sequence levels: one log-ratio for every token of the sequence (0,
	// ratio 1, without SeqLogRatio: on-policy).
	seqLevel := p.IS != kernels.ISToken
	var seqLR float64
	if seqLevel && a.SeqLogRatio != nil {
		seqLR = float64(Data(a.SeqLogRatio)[i])
	}
	var seqGrad float64
	if p.IS == kernels.ISSequence {
		seqGrad = gspoSeqGrad(a, i, seqLR, seqTokens)
	}

	for t, m32 := range mask {
		if m32 == 0 {
			continue
		}
		m := float64(m32)
		wt := w * m
		l := float64(logp[t])
		A := float64(adv[t])

		lr := seqLR
		if !seqLevel {
			lr = l - float64(old[t])
		}
		s := clippedSurrogate(lr, A, eL, eH, dualC)
		pg, dpg, rho := s.pg, s.dpg, s.rho
		if s.low {
			st.ClipLow += m
		}
		if s.high {
			st.ClipHigh += m
		}
		if s.dual {
			st.DualClip += m
		}
		if roll != nil {
			isw := tisWeight(old[t], roll[t], p.TISCap)
			if isw >= float64(p.TISCap) {
				st.TISCapped += m
			}
			pg *= isw
			dpg *= isw
		}
		if p.IS == kernels.ISSequence {
			dpg = seqGrad
		}

		var kl, dkl float64
		if ref != nil {
			kl, dkl = optimKL(p.KL, float64(ref[t])-l)
			st.KL += m * kl
		}
		g := wt * dpg
		st.PGLoss += wt * pg
		if beta != 0 {
			g += wt * beta * dkl
			st.KLLoss += wt * beta * kl
		}
		dlogp[t] = float32(g)
		if ent != nil {
			h := float64(ent[t])
			st.Entropy += m * h
			st.EntropyLoss -= wt * entCoef * h
			if dent != nil {
				dent[t] = float32(-wt * entCoef)
			}
		}
		st.Tokens += m
		st.PPOKL += m * (float64(old[t]) - l)
		st.Ratio += m * rho
	}
	st.Loss = st.PGLoss + st.KLLoss + st.EntropyLoss
}

// optimKL returns an estimate of KL(π‖π_ref) for x = ℓ_ref − ℓ and its
// derivative with respect to ℓ.
func optimKL(est kernels.KLEstimator, x float64) (kl, dkl float64) {
	switch est {
	case kernels.KLK2:
		return 0.5 * x * x, -x
	case kernels.KLK3:
		if x > 20 || x < -20 {
			x = math.Max(-20, math.Min(20, x))
			return math.Min(10, math.Exp(x)-x-1), 0
		}
		kl = math.Exp(x) - x - 1
		if kl > 10 {
			return 10, 0
		}
		return kl, -(math.Exp(x) - 1)
	default:
		return -x, 1
	}
}

// optimInv is 1/x, or 0 for an empty normaliser.
func optimInv(x float64) float64 {
	if x <= 0 {
		return 0
	}
	return 1 / x
}
