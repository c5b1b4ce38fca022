// Package cudatest compares the CUDA backend, on any Driver, with the CPU
// reference backend. The emulated driver runs it in kernels/cuda's tests;
// the real driver runs it in kernels/cuda/cudrv's tests on a GPU.
package cudatest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/kernels/cuda"
)

// Kernels runs every kernel comparison as a subtest, each on a fresh
// driver from newDriver.
func Kernels(t *testing.T, newDriver func() (cuda.Driver, error)) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, cuda.Driver)
	}{
		{"Gemm", gemmMatchesCPU},
		{"Elementwise", elementwiseMatchesCPU},
		{"RMSNorm", rMSNormMatchesCPU},
		{"RoPE", roPEMatchesCPU},
		{"Embed", embedMatchesCPU},
		{"Attention", attentionMatchesCPU},
		{"Decode", decodeMatchesCPU},
		{"TokenLogProbs", tokenLogProbsMatchesCPU},
		{"Optim", optimMatchesCPU},
		{"PolicyLoss", policyLossMatchesCPU},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drv, err := newDriver()
			if err != nil {
				t.Fatal(err)
			}
			defer drv.Close()
			tc.fn(t, drv)
		})
	}
}

// Every operation of the CUDA backend, run on the emulated driver, is
// compared with the CPU reference backend on the same random inputs. The
// tolerance is a relative one: max|got − want| / max|want| ≤ fp32Tol.
const fp32Tol = 1e-5

// testSeed is fixed so CI is reproducible; RLTRAIN_SEED draws other inputs
// (scripts/gpu-ci.sh sets a fresh one).
func testSeed(t *testing.T) uint64 {
	if s := os.Getenv("RLTRAIN_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RLTRAIN_SEED=%q: %v", s, err)
		}
		t.Logf("seed %d", v)
		return v
	}
	return 1
}

type pair struct {
	t   *testing.T
	ref *cpu.Backend
	dev *cuda.Backend
	r   *rand.Rand
}

func newPair(t *testing.T, drv cuda.Driver) *pair {
	t.Helper()
	return &pair{t: t, ref: cpu.New(2), dev: cuda.New(drv), r: rand.New(rand.NewPCG(testSeed(t), 7))}
}

func (p *pair) rand(n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(p.r.NormFloat64() * scale)
	}
	return v
}

// bufs uploads v to both backends.
func (p *pair) bufs(v []float32) (kernels.Buf, kernels.Buf) {
	a := p.ref.Alloc(len(v))
	p.ref.Upload(a, v)
	b := p.dev.Alloc(len(v))
	p.dev.Upload(b, v)
	return a, b
}

func (p *pair) zeros(n int) (kernels.Buf, kernels.Buf) { return p.bufs(make([]float32, n)) }

// same checks that the two buffers hold the same values within tol.
func (p *pair) same(name string, ref, dev kernels.Buf, tol float64) {
	p.t.Helper()
	a := make([]float32, ref.Len())
	p.ref.Download(a, ref)
	b := make([]float32, dev.Len())
	p.dev.Download(b, dev)
	if e := relDiff(b, a); !(e <= tol) {
		p.t.Errorf("%s: relative difference %.3g > %.1g", name, e, tol)
	}
}

// relDiff is max|got−want| / max|want| (NaN anywhere fails).
func relDiff(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) != math.IsNaN(w) {
			return math.Inf(1)
		}
		num = max(num, math.Abs(g-w))
		den = max(den, math.Abs(w))
	}
	if den == 0 {
		return num
	}
	return num / den
}

// gemmShape is one GEMM case: C[m×n] = op(A)·op(B) with k inner, each
// operand transposed or not, leading dimensions padded past the rows (ar
// and br are the stored rows of A and B).
type gemmShape struct {
	m, n, k, lda, ldb, ldc, ar, br int
	ta, tb                         bool
}

// forGemmShapes runs check for each shape [m, n, k] under the four
// transposition combinations.
func forGemmShapes(shapes [][3]int, check func(gemmShape)) {
	for _, sh := range shapes {
		m, n, k := sh[0], sh[1], sh[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				g := gemmShape{m: m, n: n, k: k, lda: k + 3, ldb: n + 2, ldc: n + 5, ar: m, br: k, ta: ta, tb: tb}
				if ta {
					g.lda, g.ar = m+1, k
				}
				if tb {
					g.ldb, g.br = k+4, n
				}
				check(g)
			}
		}
	}
}

