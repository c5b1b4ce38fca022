package model

import (
	"fmt"

	"github.com/rltrain/rltrain/kernels"
)

// The output layer turns the final hidden states of a Forward into
// per-token log-probabilities log softmax(InvTemp · h·Wᵀ)[target] through
// the fused kernels, never materialising the [rows × vocab] logits. Two
// calls use it:
//
//   - LogProbs, forward only (old and reference log-probs, evaluation);
//   - LossGrad, forward and backward in one pass for a TokenLoss, which
//     returns the final hidden states' gradient for Backward.
//
// Both work on the rows Output selects: an RL loss reads only the rows that
// predict completion tokens, so prompt and padding logits are never
// computed.

// Output selects the output layer's rows and targets after a Forward.
type Output struct {
	// Spans are row ranges [start, end) of the last Forward; the output
	// rows are their rows, in order (the completion tokens of each
	// sequence, say). Nil means every row of the Forward.
	Spans [][2]int
	// Targets holds one token id per output row; a row whose target is
	// negative has log-probability 0 and no gradient.
	Targets []int32
	// InvTemp scales the logits: the distribution is softmax(InvTemp·z).
	InvTemp float32
	// Entropy asks for each output row's entropy.
	Entropy bool
	// EntropyGrad, with Entropy, tells LossGrad that the loss has an
	// entropy term: its TokenLoss then writes dL/dH as well.
	EntropyGrad bool
}

// TokenLoss is a loss over the output rows' log-probabilities whose
// gradient for a token needs only that token's own values and constants
// fixed beforehand: every clipped-surrogate objective (optim.PolicyLoss),
// or a loss whose gradient is already known (KnownGrad).
type TokenLoss interface {
	// TokenGrad is called once per chunk of output rows [r0, r1), in
	// order, after the chunk's log-probs (and entropies, when asked for)
	// are written into logp (and entropy); it must write dL/dℓ of the same
	// rows into dlogp, and dL/dH into dEntropy when that is not nil. The
	// buffers hold every output row. Returning false stops the pass (a
	// non-finite loss, say).
	TokenGrad(logp, entropy, dlogp, dEntropy kernels.Buf, r0, r1 int) bool
}

// OutputGrad is what LossGrad leaves: buffers of the workspace, valid
// until the next call on it.
type OutputGrad struct {
	// Logp and Entropy (nil unless asked for) hold the output rows'
	// values.
	Logp, Entropy kernels.Buf
	// DFinal is the gradient with respect to the final hidden states of
	// every row of the Forward, [rows × hidden], zero outside the output
	// rows: add other heads' gradients to it, then pass it to Backward.
	DFinal kernels.Buf
	// Complete is false when the loss stopped the pass: the gradients are
	// then incomplete and must be discarded.
	Complete bool
}

// LogProbs computes, after Forward, the log-probability of each output
// row's target under softmax(o.InvTemp · logits), and each row's entropy
// when o.Entropy is set. Nothing is kept for a backward pass.
func (m *Model) LogProbs(ws *Workspace, o Output) (logp, entropy []float32, err error) {
	n, hidden, err := ws.outputRows(o)
	if err != nil {
		return nil, nil, err
	}
	be, c := m.be, m.Cfg
	lp := be.View(ws.logp, 0, n)
	var ent kernels.Buf
	if o.Entropy {
		ent = be.View(ws.ent, 0, n)
	}
	be.TokenLogProbs(lp, ent, be.View(ws.lse, 0, n), hidden, m.LMHead(), o.Targets, n, c.Hidden, c.Vocab, o.InvTemp)
	logp = make([]float32, n)
	be.Download(logp, lp)
	if o.Entropy {
		entropy = make([]float32, n)
		be.Download(entropy, ent)
	}
	return logp, entropy, nil
}

