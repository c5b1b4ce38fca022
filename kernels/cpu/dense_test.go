package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rltrain/rltrain/kernels"
)

const (
	fwdTol = 1e-5 // float32 forward against the float64 reference
	bwdTol = 1e-4 // float32 backward against float64 finite differences
)

func TestGemmAllTransposes(t *testing.T) {
	be := New(2)
	r := rand.New(rand.NewPCG(1, 2))
	m, n, k := 13, 7, 11
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			lda, ldb, ldc := k+3, n+2, n+5
			if ta {
				lda = m + 1
			}
			if tb {
				ldb = k + 4
			}
			arows, brows := m, k
			if ta {
				arows = k
			}
			if tb {
				brows = n
			}
			a, b := randVec(r, arows*lda, 1), randVec(r, brows*ldb, 1)
			c := randVec(r, m*ldc, 1)
			want := make([]float64, len(c))
			for i := range c {
				want[i] = float64(c[i])
			}
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					s := 0.0
					for p := 0; p < k; p++ {
						var av, bv float32
						if ta {
							av = a[p*lda+i]
						} else {
							av = a[i*lda+p]
						}
						if tb {
							bv = b[j*ldb+p]
						} else {
							bv = b[p*ldb+j]
						}
						s += float64(av) * float64(bv)
					}
					want[i*ldc+j] = 0.5*s + 2*float64(c[i*ldc+j])
				}
			}
			be.Gemm(ta, tb, m, n, k, 0.5, F32(a), lda, F32(b), ldb, 2, F32(c), ldc)
			checkClose(t, "gemm", c, want, fwdTol)
		}
	}
}

func TestRMSNorm(t *testing.T) {
	be := New(2)
	r := rand.New(rand.NewPCG(3, 4))
	rows, dim := 70, 33
	eps := 1e-5
	x, w, dy := randVec(r, rows*dim, 1), randVec(r, dim, 1), randVec(r, rows*dim, 1)
	out, rstd := make([]float32, rows*dim), make([]float32, rows)
	be.RMSNorm(F32(out), F32(rstd), F32(x), F32(w), rows, dim, float32(eps))
	checkClose(t, "forward", out, rmsnorm64(to64(x), to64(w), rows, dim, eps), fwdTol)

	dx, dw := make([]float32, rows*dim), make([]float32, dim)
	dx[0] = 1 // accumulates into existing gradients
	be.RMSNormBackward(F32(dx), F32(dw), F32(dy), F32(x), F32(w), F32(rstd), rows, dim)
	dx[0]--
	x64, w64, dy64 := to64(x), to64(w), to64(dy)
	checkClose(t, "dx", dx, fdGrad(func(v []float64) float64 { return dot64(dy64, rmsnorm64(v, w64, rows, dim, eps)) }, x64), bwdTol)
	checkClose(t, "dw", dw, fdGrad(func(v []float64) float64 { return dot64(dy64, rmsnorm64(x64, v, rows, dim, eps)) }, w64), bwdTol)
}

func TestRoPEAndInverse(t *testing.T) {
	be := New(2)
	r := rand.New(rand.NewPCG(5, 6))
	rows, heads, hd, stride := 9, 3, 8, 3*8+5
	x := randVec(r, rows*stride, 1)
	cos, sin := make([]float32, rows*hd/2), make([]float32, rows*hd/2)
	for i := range cos {
		a := r.Float64() * 6
		cos[i], sin[i] = float32(math.Cos(a)), float32(math.Sin(a))
	}
	want := rope64(to64(x), stride, to64(cos), to64(sin), rows, heads, hd)
	y := slices.Clone(x)
	be.RoPE(F32(y), stride, F32(cos), F32(sin), rows, heads, hd, false)
	checkClose(t, "forward", y, want, fwdTol)
	// The backward of a rotation is the inverse rotation: check against FD.
	dy := randVec(r, rows*stride, 1)
	dx := slices.Clone(dy)
	be.RoPE(F32(dx), stride, F32(cos), F32(sin), rows, heads, hd, true)
	dy64, c64, s64 := to64(dy), to64(cos), to64(sin)
	checkClose(t, "backward", dx, fdGrad(func(v []float64) float64 {
		return dot64(dy64, rope64(v, stride, c64, s64, rows, heads, hd))
	}, to64(x)), bwdTol)
}