func gemmMatchesCPU(t *testing.T, drv cuda.Driver) {
	p := newPair(t, drv)
	forGemmShapes([][3]int{{13, 7, 11}, {1, 1, 1}, {33, 65, 17}, {5, 9, 0}}, func(g gemmShape) {
		m, n, k, ta, tb := g.m, g.n, g.k, g.ta, g.tb
		lda, ldb, ldc, ar, br := g.lda, g.ldb, g.ldc, g.ar, g.br
		sh := [3]int{m, n, k}
		// Operands start at an offset inside bigger buffers.
		ra, da := p.bufs(p.rand(ar*lda+5, 1))
		rb, db := p.bufs(p.rand(br*ldb+3, 1))
		rc, dc := p.bufs(p.rand(m*ldc+2, 1))
		view := func(be kernels.Backend, x kernels.Buf, off int) kernels.Buf { return be.View(x, off, x.Len()-off) }
		p.ref.Gemm(ta, tb, m, n, k, 0.5, view(p.ref, ra, 5), lda, view(p.ref, rb, 3), ldb, 2, view(p.ref, rc, 2), ldc)
		p.dev.Gemm(ta, tb, m, n, k, 0.5, view(p.dev, da, 5), lda, view(p.dev, db, 3), ldb, 2, view(p.dev, dc, 2), ldc)
		p.same(fmt.Sprintf("gemm %v ta=%v tb=%v", sh, ta, tb), rc, dc, fp32Tol)
	})
}

func elementwiseMatchesCPU(t *testing.T, drv cuda.Driver) {
	p := newPair(t, drv)
	for _, sh := range [][2]int{{1, 1}, {7, 33}, {300, 97}} {
		rows, n := sh[0], sh[1]
		name := fmt.Sprint(sh)
		rx, dx := p.bufs(p.rand(rows*n, 1))
		rb, db := p.bufs(p.rand(n, 1))
		p.ref.AddBias(rx, rb, rows, n)
		p.dev.AddBias(dx, db, rows, n)
		p.same("add_bias "+name, rx, dx, fp32Tol)

		rg, dg := p.bufs(p.rand(n, 1))
		p.ref.BiasBackward(rg, rx, rows, n)
		p.dev.BiasBackward(dg, dx, rows, n)
		p.same("bias_backward "+name, rg, dg, fp32Tol)

		ry, dy := p.bufs(p.rand(rows*n, 1))
		rs, ds := p.zeros(rows * n)
		p.ref.Add(rs, rx, ry)
		p.dev.Add(ds, dx, dy)
		p.same("add "+name, rs, ds, fp32Tol)
		p.ref.Add(rs, rs, ry)
		p.dev.Add(ds, ds, dy)
		p.same("add aliased "+name, rs, ds, fp32Tol)

		p.ref.Scale(rs, -0.37)
		p.dev.Scale(ds, -0.37)
		p.same("scale "+name, rs, ds, fp32Tol)

		// Copy2D of the last n/2 columns into a wider matrix.
		w := n / 2
		rd, dd := p.bufs(p.rand(rows*(n+3), 1))
		p.ref.Copy2D(rd, n+3, p.ref.View(rx, n-w, rows*n-(n-w)), n, rows, w)
		p.dev.Copy2D(dd, n+3, p.dev.View(dx, n-w, rows*n-(n-w)), n, rows, w)
		p.same("copy2d "+name, rd, dd, 0)

		if got := p.dev.SumSquares(dx); math.Abs(got-p.ref.SumSquares(rx)) > 1e-9*math.Abs(got) {
			t.Errorf("sum_squares %s: %v, want %v", name, got, p.ref.SumSquares(rx))
		}

		rgu, dgu := p.bufs(p.rand(rows*2*n, 2))
		ro, do := p.zeros(rows * n)
		p.ref.SwiGLU(ro, rgu, rows, n)
		p.dev.SwiGLU(do, dgu, rows, n)
		p.same("swiglu "+name, ro, do, fp32Tol)
		rdo, ddo := p.bufs(p.rand(rows*n, 1))
		rdg, ddg := p.bufs(p.rand(rows*2*n, 1)) // overwritten
		p.ref.SwiGLUBackward(rdg, rdo, rgu, rows, n)
		p.dev.SwiGLUBackward(ddg, ddo, dgu, rows, n)
		p.same("swiglu_backward "+name, rdg, ddg, fp32Tol)
	}
}

