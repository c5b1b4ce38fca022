package cpu

import (
	"math"
	"sync"

	"github.com/rltrain/rltrain/kernels"
)

// attnBlock is the number of query rows processed together. Query block
// [i0, i1) only needs keys [0, i1), so blocking skips most of the masked
// upper triangle while keeping the products large enough for BLAS.
const attnBlock = 64

type attnTask struct{ b, kvh int }

// forEachKVGroup runs fn for every (sequence, KV head) pair in parallel.
// Each task owns the dK/dV slice of its KV head, so no two tasks write the
// same memory.
func (b *Backend) forEachKVGroup(s kernels.AttnShape, fn func(t attnTask, scratch []float32)) {
	tasks := make(chan attnTask, s.Batch*s.KVHeads)
	for bi := 0; bi < s.Batch; bi++ {
		for h := 0; h < s.KVHeads; h++ {
			tasks <- attnTask{bi, h}
		}
	}
	close(tasks)
	workers := min(b.threads, s.Batch*s.KVHeads)
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer wg.Done()
			scratch := make([]float32, 2*attnBlock*s.SeqLen)
			for t := range tasks {
				fn(t, scratch)
			}
		}()
	}
	wg.Wait()
}

func seqLen(s kernels.AttnShape, bi int) int {
	if s.Lens == nil {
		return s.SeqLen
	}
	return s.Lens[bi]
}

// attnDims returns the head size, the fused qkv row stride, the output row
// stride and the query heads per KV head of s.
func attnDims(s kernels.AttnShape) (hd, stride, ostride, group int) {
	hd = s.HeadDim
	return hd, (s.Heads + 2*s.KVHeads) * hd, s.Heads * hd, s.Heads / s.KVHeads
}

// Attention implements kernels.Dense.
func (b *Backend) Attention(out, lse, qkv kernels.Buf, s kernels.AttnShape) {
	o, l, x := Data(out), Data(lse), Data(qkv)
	hd, stride, ostride, group := attnDims(s)
	b.forEachKVGroup(s, func(t attnTask, scratch []float32) {
		T := seqLen(s, t.b)
		base := t.b * s.SeqLen
		// Padding rows produce zeros.
		for r := T; r < s.SeqLen; r++ {
			for h := t.kvh * group; h < (t.kvh+1)*group; h++ {
				clear(o[(base+r)*ostride+h*hd : (base+r)*ostride+h*hd+hd])
				l[(t.b*s.Heads+h)*s.SeqLen+r] = 0
			}
		}
		k := x[base*stride+(s.Heads+t.kvh)*hd:]
		v := x[base*stride+(s.Heads+s.KVHeads+t.kvh)*hd:]
		for h := t.kvh * group; h < (t.kvh+1)*group; h++ {
			for i0 := 0; i0 < T; i0 += attnBlock {
				i1 := min(i0+attnBlock, T)
				m := i1 - i0
				sc := scratch[:m*i1]
				q := x[(base+i0)*stride+h*hd:]
				sgemm(false, true, m, i1, hd, s.Scale, q, stride, k, stride, 0, sc, i1)
				lrow := l[(t.b*s.Heads+h)*s.SeqLen+i0:]
				for r := 0; r < m; r++ {
					row := sc[r*i1 : (r+1)*i1]
					n := i0 + r + 1 // causal: keys 0..i0+r
					mx := row[0]
					for _, v := range row[1:n] {
						mx = max(mx, v)
					}
					sum := expShift(row[:n], row[:n], mx)
					inv := float32(1 / sum)
					for j := 0; j < n; j++ {
						row[j] *= inv
					}
					clear(row[n:])
					lrow[r] = mx + float32(math.Log(sum))
				}
				sgemm(false, false, m, hd, i1, 1, sc, i1, v, stride, 0, o[(base+i0)*ostride+h*hd:], ostride)
			}
		}
	})
}

