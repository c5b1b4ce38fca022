package cpu

import "math"

// Vocabulary-chunked fused log-probs, used when the batch's logits do not
// fit in one chunk: the LM head is taken vocab slice by vocab slice, each
// slice's logits for all rows come from one large product, and every row
// keeps an online log-sum-exp (running max m, Σe^(z−m), Σe^(z−m)·z).
// The vocabulary matrix is thus read once per pass however many tokens
// there are, and the products stay large enough for BLAS to run at full
// speed.

// minVocabChunk keeps slices wide enough for efficient products even for
// very many rows (a variable so tests can force many slices).
var minVocabChunk = 256

// vocabChunk is the width of a vocabulary slice for n rows.
func vocabChunk(n, vocab int) int {
	vc := max(minVocabChunk, logitChunkFloats/max(n, 1))
	if vc >= 16 {
		vc = vc / 16 * 16
	}
	return min(vc, vocab)
}

func (b *Backend) tokenLogProbsVocab(lp, ent, ls, h, ws []float32, targets []int32, n, d, vocab int, invTemp float32) {
	vc := vocabChunk(n, vocab)
	z := b.getScratch(n * vc)
	defer b.putScratch(z)
	mx := make([]float32, n)
	for i := range mx {
		mx[i] = float32(math.Inf(-1))
	}
	sum, wsum := make([]float64, n), make([]float64, n)
	zt := make([]float32, n)
	for v0 := 0; v0 < vocab; v0 += vc {
		w := min(vc, vocab-v0)
		zc := z[:n*w]
		b.gemm(false, true, n, w, d, invTemp, h, d, ws[v0*d:], d, 0, zc, w)
		parallelFor(b.threads, n, 8, func(lo, hi int) {
			e := make([]float32, w)
			for i := lo; i < hi; i++ {
				row := zc[i*w : (i+1)*w]
				lm := maxSlice(row)
				if lm > mx[i] {
					// Rescale what was accumulated under the old max.
					f := math.Exp(float64(mx[i] - lm))
					sum[i] *= f
					wsum[i] *= f
					mx[i] = lm
				}
				sum[i] += expShift(e, row, mx[i])
				if ent != nil {
					wsum[i] += dotF64(e, row)
				}
				if t := int(targets[i]); t >= v0 && t < v0+w {
					zt[i] = row[t-v0]
				}
			}
		})
	}
	for i := 0; i < n; i++ {
		l := float64(mx[i]) + math.Log(sum[i])
		ls[i] = float32(l)
		lp[i] = 0
		if targets[i] >= 0 {
			lp[i] = zt[i] - float32(l)
		}
		if ent != nil {
			ent[i] = float32(l - wsum[i]/sum[i])
		}
	}
}

func (b *Backend) tokenLogProbsBackwardVocab(dh, dws, g, ge, ent, h, ws, ls []float32, targets []int32, n, d, vocab int, invTemp float32) {
	vc := vocabChunk(n, vocab)
	z := b.getScratch(n * vc)
	defer b.putScratch(z)
	for v0 := 0; v0 < vocab; v0 += vc {
		w := min(vc, vocab-v0)
		zc := z[:n*w]
		b.gemm(false, true, n, w, d, invTemp, h, d, ws[v0*d:], d, 0, zc, w)
		parallelFor(b.threads, n, 8, func(lo, hi int) {
			p := make([]float32, w)
			for i := lo; i < hi; i++ {
				row := zc[i*w : (i+1)*w]
				l := ls[i]
				gl := g[i]
				if targets[i] < 0 {
					gl = 0
				}
				var gh, H float32
				if ge != nil {
					gh, H = ge[i], ent[i]
				}
				expShift(p, row, l)
				if gh == 0 {
					for k, pk := range p {
						row[k] = -gl * pk * invTemp
					}
				} else {
					for k, pk := range p {
						row[k] = (-gl*pk - gh*pk*(row[k]-l+H)) * invTemp
					}
				}
				if t := int(targets[i]); t >= v0 && t < v0+w {
					row[t-v0] += gl * invTemp
				}
			}
		})
		// dHidden += dZ·W[v0:v0+w] ; dW[v0:v0+w] += dZᵀ·h
		b.gemm(false, false, n, d, w, 1, zc, w, ws[v0*d:], d, 1, dh, d)
		if dws != nil {
			b.gemm(true, false, w, d, n, 1, zc, w, h, d, 1, dws[v0*d:], d)
		}
	}
}