// LossGrad runs the output layer forward and backward in one pass
// (kernels.Fused.TokenLogProbsGrad) for loss: for each chunk of output rows
// the kernel computes the log-probs, loss turns them into dL/dℓ, and the
// kernel carries that into the LM head's gradient (accumulated into
// m.Grads) and the hidden states' from the logits it still holds, so each
// logit is computed once. The returned DFinal goes to Backward.
func (m *Model) LossGrad(ws *Workspace, o Output, loss TokenLoss) (OutputGrad, error) {
	if o.EntropyGrad && !o.Entropy {
		return OutputGrad{}, fmt.Errorf("model: an entropy gradient without the entropy")
	}
	n, hidden, err := ws.outputRows(o)
	if err != nil {
		return OutputGrad{}, err
	}
	var dW kernels.Buf // nil: the frozen LM head gets no gradient
	if !m.frozenBase() {
		m.EnableGrads()
		dW = m.dw.lmHead
	}
	be, c := m.be, m.Cfg
	dHidden := ws.view(ws.dfinal, c.Hidden)
	if o.Spans != nil {
		dHidden = be.View(ws.cdfinal, 0, n*c.Hidden)
	}
	be.Zero(dHidden)
	a := &kernels.LogProbsGradArgs{
		Logp: be.View(ws.logp, 0, n), LSE: be.View(ws.lse, 0, n), DLogp: be.View(ws.dlogp, 0, n),
		Hidden: hidden, W: m.LMHead(),
		DHidden: dHidden, DW: dW,
		Targets: o.Targets, N: n, D: c.Hidden, Vocab: c.Vocab, InvTemp: o.InvTemp,
	}
	if o.Entropy {
		a.Entropy = be.View(ws.ent, 0, n)
	}
	if o.EntropyGrad {
		a.DEntropy = be.View(ws.dent, 0, n)
	}
	complete := true
	a.Grad = func(r0, r1 int) bool {
		complete = loss.TokenGrad(a.Logp, a.Entropy, a.DLogp, a.DEntropy, r0, r1)
		return complete
	}
	be.TokenLogProbsGrad(a)
	return OutputGrad{Logp: a.Logp, Entropy: a.Entropy, DFinal: ws.scatterRows(o.Spans), Complete: complete}, nil
}

// KnownGrad is the TokenLoss of a loss whose gradient is known before the
// log-probs are: a cross-entropy's constant weights (supervised
// fine-tuning), or coefficients computed from an earlier LogProbs (DRPO's,
// which need whole-sequence sums). dlogp has one value per output row;
// dEntropy, when not nil, too (with Output.EntropyGrad).
func (m *Model) KnownGrad(dlogp, dEntropy []float32) TokenLoss {
	return knownGrad{be: m.be, dlogp: dlogp, dEntropy: dEntropy}
}

type knownGrad struct {
	be              kernels.Backend
	dlogp, dEntropy []float32
}

func (k knownGrad) TokenGrad(_, _, dlogp, dEntropy kernels.Buf, r0, r1 int) bool {
	k.be.Upload(k.be.View(dlogp, r0, r1-r0), k.dlogp[r0:r1])
	if dEntropy != nil {
		k.be.Upload(k.be.View(dEntropy, r0, r1-r0), k.dEntropy[r0:r1])
	}
	return true
}

// outputRows checks o against the last Forward and returns the number of
// output rows and their final hidden states.
func (ws *Workspace) outputRows(o Output) (int, kernels.Buf, error) {
	n, hidden, err := ws.rows(o.Spans)
	if err == nil && len(o.Targets) != n {
		err = fmt.Errorf("model: %d targets for %d output rows", len(o.Targets), n)
	}
	return n, hidden, err
}

// rows returns the number of rows in spans of the last Forward and their
// final hidden states: all rows when spans is nil, else the spans' rows
// gathered in order into a compact buffer.
func (ws *Workspace) rows(spans [][2]int) (int, kernels.Buf, error) {
	D, be := ws.m.Cfg.Hidden, ws.m.be
	if spans == nil {
		return ws.n, ws.view(ws.final, D), nil
	}
	n := 0
	for _, sp := range spans {
		if sp[0] < 0 || sp[1] > ws.n || sp[1] < sp[0] {
			return 0, nil, fmt.Errorf("model: row span %v outside the %d rows of the batch", sp, ws.n)
		}
		n += sp[1] - sp[0]
	}
	off := 0
	for _, sp := range spans {
		if r := sp[1] - sp[0]; r > 0 {
			be.Copy2D(be.View(ws.cfinal, off*D, r*D), D, be.View(ws.final, sp[0]*D, r*D), D, r, D)
			off += r
		}
	}
	return n, be.View(ws.cfinal, 0, n*D), nil
}

// scatterRows returns the final hidden states' gradient over every row of
// the Forward: the output rows' gradient put back in place from the compact
// buffer (zero elsewhere), or, without spans, the buffer the kernel wrote.
func (ws *Workspace) scatterRows(spans [][2]int) kernels.Buf {
	D, be := ws.m.Cfg.Hidden, ws.m.be
	dfinal := ws.view(ws.dfinal, D)
	if spans == nil {
		return dfinal
	}
	be.Zero(dfinal)
	off := 0
	for _, sp := range spans {
		if r := sp[1] - sp[0]; r > 0 {
			be.Copy2D(be.View(ws.dfinal, sp[0]*D, r*D), D, be.View(ws.cdfinal, off*D, r*D), D, r, D)
			off += r
		}
	}
	return dfinal
}