// AttentionBackward implements kernels.Dense. With P recomputed from the
// saved log-sum-exp: dV += Pᵀ dO, dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O)),
// dQ = scale·dS K, dK += scale·dSᵀ Q.
func (b *Backend) AttentionBackward(dqkv, dout, qkv, out, lse kernels.Buf, s kernels.AttnShape) {
	dx, dy, x, o, l := Data(dqkv), Data(dout), Data(qkv), Data(out), Data(lse)
	hd, stride, ostride, group := attnDims(s)
	b.forEachKVGroup(s, func(t attnTask, scratch []float32) {
		T := seqLen(s, t.b)
		base := t.b * s.SeqLen
		// This task owns the q columns of its heads and the k, v columns of
		// its KV head in every row of its sequence: clear them first.
		for r := 0; r < s.SeqLen; r++ {
			row := dx[(base+r)*stride:]
			clear(row[t.kvh*group*hd : (t.kvh+1)*group*hd])
			clear(row[(s.Heads+t.kvh)*hd : (s.Heads+t.kvh+1)*hd])
			clear(row[(s.Heads+s.KVHeads+t.kvh)*hd : (s.Heads+s.KVHeads+t.kvh+1)*hd])
		}
		k := x[base*stride+(s.Heads+t.kvh)*hd:]
		v := x[base*stride+(s.Heads+s.KVHeads+t.kvh)*hd:]
		dk := dx[base*stride+(s.Heads+t.kvh)*hd:]
		dv := dx[base*stride+(s.Heads+s.KVHeads+t.kvh)*hd:]
		for h := t.kvh * group; h < (t.kvh+1)*group; h++ {
			for i0 := 0; i0 < T; i0 += attnBlock {
				i1 := min(i0+attnBlock, T)
				m := i1 - i0
				p := scratch[:m*i1]
				dp := scratch[attnBlock*s.SeqLen : attnBlock*s.SeqLen+m*i1]
				q := x[(base+i0)*stride+h*hd:]
				doh := dy[(base+i0)*ostride+h*hd:]
				sgemm(false, true, m, i1, hd, s.Scale, q, stride, k, stride, 0, p, i1)
				lrow := l[(t.b*s.Heads+h)*s.SeqLen+i0:]
				for r := 0; r < m; r++ {
					row := p[r*i1 : (r+1)*i1]
					n := i0 + r + 1
					expShift(row[:n], row[:n], lrow[r])
					clear(row[n:])
				}
				// dV[0:i1] += Pᵀ dO
				sgemm(true, false, i1, hd, m, 1, p, i1, doh, ostride, 1, dv, stride)
				// dP = dO Vᵀ
				sgemm(false, true, m, i1, hd, 1, doh, ostride, v, stride, 0, dp, i1)
				for r := 0; r < m; r++ {
					orow := o[(base+i0+r)*ostride+h*hd : (base+i0+r)*ostride+h*hd+hd]
					drow := dy[(base+i0+r)*ostride+h*hd : (base+i0+r)*ostride+h*hd+hd]
					D := dot(orow, drow)
					pr, dpr := p[r*i1:(r+1)*i1], dp[r*i1:(r+1)*i1]
					n := i0 + r + 1
					for j := 0; j < n; j++ {
						dpr[j] = pr[j] * (dpr[j] - D) * s.Scale
					}
					clear(dpr[n:])
				}
				// dQ = dS K ; dK += dSᵀ Q
				sgemm(false, false, m, hd, i1, 1, dp, i1, k, stride, 0, dx[(base+i0)*stride+h*hd:], stride)
				sgemm(true, false, i1, hd, m, 1, dp, i1, q, stride, 1, dk, stride)
			}
		}
	})
}

// AttentionDecode implements kernels.Dense. A task is one sequence and one
// KV head: the key and value offsets of its positions are computed once
// and shared by the query heads of the group, which attention_decode.c
// handles together where it can.
func (b *Backend) AttentionDecode(out, q kernels.Buf, qStride int, kPool, vPool kernels.Buf, slots [][]int32, lens []int, heads, kvHeads, headDim int, scale float32) {
	o, qs, kp, vp := Data(out), Data(q), Data(kPool), Data(vPool)
	width := kvHeads * headDim
	group := heads / kvHeads
	maxLen := 0
	for _, n := range lens {
		maxLen = max(maxLen, n)
	}
	parallelFor(b.threads, len(lens)*kvHeads, 1, func(lo, hi int) {
		scores := make([]float32, group*maxLen)
		offs := make([]int, maxLen)
		for t := lo; t < hi; t++ {
			i, kvh := t/kvHeads, t%kvHeads
			L := lens[i]
			off := offs[:L]
			for j, slot := range slots[i][:L] {
				off[j] = int(slot)*width + kvh*headDim
			}
			q0, o0 := i*qStride+kvh*group*headDim, (i*heads+kvh*group)*headDim
			if decodeAttnC(qs[q0:q0+group*headDim], group, headDim, kp, vp, off, scale, scores, o[o0:o0+group*headDim]) {
				continue
			}
			for h := kvh * group; h < (kvh+1)*group; h++ {
				qv := qs[i*qStride+h*headDim : i*qStride+h*headDim+headDim]
				ov := o[(i*heads+h)*headDim : (i*heads+h+1)*headDim]
				if L == 0 {
					clear(ov) // nothing to attend to
					continue
				}
				sc := scores[:L]
				mx := decodeScores(sc, qv, kp, off, scale)
				inv := float32(1 / expShift(sc, sc, mx))
				decodeWeighted(ov, sc, vp, off)
				for d := range ov {
					ov[d] *= inv
				}
			}
		}
	})
}

// decodeScores writes scores[j] = scale·(q·k_j) for the key rows
// k_j = kp[offs[j] : offs[j]+len(q)] and returns the largest score (head
// sizes the C kernel does not take, or no AVX-512).
func decodeScores(scores, q, kp []float32, offs []int, scale float32) float32 {
	hd := len(q)
	mx := float32(math.Inf(-1))
	for j, off := range offs {
		sc := dot(q, kp[off:off+hd]) * scale
		scores[j] = sc
		mx = max(mx, sc)
	}
	return mx
}

// decodeWeighted writes out = Σ_j p[j]·v_j for the value rows
// v_j = vp[offs[j] : offs[j]+len(out)].
func decodeWeighted(out, p, vp []float32, offs []int) {
	hd := len(out)
	clear(out)
	for j, off := range offs {
		axpy(p[j], vp[off:off+hd], out)
	}
}
