package optim

import (
	"math"

	"github.com/rltrain/rltrain/kernels"
)

// OnePassPolicyLoss runs a clipped-surrogate objective through the output
// layer in one pass (kernels.Fused.TokenLogProbsGrad): for each chunk of
// rows the kernel computes the log-probs, PolicyLoss turns that chunk's
// tokens into dL/dℓ (its weights come from whole sequences and the
// batch-wide normalisers, so a chunk needs nothing outside itself), and the
// kernel carries the gradient into lg.DHidden and lg.DW from the logits it
// still holds. pl's Logp, Entropy, DLogp and DEntropy must be the buffers
// of lg. The returned statistics equal one PolicyLoss call over all tokens.
// A chunk with a non-finite loss stops the pass: the returned loss is then
// non-finite and the gradients are incomplete, so the caller must discard
// them. DRPO cannot run this way (its coefficients need every sequence's
// score first); it uses the two-call path.
func OnePassPolicyLoss(be kernels.Backend, pl *kernels.PolicyLossArgs, lg *kernels.LogProbsGradArgs) kernels.PolicyLossStats {
	var st kernels.PolicyLossStats
	lg.Grad = func(r0, r1 int) bool {
		pl.Lo, pl.Hi = r0, r1
		s := be.PolicyLoss(pl)
		st.Add(s)
		return !math.IsNaN(s.Loss) && !math.IsInf(s.Loss, 0)
	}
	be.TokenLogProbsGrad(lg)
	pl.Lo, pl.Hi = 0, 0
	return st
}