func rMSNormMatchesCPU(t *testing.T, drv cuda.Driver) {
	p := newPair(t, drv)
	for _, sh := range []struct{ rows, heads, dim, stride, off int }{
		{1, 1, 1, 1, 0}, {5, 1, 67, 67, 0}, {9, 3, 16, 70, 11}, {2, 2, 300, 640, 33}, {130, 2, 16, 40, 3},
	} {
		name := fmt.Sprintf("%+v", sh)
		rx, dx := p.bufs(p.rand(sh.rows*sh.stride, 1))
		rw, dw := p.bufs(p.rand(sh.dim, 1))
		ro, do := p.bufs(p.rand(sh.rows*sh.stride, 1))
		rr, dr := p.zeros(sh.rows * sh.heads)
		p.ref.RMSNormHeads(ro, rr, rx, sh.stride, sh.off, rw, sh.rows, sh.heads, sh.dim, 1e-6)
		p.dev.RMSNormHeads(do, dr, dx, sh.stride, sh.off, dw, sh.rows, sh.heads, sh.dim, 1e-6)
		p.same("rmsnorm "+name, ro, do, fp32Tol)
		p.same("rmsnorm rstd "+name, rr, dr, fp32Tol)
		rdy, ddy := p.bufs(p.rand(sh.rows*sh.stride, 1))
		rdx, ddx := p.bufs(p.rand(sh.rows*sh.stride, 1))
		rdw, ddw := p.bufs(p.rand(sh.dim, 1))
		p.ref.RMSNormHeadsBackward(rdx, rdw, rdy, rx, rw, rr, sh.stride, sh.off, sh.rows, sh.heads, sh.dim)
		p.dev.RMSNormHeadsBackward(ddx, ddw, ddy, dx, dw, dr, sh.stride, sh.off, sh.rows, sh.heads, sh.dim)
		p.same("rmsnorm dx "+name, rdx, ddx, fp32Tol)
		p.same("rmsnorm dw "+name, rdw, ddw, fp32Tol)
		if sh.heads == 1 && sh.off == 0 && sh.stride == sh.dim {
			p.ref.RMSNorm(ro, rr, rx, rw, sh.rows, sh.dim, 1e-5)
			p.dev.RMSNorm(do, dr, dx, dw, sh.rows, sh.dim, 1e-5)
			p.same("rmsnorm plain "+name, ro, do, fp32Tol)
		}
	}
}

func roPEMatchesCPU(t *testing.T, drv cuda.Driver) {
	p := newPair(t, drv)
	for _, sh := range []struct{ rows, heads, hd, stride int }{{1, 1, 2, 2}, {7, 3, 10, 50}, {40, 4, 64, 384}} {
		half := sh.hd / 2
		ang := make([]float32, sh.rows*half)
		cs, sn := make([]float32, len(ang)), make([]float32, len(ang))
		for i := range ang {
			a := float64(i/half) * math.Pow(10000, -float64(i%half)/float64(half))
			cs[i], sn[i] = float32(math.Cos(a)), float32(math.Sin(a))
		}
		rc, dc := p.bufs(cs)
		rsn, dsn := p.bufs(sn)
		rx, dx := p.bufs(p.rand(sh.rows*sh.stride, 1))
		for _, inv := range []bool{false, true} {
			p.ref.RoPE(rx, sh.stride, rc, rsn, sh.rows, sh.heads, sh.hd, inv)
			p.dev.RoPE(dx, sh.stride, dc, dsn, sh.rows, sh.heads, sh.hd, inv)
			p.same(fmt.Sprintf("rope %+v inverse=%v", sh, inv), rx, dx, fp32Tol)
		}
	}
}

func embedMatchesCPU(t *testing.T, drv cuda.Driver) {
	p := newPair(t, drv)
	for _, sh := range [][3]int{{1, 1, 1}, {50, 17, 33}, {200, 130, 8}} {
		vocab, n, dim := sh[0], sh[1], sh[2]
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(p.r.IntN(min(vocab, 7))) // repeats
		}
		rt, dt := p.bufs(p.rand(vocab*dim, 1))
		ro, do := p.zeros(n * dim)
		p.ref.Embed(ro, rt, ids, dim)
		p.dev.Embed(do, dt, ids, dim)
		p.same(fmt.Sprint("embed ", sh), ro, do, 0)
		rg, dg := p.bufs(p.rand(n*dim, 1))
		p.ref.EmbedBackward(rt, rg, ids, dim)
		p.dev.EmbedBackward(dt, dg, ids, dim)
		// Same sums in the same order as the CPU: bit-identical.
		p.same(fmt.Sprint("embed_backward ", sh), rt, dt, 0)
	}
}