func TestSwiGLU(t *testing.T) {
	be := New(2)
	r := rand.New(rand.NewPCG(7, 8))
	rows, ffn := 11, 17
	gu, dy := randVec(r, rows*2*ffn, 2), randVec(r, rows*ffn, 1)
	out := make([]float32, rows*ffn)
	be.SwiGLU(F32(out), F32(gu), rows, ffn)
	checkClose(t, "forward", out, swiglu64(to64(gu), rows, ffn), fwdTol)
	dgu := make([]float32, len(gu))
	be.SwiGLUBackward(F32(dgu), F32(dy), F32(gu), rows, ffn)
	dy64 := to64(dy)
	checkClose(t, "backward", dgu, fdGrad(func(v []float64) float64 { return dot64(dy64, swiglu64(v, rows, ffn)) }, to64(gu)), bwdTol)
}

func TestEmbedAndBias(t *testing.T) {
	be := New(2)
	r := rand.New(rand.NewPCG(9, 10))
	vocab, dim := 13, 6
	table := randVec(r, vocab*dim, 1)
	ids := []int32{3, 0, 12, 3, 3, 7}
	out := make([]float32, len(ids)*dim)
	be.Embed(F32(out), F32(table), ids, dim)
	dout := randVec(r, len(out), 1)
	dt := make([]float32, vocab*dim)
	be.EmbedBackward(F32(dt), F32(dout), ids, dim)
	want := make([]float64, vocab*dim)
	for i, id := range ids {
		if !slices.Equal(out[i*dim:(i+1)*dim], table[int(id)*dim:int(id+1)*dim]) {
			t.Fatalf("embed row %d differs", i)
		}
		for j := 0; j < dim; j++ {
			want[int(id)*dim+j] += float64(dout[i*dim+j])
		}
	}
	checkClose(t, "embed backward", dt, want, fwdTol)

	rows := 150
	x, bias := randVec(r, rows*dim, 1), randVec(r, dim, 1)
	y := slices.Clone(x)
	be.AddBias(F32(y), F32(bias), rows, dim)
	db := make([]float32, dim)
	be.BiasBackward(F32(db), F32(x), rows, dim)
	wantDB := make([]float64, dim)
	for i := 0; i < rows; i++ {
		for j := 0; j < dim; j++ {
			if y[i*dim+j] != x[i*dim+j]+bias[j] {
				t.Fatalf("bias add at %d,%d", i, j)
			}
			wantDB[j] += float64(x[i*dim+j])
		}
	}
	checkClose(t, "bias backward", db, wantDB, fwdTol)
}

func attnShape(batch, T, heads, kv, hd int, lens []int) kernels.AttnShape {
	return kernels.AttnShape{Batch: batch, SeqLen: T, Heads: heads, KVHeads: kv, HeadDim: hd, Lens: lens, Scale: float32(1 / math.Sqrt(float64(hd)))}
}

func TestAttentionForwardBackward(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct {
		name string
		s    kernels.AttnShape
	}{
		{"gqa-padded", attnShape(2, 9, 4, 2, 4, []int{9, 5})},
		{"mha-single-token", attnShape(2, 3, 2, 2, 6, []int{1, 3})},
		{"mqa-multi-block", attnShape(1, 70, 2, 1, 4, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := New(2)
			s := tc.s
			stride := (s.Heads + 2*s.KVHeads) * s.HeadDim
			rows := s.Batch * s.SeqLen
			qkv := randVec(r, rows*stride, 1)
			out := make([]float32, rows*s.Heads*s.HeadDim)
			lse := make([]float32, s.Batch*s.Heads*s.SeqLen)
			be.Attention(F32(out), F32(lse), F32(qkv), s)
			checkClose(t, "forward", out, attention64(to64(qkv), s), fwdTol)

			dy := randVec(r, len(out), 1)
			// Padding rows carry no gradient in a real model; zero them so
			// the reference sees the same loss.
			for b := 0; b < s.Batch; b++ {
				for i := seqLen(s, b); i < s.SeqLen; i++ {
					clear(dy[(b*s.SeqLen+i)*s.Heads*s.HeadDim : (b*s.SeqLen+i+1)*s.Heads*s.HeadDim])
				}
			}
			dqkv := randVec(r, len(qkv), 1) // overwritten
			be.AttentionBackward(F32(dqkv), F32(dy), F32(qkv), F32(out), F32(lse), s)
			dy64 := to64(dy)
			checkClose(t, "backward", dqkv, fdGrad(func(v []float64) float64 { return dot64(dy64, attention64(v, s)) }, to64(qkv)), bwdTol)
		})
	}
}

