package kernels

import "math"

// Optim holds the policy-loss and optimizer kernels. The policy objective is
// expressed on per-token log-probabilities: the fused TokenLogProbs kernel
// produces them, PolicyLoss turns them into a loss contribution and dL/dℓ,
// and TokenLogProbsBackward carries dL/dℓ into the hidden states and the LM
// head. Nothing here ever sees a [tokens × vocab] tensor.
type Optim interface {
	// PolicyLoss computes, in one pass over the tokens of a micro-batch,
	// the clipped-surrogate policy loss with optional KL, entropy bonus and
	// truncated importance sampling, weighted by the aggregation mode's
	// global normalisers. It overwrites a.DLogp (and a.DEntropy when given)
	// and returns the loss contribution and metric sums.
	PolicyLoss(a *PolicyLossArgs) PolicyLossStats
	// SegmentSums writes out[i] = Σ_{t∈seg i} mask[t]*x[t] for the
	// segments [offsets[i], offsets[i+1]); len(out) = len(offsets)-1.
	SegmentSums(out []float64, x, mask Buf, offsets []int)
	// SegmentBroadcast overwrites dst[t] = coef[i]*mask[t] for every token t
	// of segment i, and dst[t] = 0 outside all segments.
	SegmentBroadcast(dst, mask Buf, offsets []int, coef []float32)
	// AdamW updates the first n floats of param in place with decoupled
	// weight decay and bias correction, exactly as torch.optim.AdamW.
	AdamW(param, grad, m, v Buf, n int, hp AdamWParams)
	// SumSquares returns Σ x² in float64, with a summation order that does
	// not depend on the thread count (so runs are reproducible).
	SumSquares(x Buf) float64
	// Scale multiplies x by s in place.
	Scale(x Buf, s float32)
}

// KLEstimator selects the per-token estimator of KL(π‖π_ref), with
// x = ℓ_ref − ℓ.
type KLEstimator int

const (
	// KLK1 is −x (unbiased, high variance).
	KLK1 KLEstimator = iota
	// KLK2 is ½x².
	KLK2
	// KLK3 is exp(x) − x − 1 with x clamped to [−20, 20] and the result to
	// at most 10 (verl's low_var_kl); the gradient is zero where clamped.
	KLK3
)

// ISLevel is the level of the importance ratio in the clipped surrogate
// (TRL's importance_sampling_level).
type ISLevel int

const (
	// ISToken uses each token's ratio ρ_t = exp(ℓ_t − ℓ_old,t) (PPO, GRPO).
	ISToken ISLevel = iota
	// ISSequence uses the sequence's ratio s = exp(mean_t(ℓ_t − ℓ_old,t))
	// for every token of the sequence, differentiated through the mean
	// (GSPO): ∂s/∂ℓ_t = s/|o|.
	ISSequence
	// ISSequenceToken uses s's value with a per-token straight-through
	// gradient, sg[s]·π_t/sg[π_t] (GSPO-token): ∂/∂ℓ_t = s for token t only.
	// With one advantage per sequence it gives GSPO's gradient.
	ISSequenceToken
)

// AggMode is how per-token losses are combined into one scalar.
type AggMode int

const (
	// AggTokenMean is Σ m·L / Σ m over the whole accumulated batch.
	AggTokenMean AggMode = iota
	// AggSeqMeanTokenMean is the mean over sequences of each token mean.
	AggSeqMeanTokenMean
	// AggSeqMeanTokenSum is the mean over sequences of each token sum.
	AggSeqMeanTokenSum
	// AggSeqMeanTokenSumNorm is Σ m·L / (sequences · L_max).
	AggSeqMeanTokenSumNorm
)

// Normalizers are the batch-wide counts every aggregation mode divides by.
// They describe the whole accumulated batch, not the micro-batch, so that
// splitting a batch into micro-batches never changes the update.
type Normalizers struct {
	// Tokens is the total number of loss tokens (Σ mask).
	Tokens float64
	// Seqs is the number of sequences with at least one loss token.
	Seqs int
	// MaxLen is L_max, the padded completion length.
	MaxLen int
}

// PolicyLossParams are the host-side scalars of PolicyLoss. Per token, with
// ρ = exp(ℓ − ℓ_old) (or the sequence's ratio, see ISLevel) and w the
// token's aggregation weight, the loss is
//
//	w · (tis · pg + Beta·kl − EntropyCoef·H)
//	pg = max(−Aρ, −A·clip(ρ, 1−EpsLow, 1+EpsHigh)), then min(pg, −C·A) for A < 0
//
// so the KL and entropy terms are aggregated exactly like the surrogate
// (as verl does).
type PolicyLossParams struct {
	// EpsLow and EpsHigh bound the ratio to [1−EpsLow, 1+EpsHigh].
	EpsLow, EpsHigh float32
	// ClipRatioC caps the loss of tokens with negative advantage at
	// −C·A (dual clip); values ≤ 1 disable it.
	ClipRatioC float32
	// Beta multiplies the KL to the reference in the loss; 0 disables it
	// and RefLogp may then be nil.
	Beta float32
	KL   KLEstimator
	// EntropyCoef multiplies the (subtracted) entropy bonus.
	EntropyCoef float32
	// TISCap, when > 0 and RolloutLogp is given, weights each token's
	// surrogate by min(exp(ℓ_old − ℓ_rollout), TISCap).
	TISCap float32
	// MaskTruncated drops every sequence flagged in Truncated.
	MaskTruncated bool
	// IS selects token- or sequence-level importance ratios; the sequence
	// levels take each sequence's mean log-ratio from
	// PolicyLossArgs.SeqLogRatio.
	IS   ISLevel
	Agg  AggMode
	Norm Normalizers
}