func attentionMatchesCPU(t *testing.T, drv cuda.Driver) {
	p := newPair(t, drv)
	shapes := []kernels.AttnShape{
		{Batch: 1, SeqLen: 1, Heads: 2, KVHeads: 1, HeadDim: 8},
		{Batch: 2, SeqLen: 37, Heads: 4, KVHeads: 2, HeadDim: 16, Lens: []int{37, 20}},
		{Batch: 1, SeqLen: 70, Heads: 3, KVHeads: 3, HeadDim: 12},
		{Batch: 2, SeqLen: 67, Heads: 2, KVHeads: 1, HeadDim: 96, Lens: []int{1, 66}},
		// Head dimensions that are not multiples of 32, above 128 (16-key
		// tiles split over half-lanes) up to the largest, GQA ratios up to
		// 8, lengths that are not multiples of the tiles, padding.
		{Batch: 2, SeqLen: 45, Heads: 6, KVHeads: 2, HeadDim: 40, Lens: []int{45, 17}},
		{Batch: 1, SeqLen: 1, Heads: 8, KVHeads: 1, HeadDim: 256},
		{Batch: 1, SeqLen: 35, Heads: 4, KVHeads: 4, HeadDim: 130},
		{Batch: 2, SeqLen: 21, Heads: 8, KVHeads: 1, HeadDim: 200, Lens: []int{3, 20}},
		{Batch: 1, SeqLen: 50, Heads: 5, KVHeads: 1, HeadDim: 33},
		{Batch: 1, SeqLen: 19, Heads: 2, KVHeads: 2, HeadDim: 256},
		{Batch: 2, SeqLen: 9, Heads: 4, KVHeads: 2, HeadDim: 129, Lens: []int{9, 0}}, // odd halves; an empty sequence
	}
	for _, s := range shapes {
		s.Scale = float32(1 / math.Sqrt(float64(s.HeadDim)))
		name := fmt.Sprintf("B%d T%d H%d/%d hd%d lens%v", s.Batch, s.SeqLen, s.Heads, s.KVHeads, s.HeadDim, s.Lens)
		rows := s.Batch * s.SeqLen
		width := (s.Heads + 2*s.KVHeads) * s.HeadDim
		rq, dq := p.bufs(p.rand(rows*width, 1))
		ro, do := p.bufs(p.rand(rows*s.Heads*s.HeadDim, 1))
		rl, dl := p.bufs(p.rand(s.Batch*s.Heads*s.SeqLen, 1))
		p.ref.Attention(ro, rl, rq, s)
		p.dev.Attention(do, dl, dq, s)
		p.same("attention out "+name, ro, do, fp32Tol)
		p.same("attention lse "+name, rl, dl, fp32Tol)
		rdy, ddy := p.bufs(p.rand(rows*s.Heads*s.HeadDim, 1))
		rdq, ddq := p.bufs(p.rand(rows*width, 1)) // overwritten
		p.ref.AttentionBackward(rdq, rdy, rq, ro, rl, s)
		p.dev.AttentionBackward(ddq, ddy, dq, do, dl, s)
		p.same("attention dqkv "+name, rdq, ddq, fp32Tol)
		// Deterministic: a second backward pass gives the same bits (no
		// atomics; trivially so under the emulator, checked on GPUs).
		again := p.dev.Alloc(rows * width)
		p.dev.AttentionBackward(again, ddy, dq, do, dl, s)
		first, second := make([]float32, rows*width), make([]float32, rows*width)
		p.dev.Download(first, ddq)
		p.dev.Download(second, again)
		for i := range first {
			if math.Float32bits(first[i]) != math.Float32bits(second[i]) {
				t.Errorf("attention backward %s is not deterministic: dqkv[%d] = %v, then %v", name, i, first[i], second[i])
				break
			}
		}
	}
}

