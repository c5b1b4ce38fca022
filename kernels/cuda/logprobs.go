package cuda

import (
	"fmt"

	"github.com/rltrain/rltrain/kernels"
)

// logitChunkFloats bounds the logits held at once by the fused output-layer
// kernels, as in kernels/cpu.
const logitChunkFloats = 8 << 20

// onePassFloats bounds the logits TokenLogProbsGrad holds at once.
const onePassFloats = 64 << 20

func chunkRows(n, vocab int) int { return max(1, min(n, logitChunkFloats/max(vocab, 1))) }

func (b *Backend) logitScratch(floats int) DevPtr {
	if b.scratchLen < floats {
		b.free(b.scratch)
		b.scratch = b.alloc(4 * floats)
		b.scratchLen = floats
	}
	return b.scratch
}

func checkTargets(targets []int32, n, vocab int) {
	if len(targets) < n {
		panic(fmt.Sprintf("cuda: %d targets for %d rows", len(targets), n))
	}
	for _, t := range targets[:n] {
		if int(t) >= vocab {
			panic(fmt.Sprintf("cuda: target id %d outside the vocabulary of %d", t, vocab))
		}
	}
}

// TokenLogProbs implements kernels.Fused.
func (b *Backend) TokenLogProbs(logp, entropy, lse, hidden, w kernels.Buf, targets []int32, n, d, vocab int, invTemp float32) {
	if n == 0 {
		return
	}
	checkTargets(targets, n, vocab)
	tg := b.uploadInts(targets[:n])
	defer b.release(tg)
	rows := chunkRows(n, vocab)
	z := b.logitScratch(rows * vocab)
	for r0 := 0; r0 < n; r0 += rows {
		m := min(rows, n-r0)
		b.gemm(false, true, m, vocab, d, invTemp, dev(hidden)+DevPtr(4*r0*d), d, dev(w), d, 0, z, vocab)
		b.launch("logprob_rows", D1(m), D1(256), 0, ArgPtr(dev(logp)), ArgPtr(dev(entropy)), ArgPtr(dev(lse)), ArgPtr(z), ArgPtr(tg), ArgInt(vocab), ArgInt(r0))
	}
}

// TokenLogProbsBackward implements kernels.Fused.
func (b *Backend) TokenLogProbsBackward(dHidden, dW, dlogp, dEntropy, hidden, w, lse, entropy kernels.Buf, targets []int32, n, d, vocab int, invTemp float32) {
	if n == 0 {
		return
	}
	checkTargets(targets, n, vocab)
	if dEntropy == nil {
		entropy = nil
	}
	tg := b.uploadInts(targets[:n])
	defer b.release(tg)
	rows := chunkRows(n, vocab)
	z := b.logitScratch(rows * vocab)
	for r0 := 0; r0 < n; r0 += rows {
		m := min(rows, n-r0)
		h := dev(hidden) + DevPtr(4*r0*d)
		b.gemm(false, true, m, vocab, d, invTemp, h, d, dev(w), d, 0, z, vocab)
		b.launch("logprob_grad_rows", D1(m), D1(256), 0, ArgPtr(z), ArgPtr(dev(lse)), ArgPtr(dev(dlogp)), ArgPtr(dev(dEntropy)),
			ArgPtr(dev(entropy)), ArgPtr(tg), ArgInt(vocab), ArgInt(r0), ArgF32(invTemp))
		b.gemm(false, false, m, d, vocab, 1, z, vocab, dev(w), d, 1, dev(dHidden)+DevPtr(4*r0*d), d)
		if dW != nil {
			b.gemm(true, false, vocab, d, m, 1, z, vocab, h, d, 1, dev(dW), d)
		}
	}
}

// TokenLogProbsGrad implements kernels.Fused: per chunk of rows, the logit
// product, the row statistics, the caller's dL/dℓ, the logit gradient
// written over the logits, and the two backward products.
func (b *Backend) TokenLogProbsGrad(a *kernels.LogProbsGradArgs) {
	n, d, vocab := a.N, a.D, a.Vocab
	if n == 0 {
		return
	}
	checkTargets(a.Targets, n, vocab)
	entropy, dEntropy := a.Entropy, a.DEntropy
	if entropy == nil {
		dEntropy = nil
	}
	tg := b.uploadInts(a.Targets[:n])
	defer b.release(tg)
	// Larger chunks than the two-call path's: the dW product's inner
	// dimension is the chunk's row count (64 Mi floats = 256 MiB of logits,
	// 441 rows at a 151,936 vocabulary).
	rows := max(1, min(n, onePassFloats/max(vocab, 1)))
	if a.ChunkRows > 0 {
		rows = min(n, a.ChunkRows)
	}
	z := b.logitScratch(rows * vocab)
	for r0 := 0; r0 < n; r0 += rows {
		m := min(rows, n-r0)
		h := dev(a.Hidden) + DevPtr(4*r0*d)
		b.gemm(false, true, m, vocab, d, a.InvTemp, h, d, dev(a.W), d, 0, z, vocab)
		b.launch("logprob_rows", D1(m), D1(256), 0, ArgPtr(dev(a.Logp)), ArgPtr(dev(entropy)), ArgPtr(dev(a.LSE)), ArgPtr(z), ArgPtr(tg), ArgInt(vocab), ArgInt(r0))
		if !a.Grad(r0, r0+m) {
			return
		}
		gradEntropy := entropy
		if dEntropy == nil {
			gradEntropy = nil
		}
		b.launch("logprob_grad_rows", D1(m), D1(256), 0, ArgPtr(z), ArgPtr(dev(a.LSE)), ArgPtr(dev(a.DLogp)), ArgPtr(dev(dEntropy)),
			ArgPtr(dev(gradEntropy)), ArgPtr(tg), ArgInt(vocab), ArgInt(r0), ArgF32(a.InvTemp))
		b.gemm(false, false, m, d, vocab, 1, z, vocab, dev(a.W), d, 1, dev(a.DHidden)+DevPtr(4*r0*d), d)
		if a.DW != nil {
			b.gemm(true, false, vocab, d, m, 1, z, vocab, h, d, 1, dev(a.DW), d)
		}
	}
}