func TestAttentionDecodeMatchesFull(t *testing.T) {
	be := New(2)
	r := rand.New(rand.NewPCG(13, 14))
	heads, kv, hd, T := 4, 2, 8, 12
	s := attnShape(1, T, heads, kv, hd, nil)
	stride := (heads + 2*kv) * hd
	qkv := randVec(r, T*stride, 1)
	full := attention64(to64(qkv), s)
	width := kv * hd
	kPool, vPool := make([]float32, 40*width), make([]float32, 40*width)
	// Scatter the sequence over non-contiguous slots, as a paged cache does.
	slots := make([]int32, T)
	for i := range slots {
		slots[i] = int32(39 - 3*i)
	}
	be.CacheWrite(F32(kPool), width, F32(qkv), stride, heads*hd, slots)
	be.CacheWrite(F32(vPool), width, F32(qkv), stride, (heads+kv)*hd, slots)
	// Decode every position as its own sequence (lengths 1..T).
	n := T
	q := make([]float32, n*stride)
	allSlots := make([][]int32, n)
	lens := make([]int, n)
	for i := 0; i < n; i++ {
		copy(q[i*stride:(i+1)*stride], qkv[i*stride:(i+1)*stride])
		allSlots[i], lens[i] = slots, i+1
	}
	out := make([]float32, n*heads*hd)
	be.AttentionDecode(F32(out), F32(q), stride, F32(kPool), F32(vPool), allSlots, lens, heads, kv, hd, s.Scale)
	checkClose(t, "decode", out, full, fwdTol)
}

func TestTokenLogProbs(t *testing.T) {
	// One chunk (probabilities cached between the passes) and vocabulary
	// slices (online log-sum-exp; logits recomputed in the backward pass).
	// The second case cuts the 23-word vocabulary into slices of 6, so the
	// online log-sum-exp rescales across slices.
	for _, chunk := range []int{8 << 20, 2 * 23} {
		savedChunk, savedMin := logitChunkFloats, minVocabChunk
		logitChunkFloats, minVocabChunk = chunk, 5
		t.Run(fmt.Sprintf("chunk%d", chunk), testTokenLogProbs)
		logitChunkFloats, minVocabChunk = savedChunk, savedMin
	}
}

func testTokenLogProbs(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	n, d, vocab := 7, 5, 23
	h, w := randVec(r, n*d, 1), randVec(r, vocab*d, 1)
	targets := []int32{0, 22, 5, -1, 9, 9, 1}
	for _, invTemp := range []float32{1, 1 / 0.7} {
		be := New(2)
		lp, ent, lse := make([]float32, n), make([]float32, n), make([]float32, n)
		be.TokenLogProbs(F32(lp), F32(ent), F32(lse), F32(h), F32(w), targets, n, d, vocab, invTemp)
		wlp, went := logprobs64(to64(h), to64(w), targets, n, d, vocab, float64(invTemp))
		checkClose(t, "logp", lp, wlp, fwdTol)
		checkClose(t, "entropy", ent, went, fwdTol)

		glp, gent := randVec(r, n, 1), randVec(r, n, 1)
		dh, dw := make([]float32, n*d), make([]float32, vocab*d)
		be.TokenLogProbsBackward(F32(dh), F32(dw), F32(glp), F32(gent), F32(h), F32(w), F32(lse), F32(ent), targets, n, d, vocab, invTemp)
		g64, ge64 := to64(glp), to64(gent)
		loss := func(h64, w64 []float64) float64 {
			a, b := logprobs64(h64, w64, targets, n, d, vocab, float64(invTemp))
			return dot64(g64, a) + dot64(ge64, b)
		}
		h64, w64 := to64(h), to64(w)
		checkClose(t, "dHidden", dh, fdGrad(func(v []float64) float64 { return loss(v, w64) }, h64), bwdTol)
		checkClose(t, "dW", dw, fdGrad(func(v []float64) float64 { return loss(h64, v) }, w64), bwdTol)

		// Without the entropy term (the path that may reuse the forward
		// pass's probabilities).
		be.TokenLogProbs(F32(lp), nil, F32(lse), F32(h), F32(w), targets, n, d, vocab, invTemp)
		clear(dh)
		clear(dw)
		be.TokenLogProbsBackward(F32(dh), F32(dw), F32(glp), nil, F32(h), F32(w), F32(lse), nil, targets, n, d, vocab, invTemp)
		lossLP := func(h64, w64 []float64) float64 {
			a, _ := logprobs64(h64, w64, targets, n, d, vocab, float64(invTemp))
			return dot64(g64, a)
		}
		checkClose(t, "dHidden (no entropy)", dh, fdGrad(func(v []float64) float64 { return lossLP(v, w64) }, h64), bwdTol)
		checkClose(t, "dW (no entropy)", dw, fdGrad(func(v []float64) float64 { return lossLP(h64, v) }, w64), bwdTol)
	}
}