func decodeMatchesCPU(t *testing.T, drv cuda.Driver) {
	p := newPair(t, drv)
	// GQA ratios 1..8, head dimensions below, at and above 128 and not
	// multiples of 32; the first also checks CacheWrite.
	// Contexts of more than two tiles are split into key ranges when there
	// are few sequences (above 128, 16-key tiles split lens of 50 too).
	short, long := []int{1, 33, 50, 0}, []int{1, 150, 97, 0}
	for i, sh := range [][3]int{{4, 2, 24}, {3, 3, 33}, {8, 1, 130}, {14, 2, 64}, {16, 2, 256}, {5, 1, 128}} {
		decodeShapeMatchesCPU(t, p, sh[0], sh[1], sh[2], short, i == 0)
	}
	decodeShapeMatchesCPU(t, p, 8, 2, 64, long, false)
	decodeShapeMatchesCPU(t, p, 2, 1, 40, long, false)
}

func decodeShapeMatchesCPU(t *testing.T, p *pair, heads, kvHeads, hd int, lens []int, checkCache bool) {
	name := fmt.Sprintf("H%d/%d hd%d lens%v", heads, kvHeads, hd, lens)
	width := kvHeads * hd
	// Every slot distinct: a pool row written twice by one CacheWrite would
	// race on a GPU.
	total := 0
	for _, n := range lens {
		total += n
	}
	poolRows := max(64, total)
	rk, dk := p.zeros(poolRows * width)
	rv, dv := p.zeros(poolRows * width)
	slots := make([][]int32, len(lens))
	perm := p.r.Perm(poolRows)
	next := 0
	for i, n := range lens {
		for j := 0; j < n; j++ {
			slots[i] = append(slots[i], int32(perm[next%poolRows]))
			next++
		}
	}
	// Fill the cache through CacheWrite from fused rows (keys at column
	// heads*hd, values after them).
	qStride := (heads + 2*kvHeads) * hd
	for i, n := range lens {
		rsrc, dsrc := p.bufs(p.rand(n*qStride+1, 1))
		p.ref.CacheWrite(rk, width, rsrc, qStride, heads*hd, slots[i])
		p.dev.CacheWrite(dk, width, dsrc, qStride, heads*hd, slots[i])
		p.ref.CacheWrite(rv, width, rsrc, qStride, (heads+kvHeads)*hd, slots[i])
		p.dev.CacheWrite(dv, width, dsrc, qStride, (heads+kvHeads)*hd, slots[i])
	}
	if checkCache {
		p.same("cache_write k", rk, dk, 0)
		p.same("cache_write v", rv, dv, 0)
	}
	rq, dq := p.bufs(p.rand(len(lens)*qStride, 1))
	ro, do := p.bufs(p.rand(len(lens)*heads*hd, 1))
	scale := float32(1 / math.Sqrt(float64(hd)))
	p.ref.AttentionDecode(ro, rq, qStride, rk, rv, slots, lens, heads, kvHeads, hd, scale)
	p.dev.AttentionDecode(do, dq, qStride, dk, dv, slots, lens, heads, kvHeads, hd, scale)
	p.same("attention decode "+name, ro, do, fp32Tol)
	// The next layer's call has the same slots (the backend may reuse its
	// device copy of them); then other slots of the same lengths (it must
	// not).
	p.dev.AttentionDecode(do, dq, qStride, dk, dv, slots, lens, heads, kvHeads, hd, scale)
	p.same("attention decode, same slots again "+name, ro, do, fp32Tol)
	moved := make([][]int32, len(slots))
	for i, sl := range slots {
		for _, r := range sl {
			moved[i] = append(moved[i], int32((int(r)+1)%poolRows))
		}
	}
	p.ref.AttentionDecode(ro, rq, qStride, rk, rv, moved, lens, heads, kvHeads, hd, scale)
	p.dev.AttentionDecode(do, dq, qStride, dk, dv, moved, lens, heads, kvHeads, hd, scale)
	p.same("attention decode, other slots "+name, ro, do, fp32Tol)
}

