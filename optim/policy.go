package optim

import (
	"fmt"

	"github.com/rltrain/rltrain/kernels"
)

// Sequence describes one completion of the accumulated batch for the loss
// normalisers.
type Sequence struct {
	Tokens    int  // loss tokens (Σ mask)
	Truncated bool // hit L_max without EOS
}

// BatchNormalizers computes the whole-batch counts that every micro-batch
// of an optimizer step divides by: loss tokens, sequences with loss tokens,
// and L_max. With maskTruncated, truncated completions are left out of all
// counts, exactly as the kernel leaves them out of the loss.
func BatchNormalizers(seqs []Sequence, maxLen int, maskTruncated bool) kernels.Normalizers {
	n := kernels.Normalizers{MaxLen: maxLen}
	for _, s := range seqs {
		if s.Tokens == 0 || (maskTruncated && s.Truncated) {
			continue
		}
		n.Tokens += float64(s.Tokens)
		n.Seqs++
	}
	return n
}

// PolicyParams turns the algorithm config into the PolicyLoss kernel's
// parameters. The KL term enters the loss only with kl_in: loss (the
// adaptive controller acts on kl_in: reward, so β here is the configured
// one).
func (a Algorithm) PolicyParams(norm kernels.Normalizers) (kernels.PolicyLossParams, error) {
	agg, err := ParseAggMode(a.LossAggMode)
	if err != nil {
		return kernels.PolicyLossParams{}, err
	}
	kl, err := ParseKLEstimator(a.KLEstimator)
	if err != nil {
		return kernels.PolicyLossParams{}, err
	}
	is, err := ParseISLevel(a.ImportanceSamplingLevel)
	if err != nil {
		return kernels.PolicyLossParams{}, err
	}
	if a.Loss != LossPPO {
		return kernels.PolicyLossParams{}, fmt.Errorf("policy params: algorithm.loss is %q, not %q", a.Loss, LossPPO)
	}
	p := kernels.PolicyLossParams{
		EpsLow:        float32(a.Epsilon),
		EpsHigh:       float32(a.EpsHigh()),
		ClipRatioC:    float32(a.ClipRatioC),
		KL:            kl,
		EntropyCoef:   float32(a.EntropyCoef),
		TISCap:        float32(a.TISCap),
		MaskTruncated: a.MaskTruncated,
		IS:            is,
		Agg:           agg,
		Norm:          norm,
	}
	if a.KLIn == "loss" {
		p.Beta = float32(a.Beta)
	}
	return p, nil
}

// SeqLogRatios returns each sequence's mean log-ratio mean_t(ℓ_t −
// ℓ_old,t) over its loss tokens (0 for a sequence without any), the input
// of the sequence-level importance ratios (kernels.PolicyLossArgs.
// SeqLogRatio). It needs every token's ℓ, so it runs before the chunked
// loss pass.
func SeqLogRatios(be kernels.Optim, logp, old, mask kernels.Buf, offsets []int) []float32 {
	n := len(offsets) - 1
	if n <= 0 {
		return nil
	}
	sumL, sumOld, tokens := make([]float64, n), make([]float64, n), make([]float64, n)
	be.SegmentSums(sumL, logp, mask, offsets)
	be.SegmentSums(sumOld, old, mask, offsets)
	be.SegmentSums(tokens, mask, mask, offsets)
	out := make([]float32, n)
	for i := range out {
		if tokens[i] > 0 {
			out[i] = float32((sumL[i] - sumOld[i]) / tokens[i])
		}
	}
	return out
}

// PolicyMetrics accumulates PolicyLoss statistics over the micro-batches
// of a step and reports them under TRL/verl names.
type PolicyMetrics struct {
	sum kernels.PolicyLossStats
}

// Add records one micro-batch's statistics.
func (m *PolicyMetrics) Add(s kernels.PolicyLossStats) {
	t := &m.sum
	t.Loss += s.Loss
	t.PGLoss += s.PGLoss
	t.KLLoss += s.KLLoss
	t.EntropyLoss += s.EntropyLoss
	t.Tokens += s.Tokens
	t.Seqs += s.Seqs
	t.ClipLow += s.ClipLow
	t.ClipHigh += s.ClipHigh
	t.DualClip += s.DualClip
	t.KL += s.KL
	t.PPOKL += s.PPOKL
	t.Entropy += s.Entropy
	t.Ratio += s.Ratio
	t.TISCapped += s.TISCapped
}

// Sum returns the accumulated raw sums.
func (m *PolicyMetrics) Sum() kernels.PolicyLossStats { return m.sum }

// Map returns the metrics: loss, pg_loss, kl, entropy, clip_ratio/low,
// clip_ratio/high, clip_ratio (either side), clip_ratio/dual, ppo_kl (mean
// ℓ_old − ℓ, an approximate KL to the behaviour policy), ratio_mean and
// tis/capped_frac, token averages over the step's loss tokens.
func (m *PolicyMetrics) Map() map[string]float64 {
	s := m.sum
	per := func(x float64) float64 {
		if s.Tokens == 0 {
			return 0
		}
		return x / s.Tokens
	}
	return map[string]float64{
		"loss":            s.Loss,
		"pg_loss":         s.PGLoss,
		"kl_loss":         s.KLLoss,
		"entropy_loss":    s.EntropyLoss,
		"kl":              per(s.KL),
		"entropy":         per(s.Entropy),
		"clip_ratio/low":  per(s.ClipLow),
		"clip_ratio/high": per(s.ClipHigh),
		"clip_ratio":      per(s.ClipLow + s.ClipHigh),
		"clip_ratio/dual": per(s.DualClip),
		"ppo_kl":          per(s.PPOKL),
		"ratio_mean":      per(s.Ratio),
		"tis/capped_frac": per(s.TISCapped),
		"loss_tokens":     s.Tokens,
		"loss_sequences":  float64(s.Seqs),
	}
}
