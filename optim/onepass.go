package optim

import (
	"math"

	"github.com/rltrain/rltrain/kernels"
)

// PolicyLoss is a clipped-surrogate objective computed chunk by chunk as
// the one-pass output layer (model.Model.LossGrad, over
// kernels.Fused.TokenLogProbsGrad) produces log-probs: it is a
// model.TokenLoss. For each chunk of rows, PolicyLoss turns that chunk's
// tokens into dL/dℓ; its weights come from whole sequences and the
// batch-wide normalisers, so a chunk needs nothing outside itself, and the
// statistics of the chunks add up to one kernels.Optim.PolicyLoss call over
// all tokens. A chunk with a non-finite loss stops the pass. DRPO cannot
// run this way (its coefficients need every sequence's score first).
type PolicyLoss struct {
	be       kernels.Optim
	args     kernels.PolicyLossArgs
	onPolicy bool
	stats    kernels.PolicyLossStats
}

// NewPolicyLoss returns the objective over args, which holds every operand
// but the output layer's buffers (Logp, Entropy, DLogp, DEntropy: each
// TokenGrad call supplies them). A nil OldLogp means on-policy: ℓ_old is ℓ
// itself, detached (the kernel writes each chunk's ℓ before PolicyLoss
// reads it).
func NewPolicyLoss(be kernels.Optim, args kernels.PolicyLossArgs) *PolicyLoss {
	return &PolicyLoss{be: be, args: args, onPolicy: args.OldLogp == nil}
}

// TokenGrad computes dL/dℓ (and dL/dH when dEntropy is not nil) of the
// tokens [r0, r1) and adds their statistics.
func (p *PolicyLoss) TokenGrad(logp, entropy, dlogp, dEntropy kernels.Buf, r0, r1 int) bool {
	a := &p.args
	a.Logp, a.Entropy, a.DLogp, a.DEntropy = logp, entropy, dlogp, dEntropy
	if p.onPolicy {
		a.OldLogp = logp
	}
	a.Lo, a.Hi = r0, r1
	s := p.be.PolicyLoss(a)
	p.stats.Add(s)
	return !math.IsNaN(s.Loss) && !math.IsInf(s.Loss, 0)
}

// Stats returns the sums of the chunks so far: after the pass, those of
// one PolicyLoss call over all tokens.
func (p *PolicyLoss) Stats() kernels.PolicyLossStats { return p.stats }