func tokenLogProbsMatchesCPU(t *testing.T, drv cuda.Driver) {
	p := newPair(t, drv)
	for _, sh := range []struct {
		n, d, vocab int
		invTemp     float32
		entropy     bool
	}{
		{1, 1, 2, 1, true},
		{6, 24, 1000, 1 / 0.7, true},
		{5, 13, 333, 1, false},
		{3, 8, 151936, 1, true},
	} {
		name := fmt.Sprintf("%+v", sh)
		targets := make([]int32, sh.n)
		for i := range targets {
			targets[i] = int32(p.r.IntN(sh.vocab))
		}
		if sh.n > 2 {
			targets[1] = -1
		}
		rh, dh := p.bufs(p.rand(sh.n*sh.d, 1))
		rw, dw := p.bufs(p.rand(sh.vocab*sh.d, 0.5))
		rlp, dlp := p.zeros(sh.n)
		rls, dls := p.zeros(sh.n)
		var rent, dent kernels.Buf
		if sh.entropy {
			rent, dent = p.zeros(sh.n)
		}
		p.ref.TokenLogProbs(rlp, rent, rls, rh, rw, targets, sh.n, sh.d, sh.vocab, sh.invTemp)
		p.dev.TokenLogProbs(dlp, dent, dls, dh, dw, targets, sh.n, sh.d, sh.vocab, sh.invTemp)
		p.same("logp "+name, rlp, dlp, fp32Tol)
		p.same("lse "+name, rls, dls, fp32Tol)
		var rge, dge kernels.Buf
		if sh.entropy {
			p.same("entropy "+name, rent, dent, fp32Tol)
			rge, dge = p.bufs(p.rand(sh.n, 1))
		}
		rg, dg := p.bufs(p.rand(sh.n, 1))
		rdh, ddh := p.bufs(p.rand(sh.n*sh.d, 1))
		rdw, ddw := p.bufs(p.rand(sh.vocab*sh.d, 1))
		p.ref.TokenLogProbsBackward(rdh, rdw, rg, rge, rh, rw, rls, rent, targets, sh.n, sh.d, sh.vocab, sh.invTemp)
		p.dev.TokenLogProbsBackward(ddh, ddw, dg, dge, dh, dw, dls, dent, targets, sh.n, sh.d, sh.vocab, sh.invTemp)
		p.same("dhidden "+name, rdh, ddh, fp32Tol)
		p.same("dW "+name, rdw, ddw, fp32Tol)
	}
}