// Backward reductions must not depend on the thread count: bit-exact resume
// and reproducible runs rely on it.
func TestReductionsIndependentOfThreads(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	rows, dim := 300, 40
	x, w, dy := randVec(r, rows*dim, 1), randVec(r, dim, 1), randVec(r, rows*dim, 1)
	run := func(threads int) ([]float32, []float32) {
		be := New(threads)
		out, rstd := make([]float32, rows*dim), make([]float32, rows)
		be.RMSNorm(F32(out), F32(rstd), F32(x), F32(w), rows, dim, 1e-6)
		dx, dw := make([]float32, rows*dim), make([]float32, dim)
		be.RMSNormBackward(F32(dx), F32(dw), F32(dy), F32(x), F32(w), F32(rstd), rows, dim)
		db := make([]float32, dim)
		be.BiasBackward(F32(db), F32(dy), rows, dim)
		return dw, db
	}
	dw1, db1 := run(1)
	dw2, db2 := run(2)
	New(2)
	if !slices.Equal(dw1, dw2) || !slices.Equal(db1, db2) {
		t.Fatal("weight-gradient reductions differ between 1 and 2 threads")
	}
}

// TestRMSNormHeads checks the per-head norm (Qwen3's q/k norm) on a strided
// layout: two heads at column offset 5 of rows 3·8+7 wide.
func TestRMSNormHeads(t *testing.T) {
	be := New(2)
	r := rand.New(rand.NewPCG(19, 20))
	rows, heads, dim, off := 6, 2, 8, 5
	stride := 3*dim + 7
	x, w, dy := randVec(r, rows*stride, 1), randVec(r, dim, 1), randVec(r, rows*stride, 1)
	// Gather the normalised chunks into a dense [rows*heads, dim] problem.
	gather := func(v []float64) []float64 {
		out := make([]float64, 0, rows*heads*dim)
		for i := 0; i < rows; i++ {
			out = append(out, v[i*stride+off:i*stride+off+heads*dim]...)
		}
		return out
	}
	out := make([]float32, len(x))
	rstd := make([]float32, rows*heads)
	be.RMSNormHeads(F32(out), F32(rstd), F32(x), stride, off, F32(w), rows, heads, dim, 1e-6)
	checkClose(t, "forward", []float32(gatherF32(out, rows, stride, off, heads*dim)), rmsnorm64(gather(to64(x)), to64(w), rows*heads, dim, 1e-6), fwdTol)

	dx, dw := make([]float32, len(x)), make([]float32, dim)
	be.RMSNormHeadsBackward(F32(dx), F32(dw), F32(dy), F32(x), F32(w), F32(rstd), stride, off, rows, heads, dim)
	dyG, xG, w64 := gather(to64(dy)), gather(to64(x)), to64(w)
	checkClose(t, "dx", gatherF32(dx, rows, stride, off, heads*dim), fdGrad(func(v []float64) float64 { return dot64(dyG, rmsnorm64(v, w64, rows*heads, dim, 1e-6)) }, xG), bwdTol)
	checkClose(t, "dw", dw, fdGrad(func(v []float64) float64 { return dot64(dyG, rmsnorm64(xG, v, rows*heads, dim, 1e-6)) }, w64), bwdTol)
	// Columns outside the heads are untouched.
	for i := 0; i < rows; i++ {
		for j := 0; j < stride; j++ {
			if (j < off || j >= off+heads*dim) && (out[i*stride+j] != 0 || dx[i*stride+j] != 0) {
				t.Fatalf("wrote outside the heads at row %d column %d", i, j)
			}
		}
	}
}

func gatherF32(v []float32, rows, stride, off, width int) []float32 {
	out := make([]float32, 0, rows*width)
	for i := 0; i < rows; i++ {
		out = append(out, v[i*stride+off:i*stride+off+width]...)
	}
	return out
}
