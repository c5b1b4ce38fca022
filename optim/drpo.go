package optim

import (
	"fmt"
	"math"

	"github.com/rltrain/rltrain/kernels"
)

// DRPOGroup evaluates DRPO's per-prompt objective on one group and its
// gradient with respect to each completion's score s_i (the mean token
// log-prob under the current policy):
//
//	J = Σ_{i∈P} ŵ_i s_i − τ log Σ_{k∈N} exp(s_k/τ)
//	ŵ_i = w_i / Σ_{j∈P} w_j,  w_i = exp((1 − |o_i|/L)/λ)
//
// P are the positives (correct), N the negatives. A group without both is
// dropped: ok is false and dJ is all zero. As λ → ∞ the weights become the
// uniform 1/|P| of DisCO.
func DRPOGroup(scores, lens []float64, positive []bool, maxLen int, lambda, tau float64) (J float64, dJ []float64, ok bool) {
	dJ = make([]float64, len(scores))
	maxLW, maxS := math.Inf(-1), math.Inf(-1)
	var nPos, nNeg int
	for i, s := range scores {
		if positive[i] {
			nPos++
			maxLW = math.Max(maxLW, (1-lens[i]/float64(maxLen))/lambda)
		} else {
			nNeg++
			maxS = math.Max(maxS, s/tau)
		}
	}
	if nPos == 0 || nNeg == 0 {
		return 0, dJ, false
	}
	// Both normalisations are softmaxes: subtract the maxima first.
	var wSum, eSum float64
	for i, s := range scores {
		if positive[i] {
			w := math.Exp((1-lens[i]/float64(maxLen))/lambda - maxLW)
			dJ[i] = w
			wSum += w
		} else {
			e := math.Exp(s/tau - maxS)
			dJ[i] = e
			eSum += e
		}
	}
	for i, s := range scores {
		if positive[i] {
			dJ[i] /= wSum
			J += dJ[i] * s
		} else {
			dJ[i] = -dJ[i] / eSum
		}
	}
	J -= tau * (maxS + math.Log(eSum))
	return J, dJ, true
}

// DRPOInput is one micro-batch for DRPOLoss. It must hold whole groups.
type DRPOInput struct {
	Logp, OldLogp, Mask kernels.Buf // per token; Mask is 0/1
	DLogp               kernels.Buf // output: dL/dℓ, overwritten
	Offsets             []int       // sequence i owns [Offsets[i], Offsets[i+1])
	// Correct marks the positives (see Correct).
	Correct []bool
	Groups  []int
	// Prompts and Tokens are the whole batch's prompt count (the divisor of
	// Σ_q J_q) and loss-token count (the KL normaliser); MaxLen is L.
	Prompts int
	Tokens  float64
	MaxLen  int
}

// DRPOStats are one micro-batch's loss contribution and metrics.
type DRPOStats struct {
	Loss      float64 // contribution to the batch loss
	Objective float64 // Σ_q J_q over kept groups
	KL        float64 // masked token mean of ℓ_old − ℓ over this micro-batch
	KLCoef    float64 // stopgrad(β·max(KL − δ, 0))
	Groups    int     // groups kept
	Dropped   int     // groups with only positives or only negatives
}

// DRPOLoss runs DRPO on a micro-batch in two passes: per-sequence reductions
// of the token log-probs on the backend (scores and the KL to the rollout
// policy), the per-group math here, then a per-token broadcast of
// dL/dℓ_t = m_t·(−∂J/∂s_i/(Q·|o_i|) − c_KL/T), where Q is the batch's prompt
// count, T its token count and c_KL = β·max(KL − δ, 0) with the KL measured
// on this micro-batch.
func (a Algorithm) DRPOLoss(be kernels.Optim, in DRPOInput) (DRPOStats, error) {
	nseq := len(in.Offsets) - 1
	if nseq < 0 || len(in.Correct) != nseq || len(in.Groups) != nseq {
		return DRPOStats{}, fmt.Errorf("drpo: %d offsets, %d correctness flags, %d group ids", len(in.Offsets), len(in.Correct), len(in.Groups))
	}
	if in.Prompts <= 0 || in.Tokens <= 0 || in.MaxLen <= 0 {
		return DRPOStats{}, fmt.Errorf("drpo: batch normalisers must be positive (prompts %d, tokens %v, max_len %d)", in.Prompts, in.Tokens, in.MaxLen)
	}
	sumL := make([]float64, nseq)
	sumOld := make([]float64, nseq)
	lens := make([]float64, nseq)
	be.SegmentSums(sumL, in.Logp, in.Mask, in.Offsets)
	be.SegmentSums(sumOld, in.OldLogp, in.Mask, in.Offsets)
	be.SegmentSums(lens, in.Mask, in.Mask, in.Offsets)

	var st DRPOStats
	scores := make([]float64, nseq)
	var klSum, tokens float64
	for i := range scores {
		if lens[i] > 0 {
			scores[i] = sumL[i] / lens[i]
		}
		klSum += sumOld[i] - sumL[i]
		tokens += lens[i]
	}
	if tokens > 0 {
		st.KL = klSum / tokens
	}
	st.KLCoef = a.DRPOBeta * math.Max(st.KL-a.Delta, 0)

	dJ := make([]float64, nseq)
	for _, idx := range groupIndex(in.Groups) {
		s := make([]float64, len(idx))
		l := make([]float64, len(idx))
		pos := make([]bool, len(idx))
		for j, i := range idx {
			s[j], l[j], pos[j] = scores[i], lens[i], in.Correct[i]
		}
		J, g, ok := DRPOGroup(s, l, pos, in.MaxLen, a.Lambda, a.Tau)
		if !ok {
			st.Dropped++
			continue
		}
		st.Groups++
		st.Objective += J
		for j, i := range idx {
			dJ[i] = g[j]
		}
	}
	q := float64(in.Prompts)
	coef := make([]float32, nseq)
	for i := range coef {
		c := -st.KLCoef / in.Tokens
		if lens[i] > 0 {
			c -= dJ[i] / (q * lens[i])
		}
		coef[i] = float32(c)
	}
	be.SegmentBroadcast(in.DLogp, in.Mask, in.Offsets, coef)
	st.Loss = -st.Objective/q + st.KLCoef*klSum/in.Tokens
	return st, nil
}