func optimMatchesCPU(t *testing.T, drv cuda.Driver) {
	p := newPair(t, drv)
	for _, n := range []int{1, 1000, 5000} {
		rp, dp := p.bufs(p.rand(n, 1))
		rg, dg := p.bufs(p.rand(n, 1))
		rm, dm := p.zeros(n)
		rv, dv := p.zeros(n)
		for step := 1; step <= 3; step++ {
			hp := kernels.AdamWParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Step: step}
			p.ref.AdamW(rp, rg, rm, rv, n, hp)
			p.dev.AdamW(dp, dg, dm, dv, n, hp)
		}
		p.same(fmt.Sprint("adamw param ", n), rp, dp, fp32Tol)
		p.same(fmt.Sprint("adamw m ", n), rm, dm, fp32Tol)
		p.same(fmt.Sprint("adamw v ", n), rv, dv, fp32Tol)
	}

	offsets := []int{0, 3, 3, 40, 41, 300}
	ntok := offsets[len(offsets)-1]
	mask := make([]float32, ntok)
	for i := range mask {
		if p.r.IntN(4) != 0 {
			mask[i] = 1
		}
	}
	rx, dx := p.bufs(p.rand(ntok, 1))
	rmask, dmask := p.bufs(mask)
	want, got := make([]float64, len(offsets)-1), make([]float64, len(offsets)-1)
	p.ref.SegmentSums(want, rx, rmask, offsets)
	p.dev.SegmentSums(got, dx, dmask, offsets)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9*max(1, math.Abs(want[i])) {
			t.Errorf("segment_sums[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	coef := p.rand(len(offsets)-1, 1)
	rdst, ddst := p.bufs(p.rand(ntok+4, 1))
	p.ref.SegmentBroadcast(rdst, rmask, offsets, coef)
	p.dev.SegmentBroadcast(ddst, dmask, offsets, coef)
	p.same("segment_broadcast", rdst, ddst, 0)
}

func policyLossMatchesCPU(t *testing.T, drv cuda.Driver) {
	p := newPair(t, drv)
	offsets := []int{0, 5, 5, 37, 38, 130, 200}
	nseq := len(offsets) - 1
	ntok := offsets[nseq]
	mask := make([]float32, ntok)
	for i := range mask {
		if p.r.IntN(5) != 0 {
			mask[i] = 1
		}
	}
	logp := p.rand(ntok, 1)
	old := make([]float32, ntok)
	for i := range old {
		old[i] = logp[i] + float32(p.r.NormFloat64()*0.3)
	}
	old[7] = logp[7] + 30 // beyond the log-ratio bound
	cases := []kernels.PolicyLossParams{
		{EpsLow: 0.2, EpsHigh: 0.28, ClipRatioC: 3, Agg: kernels.AggTokenMean},
		{EpsLow: 0.2, EpsHigh: 0.2, Beta: 0.1, KL: kernels.KLK3, Agg: kernels.AggSeqMeanTokenMean, EntropyCoef: 0.01},
		{EpsLow: 0.1, EpsHigh: 0.3, Beta: 0.05, KL: kernels.KLK2, Agg: kernels.AggSeqMeanTokenSum, TISCap: 2, MaskTruncated: true},
		{EpsLow: 0.2, EpsHigh: 0.2, Beta: 1, KL: kernels.KLK1, Agg: kernels.AggSeqMeanTokenSumNorm, EntropyCoef: 0.1},
		{EpsLow: 0.1, EpsHigh: 0.2, ClipRatioC: 3, Agg: kernels.AggSeqMeanTokenMean, IS: kernels.ISSequence, TISCap: 2},
		{EpsLow: 0.1, EpsHigh: 0.2, ClipRatioC: 3, Beta: 0.1, KL: kernels.KLK3, Agg: kernels.AggTokenMean, IS: kernels.ISSequenceToken},
	}
	// Per-sequence mean log-ratios for the sequence levels: inside the clip
	// range, outside it on either side, and beyond the log-ratio bound.
	seqLR := []float32{0.05, -0.5, 0.4, 25, -0.01, 0.3}
	for ci, prm := range cases {
		prm.Norm = kernels.Normalizers{Tokens: 123, Seqs: 4, MaxLen: 92}
		mk := func(be kernels.Backend) (*kernels.PolicyLossArgs, kernels.Buf, kernels.Buf) {
			r := rand.New(rand.NewPCG(uint64(ci), 3))
			buf := func(v []float32) kernels.Buf { b := be.Alloc(len(v)); be.Upload(b, v); return b }
			rnd := func(scale float64) []float32 {
				v := make([]float32, ntok)
				for i := range v {
					v[i] = float32(r.NormFloat64() * scale)
				}
				return v
			}
			a := &kernels.PolicyLossArgs{
				Logp: buf(logp), OldLogp: buf(old), RolloutLogp: buf(rnd(1)), RefLogp: buf(rnd(1)), Adv: buf(rnd(1)),
				Mask: buf(mask), Entropy: buf(rnd(1)), DLogp: be.Alloc(ntok), DEntropy: be.Alloc(ntok),
				Offsets: offsets, Truncated: []bool{false, false, true, false, false, false}, P: prm,
			}
			if prm.IS != kernels.ISToken {
				a.SeqLogRatio = buf(seqLR)
			}
			return a, a.DLogp, a.DEntropy
		}
		{
			ra, rdl, rde := mk(p.ref)
			da, ddl, dde := mk(p.dev)
			want := p.ref.PolicyLoss(ra)
			got := p.dev.PolicyLoss(da)
			name := fmt.Sprintf("case %d", ci)
			p.same("dlogp "+name, rdl, ddl, fp32Tol)
			p.same("dentropy "+name, rde, dde, fp32Tol)
			if got.Seqs != want.Seqs {
				t.Errorf("%s: seqs %d, want %d", name, got.Seqs, want.Seqs)
			}
			g := []float64{got.Loss, got.PGLoss, got.KLLoss, got.EntropyLoss, got.Tokens, got.ClipLow, got.ClipHigh, got.DualClip, got.KL, got.PPOKL, got.Entropy, got.Ratio, got.TISCapped}
			w := []float64{want.Loss, want.PGLoss, want.KLLoss, want.EntropyLoss, want.Tokens, want.ClipLow, want.ClipHigh, want.DualClip, want.KL, want.PPOKL, want.Entropy, want.Ratio, want.TISCapped}
			for k := range g {
				if math.Abs(g[k]-w[k]) > 1e-9*max(1, math.Abs(w[k])) {
					t.Errorf("%s: stat %d = %v, want %v", name, k, g[k], w[k])
				}
			}
		}
	}
}
