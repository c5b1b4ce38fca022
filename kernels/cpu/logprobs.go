package cpu

import (
	"fmt"
	"math"

	"github.com/rltrain/rltrain/kernels"
)

// logitChunkFloats bounds the logits held at once by the fused output-layer
// kernels (8 Mi floats = 32 MiB). A batch whose logits fit is done in one
// piece (and its probabilities kept for the backward pass); a larger one is
// done vocabulary slice by vocabulary slice (logprobs_vocab.go).
// It is a variable so tests can force several chunks.
var logitChunkFloats = 8 << 20

func chunkRows(n, vocab int) int { return max(1, min(n, logitChunkFloats/max(vocab, 1))) }

// TokenLogProbs implements kernels.Fused.
func (b *Backend) TokenLogProbs(logp, entropy, lse, hidden, w kernels.Buf, targets []int32, n, d, vocab int, invTemp float32) {
	lp, ls, h, ws := Data(logp), Data(lse), Data(hidden), Data(w)
	var ent []float32
	if entropy != nil {
		ent = Data(entropy)
	}
	checkTargets(targets, n, vocab)
	rows := chunkRows(n, vocab)
	if rows < n {
		b.dropProbs()
		b.tokenLogProbsVocab(lp, ent, ls, h, ws, targets, n, d, vocab, invTemp)
		return
	}
	z := b.getScratch(rows * vocab)
	// When every row fits in one chunk, the probabilities are kept for the
	// backward pass, which then needs neither the logit product nor the
	// exponentials again.
	keep := rows >= n
	key := probKey{h: &h[0], w: &ws[0], lse: &ls[0], n: n, d: d, vocab: vocab, invTemp: invTemp}
	b.dropProbs()
	for r0 := 0; r0 < n; r0 += rows {
		m := min(rows, n-r0)
		zc := z[:m*vocab]
		b.gemm(false, true, m, vocab, d, invTemp, h[r0*d:], d, ws, d, 0, zc, vocab)
		parallelFor(b.threads, m, 1, func(lo, hi int) {
			e := make([]float32, vocab)
			for r := lo; r < hi; r++ {
				row := zc[r*vocab : (r+1)*vocab]
				i := r0 + r
				sum := rowSoftmax(e, row, targets[i], i, lp, ls, ent)
				if keep {
					scaleInto(row, e, float32(1/sum))
				}
			}
		})
	}
	if keep {
		b.keepProbs(key, z)
	} else {
		b.putScratch(z)
	}
}

// rowSoftmax reduces one row of logits: e receives exp(row − max), and
// lse[i], logp[i] (0 for a negative target) and, when ent is non-nil,
// ent[i] = lse − Σ p·z are written. It returns Σ e.
func rowSoftmax(e, row []float32, target int32, i int, logp, lse, ent []float32) float64 {
	mx := maxSlice(row)
	sum := expShift(e, row, mx)
	l := float64(mx) + math.Log(sum)
	lse[i] = float32(l)
	logp[i] = 0
	if target >= 0 {
		logp[i] = row[target] - float32(l)
	}
	if ent != nil {
		ent[i] = float32(l - dotF64(e, row)/sum)
	}
	return sum
}

// probKey identifies the forward call whose probabilities are cached.
type probKey struct {
	h, w, lse   *float32
	n, d, vocab int
	invTemp     float32
}

// keepProbs caches the softmax of a single-chunk forward call.
func (b *Backend) keepProbs(k probKey, p []float32) {
	b.mu.Lock()
	b.probs, b.probsKey = p, k
	b.mu.Unlock()
}

// dropProbs returns a cached probability buffer to the scratch pool.
func (b *Backend) dropProbs() {
	b.mu.Lock()
	p := b.probs
	b.probs = nil
	b.mu.Unlock()
	if p != nil {
		b.putScratch(p)
	}
}

// takeProbs hands over the cached probabilities if they belong to the
// given call (the caller owns them afterwards).
func (b *Backend) takeProbs(k probKey) []float32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.probs == nil || b.probsKey != k {
		return nil
	}
	p := b.probs
	b.probs = nil
	return p
}

// TokenLogProbsBackward implements kernels.Fused. Per row, with p the
// softmax of z = invTemp·logits: ∂logp/∂z = onehot − p and
// ∂H/∂z_k = −p_k (log p_k + H); chain through z = invTemp·h·Wᵀ.
func (b *Backend) TokenLogProbsBackward(dHidden, dW, dlogp, dEntropy, hidden, w, lse, entropy kernels.Buf, targets []int32, n, d, vocab int, invTemp float32) {
	dh, dws, g, h, ws, ls := Data(dHidden), Data(dW), Data(dlogp), Data(hidden), Data(w), Data(lse)
	var ge, ent []float32
	if dEntropy != nil {
		ge, ent = Data(dEntropy), Data(entropy)
	}
	checkTargets(targets, n, vocab)
	key := probKey{h: &h[0], w: &ws[0], lse: &ls[0], n: n, d: d, vocab: vocab, invTemp: invTemp}
	if ge == nil {
		if p := b.takeProbs(key); p != nil {
			b.logProbsBackwardCached(dh, dws, g, h, ws, p[:n*vocab], targets, n, d, vocab, invTemp)
			b.putScratch(p)
			return
		}
	}
	// Without kept probabilities (several chunks, an entropy term, or
	// another forward call in between) the logits are recomputed slice by
	// slice.
	b.dropProbs()
	b.tokenLogProbsBackwardVocab(dh, dws, g, ge, ent, h, ws, ls, targets, n, d, vocab, invTemp)
}

// logProbsBackwardCached is the backward pass from the probabilities the
// forward pass kept: dz = invTemp·g·(onehot − p), written over p.
func (b *Backend) logProbsBackwardCached(dh, dws, g, h, ws, p []float32, targets []int32, n, d, vocab int, invTemp float32) {
	parallelFor(b.threads, n, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := p[i*vocab : (i+1)*vocab]
			gl := g[i]
			if targets[i] < 0 {
				gl = 0
			}
			c := -gl * invTemp
			for k, pk := range row {
				row[k] = c * pk
			}
			if t := targets[i]; t >= 0 {
				row[t] += gl * invTemp
			}
		}
	})
	b.gemm(false, false, n, d, vocab, 1, p, vocab, ws, d, 1, dh, d)
	if dws != nil {
		b.gemm(true, false, vocab, d, n, 1, p, vocab, h, d, 1, dws, d)
	}
}

func checkTargets(targets []int32, n, vocab int) {
	if len(targets) < n {
		panic(fmt.Sprintf("cpu: %d targets for %d rows", len(targets), n))
	}
	for _, t := range targets[:n] {
		if int(t) >= vocab {
			panic(fmt.Sprintf("cpu: target id %d outside the vocabulary of %d", t, vocab))
		}
	}
}

// dotF64 is Σ a·b accumulated in float64.
func dotF64(a, b []float32) float64 {
	b = b[:len(a)]
	var s0, s1 float64
	i := 0
	for ; i+2 <= len(a); i += 2 {
		s0 += float64(a[i]) * float64(b[i])
		s1 += float64(a[i+1]) * float64(b[i+1])
	}
	if i < len(a) {
		s0 += float64(a[i]) * float64(b[i])
	}
	return s0 + s1
}