// PolicyLossArgs gathers the buffers of one PolicyLoss call. All per-token
// buffers hold one float per token of the flat micro-batch; sequence i owns
// tokens [Offsets[i], Offsets[i+1]).
type PolicyLossArgs struct {
	Logp    Buf // ℓ under the current policy
	OldLogp Buf // ℓ_old, the behaviour policy as seen by the trainer
	// RolloutLogp is ℓ as reported by the sampler; optional (TIS only).
	RolloutLogp Buf
	// RefLogp is ℓ_ref of the frozen reference; optional when Beta = 0.
	RefLogp Buf
	Adv     Buf // per-token advantage
	Mask    Buf // 1 for loss tokens, 0 for prompt and padding
	// Entropy of each token's distribution; optional (entropy bonus and
	// metric).
	Entropy Buf
	// SeqLogRatio holds one float per sequence, mean_t(ℓ_t − ℓ_old,t) over
	// its loss tokens, for the sequence levels of P.IS (it needs every
	// token's ℓ, so the caller computes it before a chunked call). nil
	// means every ratio is 1 (on-policy: ℓ_old is ℓ).
	SeqLogRatio Buf

	DLogp    Buf // output: dL/dℓ
	DEntropy Buf // output: dL/dH; optional

	Offsets   []int
	Truncated []bool // per sequence; may be nil
	P         PolicyLossParams

	// Lo and Hi, when Hi > 0, restrict the call to the tokens [Lo, Hi):
	// only those are read from Logp and Entropy and written in DLogp and
	// DEntropy, and only their terms enter the statistics. Sequence weights
	// still come from the whole sequences' masks, and a sequence is counted
	// in Seqs by the call whose range holds its first token, so calls over
	// consecutive ranges add up to one call over all tokens. This is how
	// TokenLogProbsGrad's chunks compute their gradient.
	Lo, Hi int
}

// Range returns the token range a call covers: [Lo, Hi) when set, else
// all tokens of the sequences.
func (a *PolicyLossArgs) Range() (lo, hi int) {
	if a.Hi > 0 {
		return a.Lo, a.Hi
	}
	if len(a.Offsets) == 0 {
		return 0, 0
	}
	return a.Offsets[0], a.Offsets[len(a.Offsets)-1]
}

// PolicyLossStats are the loss contribution and metric sums of one call.
// Sums run over effective loss tokens (mask, after MaskTruncated) so that
// the caller can divide by the global token count.
type PolicyLossStats struct {
	// Loss is this micro-batch's contribution to the aggregated loss; the
	// contributions of all micro-batches add up to the batch loss.
	Loss float64
	// PGLoss, KLLoss and EntropyLoss split Loss into its three terms.
	PGLoss, KLLoss, EntropyLoss float64
	Tokens                      float64 // Σ m
	Seqs                        int     // sequences with Σ m > 0
	// ClipLow counts tokens with A < 0 and ρ < 1−ε_low; ClipHigh tokens
	// with A > 0 and ρ > 1+ε_high; DualClip tokens capped by ClipRatioC.
	ClipLow, ClipHigh, DualClip float64
	KL                          float64 // Σ m·kl_t to the reference
	PPOKL                       float64 // Σ m·(ℓ_old − ℓ)
	Entropy                     float64 // Σ m·H
	Ratio                       float64 // Σ m·ρ
	TISCapped                   float64 // tokens whose IS weight hit the cap
}

// Add adds the sums of o to s (the loss contributions and metric sums of
// two calls over disjoint tokens add up).
func (s *PolicyLossStats) Add(o PolicyLossStats) {
	s.Loss += o.Loss
	s.PGLoss += o.PGLoss
	s.KLLoss += o.KLLoss
	s.EntropyLoss += o.EntropyLoss
	s.Tokens += o.Tokens
	s.Seqs += o.Seqs
	s.ClipLow += o.ClipLow
	s.ClipHigh += o.ClipHigh
	s.DualClip += o.DualClip
	s.KL += o.KL
	s.PPOKL += o.PPOKL
	s.Entropy += o.Entropy
	s.Ratio += o.Ratio
	s.TISCapped += o.TISCapped
}

// AdamWParams are the hyper-parameters of one AdamW step.
type AdamWParams struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	// Step is the 1-based step count used for bias correction.
	Step int
}

// AdamWScalars are the per-step scalars of AdamW's element update, with
// which every backend updates each element g, p, m, v in float32 as
//
//	p ← p·Decay
//	m ← Beta1·m + OneMinusBeta1·g
//	v ← Beta2·v + OneMinusBeta2·g·g
//	p ← p + NegStep·(m / (√v / BC2Sqrt + Eps))
type AdamWScalars struct {
	Decay, Beta1, OneMinusBeta1, Beta2, OneMinusBeta2, NegStep, BC2Sqrt, Eps float32
}

// Scalars forms the step's scalars, bias corrections included, in float64
// and rounds them to float32, as torch.optim.AdamW's single-tensor path
// does (so that the two agree to a few ulps over many steps).
func (hp AdamWParams) Scalars() AdamWScalars {
	lr := float64(hp.LR)
	b1, b2 := float64(hp.Beta1), float64(hp.Beta2)
	step := float64(hp.Step)
	return AdamWScalars{
		Decay: float32(1 - lr*float64(hp.WeightDecay)),
		Beta1: float32(b1), OneMinusBeta1: float32(1 - b1),
		Beta2: float32(b2), OneMinusBeta2: float32(1 - b2),
		NegStep: float32(-lr / (1 - math.Pow(b1, step))),
		BC2Sqrt: float32(math.Sqrt(1 - math.Pow(b2, step))),
		Eps:     hp.Eps,
	}
}
