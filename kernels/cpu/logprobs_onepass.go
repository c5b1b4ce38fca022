package cpu

import "github.com/rltrain/rltrain/kernels"

// onePassFloats bounds the logits TokenLogProbsGrad holds at once (32 Mi
// floats = 128 MiB). Chunks are whole vocabulary rows, so the bound sets
// how many token rows share one pass over the LM head: the dW update of a
// chunk reads and writes all of dW, and rows/chunk is its inner dimension,
// so fewer, larger chunks make that product cheaper.
var onePassFloats = 32 << 20

// onePassRows is the number of rows per chunk for n rows of vocab logits.
func onePassRows(n, vocab int) int {
	r := max(1, onePassFloats/max(vocab, 1))
	if r >= 16 && r < n {
		r = r / 16 * 16 // whole panels for the products
	}
	return min(n, r)
}

// TokenLogProbsGrad implements kernels.Fused: per chunk of rows, one
// product for the logits, the softmax statistics, the caller's dL/dℓ, the
// logit gradient written over the logits, and the two products of the
// backward pass: three products over the LM head where the two-call path
// needs four, and one pass of exponentials where it needs two.
func (b *Backend) TokenLogProbsGrad(a *kernels.LogProbsGradArgs) {
	n, d, vocab, invTemp := a.N, a.D, a.Vocab, a.InvTemp
	if n == 0 {
		return
	}
	checkTargets(a.Targets, n, vocab)
	b.dropProbs()
	lp, ls, h, ws := Data(a.Logp), Data(a.LSE), Data(a.Hidden), Data(a.W)
	dh, dws, g := Data(a.DHidden), Data(a.DW), Data(a.DLogp)
	var ent, ge []float32
	if a.Entropy != nil {
		ent = Data(a.Entropy)
		if a.DEntropy != nil {
			ge = Data(a.DEntropy)
		}
	}
	targets := a.Targets
	rows := onePassRows(n, vocab)
	if a.ChunkRows > 0 {
		rows = min(n, a.ChunkRows)
	}
	z := b.getScratch(rows * vocab)
	defer b.putScratch(z)
	// One vocabulary-wide row buffer per worker, reused by every chunk.
	rowBufs := make(chan []float32, b.threads)
	for range b.threads {
		rowBufs <- make([]float32, vocab)
	}
	for r0 := 0; r0 < n; r0 += rows {
		m := min(rows, n-r0)
		zc := z[:m*vocab]
		hc := h[r0*d : (r0+m)*d]
		b.gemm(false, true, m, vocab, d, invTemp, hc, d, ws, d, 0, zc, vocab)
		// Forward statistics. Without an entropy gradient the row is
		// replaced by its probabilities right away; with one the logits
		// are kept, because dH/dz needs them, and exponentiated again below.
		parallelFor(b.threads, m, 1, func(lo, hi int) {
			e := <-rowBufs
			defer func() { rowBufs <- e }()
			for r := lo; r < hi; r++ {
				row := zc[r*vocab : (r+1)*vocab]
				sum := rowSoftmax(e, row, targets[r0+r], r0+r, lp, ls, ent)
				if ge == nil {
					scaleInto(row, e, float32(1/sum))
				}
			}
		})
		if !a.Grad(r0, r0+m) {
			return
		}
		// dz = invTemp·(g·(onehot − p) − gh·p·(log p + H)), over the row.
		parallelFor(b.threads, m, 1, func(lo, hi int) {
			p := <-rowBufs
			defer func() { rowBufs <- p }()
			for r := lo; r < hi; r++ {
				i := r0 + r
				row := zc[r*vocab : (r+1)*vocab]
				gl := g[i]
				if targets[i] < 0 {
					gl = 0
				}
				if ge == nil || ge[i] == 0 {
					if ge != nil {
						expShift(row, row, ls[i])
					}
					scaleInto(row, row, -gl*invTemp)
				} else {
					gh, H, l := ge[i], ent[i], ls[i]
					expShift(p, row, l)
					for k, pk := range p {
						row[k] = (-gl*pk - gh*pk*(row[k]-l+H)) * invTemp
					}
				}
				if t := targets[i]; t >= 0 {
					row[t] += gl * invTemp
				}
			}
		})
		b.gemm(false, false, m, d, vocab, 1, zc, vocab, ws, d, 1, dh[r0*d:], d)
		// dW += dZᵀ·h, in vocabulary slices: for a transposed A operand
		// OpenBLAS copies the whole of it (measured: +126 MB for one
		// 208 × 151,936 chunk), so each call gets a narrow slice.
		for v0 := 0; dws != nil && v0 < vocab; v0 += onePassDWSlice {
			w := min(onePassDWSlice, vocab-v0)
			b.gemm(true, false, w, d, m, 1, zc[v0:], vocab, hc, d, 1, dws[v0*d:], d)
		}
	}
}

// onePassDWSlice is the vocabulary width of one dW product.
const onePassDWSlice = 8192
