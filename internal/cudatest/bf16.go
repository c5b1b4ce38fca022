package cudatest

import (
	"fmt"
	"math"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cuda"
)

// bf16GemmTol is the documented accuracy of a GEMM on bf16-rounded
// operands against the fp32 product of the unrounded ones: each operand
// carries a relative rounding error of at most 2⁻⁹, so each product term is
// off by at most about 2⁻⁸ relative; over sums of random-sign terms the
// error relative to the largest output stays well below 1e-2.
const bf16GemmTol = 1e-2

// BF16 checks the bf16 building blocks on drv: conversion bit patterns,
// GEMMs on bf16 operands, and the AdamW step that refreshes a bf16 copy.
func BF16(t *testing.T, newDriver func() (cuda.Driver, error)) {
	drv, err := newDriver()
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	p := newPair(t, drv)

	t.Run("conversion", func(t *testing.T) { bf16Conversion(t, p) })

	t.Run("gemm", func(t *testing.T) { bf16Gemm(t, p) })

	t.Run("precision gemm", func(t *testing.T) { bf16PrecisionGemm(t, p) })
	t.Run("weight cache", func(t *testing.T) { bf16WeightCache(t, p) })
	t.Run("tf32 gemm", func(t *testing.T) { tf32Gemm(t, p) })

	t.Run("adamw", func(t *testing.T) { bf16AdamW(t, p) })
}

// bf16Conversion checks fp32→bf16 rounding bit for bit and the widening back.
func bf16Conversion(t *testing.T, p *pair) {
	vals := []float32{0, -0.0, 1, -1, 1.00390625, 1.0078125, 1.01171875, 3.1415927, 65504, 1e-40, -1e-42,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), math.MaxFloat32, math.SmallestNonzeroFloat32}
	vals = append(vals, p.rand(1000, 100)...)
	src := p.dev.Alloc(len(vals))
	p.dev.Upload(src, vals)
	h := p.dev.AllocBF16(len(vals))
	p.dev.ToBF16(h, src)
	bits := make([]uint16, len(vals))
	p.dev.DownloadBF16(bits, h)
	for i, v := range vals {
		if want := cuda.BF16Bits(v); bits[i] != want {
			t.Errorf("bf16(%g) = %#04x, want %#04x", v, bits[i], want)
		}
	}
	back := p.dev.Alloc(len(vals))
	p.dev.FromBF16(back, h)
	got := make([]float32, len(vals))
	p.dev.Download(got, back)
	for i := range vals {
		want := cuda.BF16Float(bits[i])
		if math.Float32bits(got[i]) != math.Float32bits(want) && !(math.IsNaN(float64(want)) && math.IsNaN(float64(got[i]))) {
			t.Errorf("widen %#04x = %g, want %g", bits[i], got[i], want)
		}
	}
}

// bf16Gemm checks the product on bf16 operands against the fp32 product of
// the rounded operands and, within bf16's tolerance, of the unrounded ones.
func bf16Gemm(t *testing.T, p *pair) {
	forGemmShapes([][3]int{{13, 7, 11}, {1, 1, 1}, {33, 65, 17}}, func(g gemmShape) {
		m, n, k, ta, tb := g.m, g.n, g.k, g.ta, g.tb
		lda, ldb, ldc, ar, br := g.lda, g.ldb, g.ldc, g.ar, g.br
		sh := [3]int{m, n, k}
		av, bv, cv := p.rand(ar*lda, 1), p.rand(br*ldb, 1), p.rand(m*ldc, 1)
		round := func(v []float32) []float32 {
			o := make([]float32, len(v))
			for i, x := range v {
				o[i] = cuda.BF16Float(cuda.BF16Bits(x))
			}
			return o
		}
		name := fmt.Sprintf("%v ta=%v tb=%v", sh, ta, tb)
		// The device product on bf16 operands.
		a32, b32 := p.dev.Alloc(len(av)), p.dev.Alloc(len(bv))
		p.dev.Upload(a32, av)
		p.dev.Upload(b32, bv)
		a16, b16 := p.dev.AllocBF16(len(av)), p.dev.AllocBF16(len(bv))
		p.dev.ToBF16(a16, a32)
		p.dev.ToBF16(b16, b32)
		_, dc := p.bufs(cv)
		p.dev.GemmBF16(ta, tb, m, n, k, 0.5, a16, lda, b16, ldb, 2, dc, ldc)
		// The CPU product of the rounded operands: the same up to
		// fp32 summation order.
		ra, _ := p.bufs(round(av))
		rb, _ := p.bufs(round(bv))
		rc, _ := p.bufs(cv)
		p.ref.Gemm(ta, tb, m, n, k, 0.5, ra, lda, rb, ldb, 2, rc, ldc)
		p.same("bf16 gemm vs fp32 on rounded operands "+name, rc, dc, fp32Tol)
		// The fp32 product of the unrounded operands, within the
		// documented bf16 tolerance.
		ua, _ := p.bufs(av)
		ub, _ := p.bufs(bv)
		uc, _ := p.bufs(cv)
		p.ref.Gemm(ta, tb, m, n, k, 0.5, ua, lda, ub, ldb, 2, uc, ldc)
		p.same("bf16 gemm vs fp32 "+name, uc, dc, bf16GemmTol)
	})
}

// bf16AdamW checks AdamW's fp32 master weights and the bf16 copy it
// refreshes.
func bf16AdamW(t *testing.T, p *pair) {
	n := 3001
	rp, dp := p.bufs(p.rand(n, 1))
	rg, dg := p.bufs(p.rand(n, 1))
	rm, dm := p.zeros(n)
	rv, dv := p.zeros(n)
	p16 := p.dev.AllocBF16(n)
	for step := 1; step <= 2; step++ {
		hp := kernels.AdamWParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Step: step}
		p.ref.AdamW(rp, rg, rm, rv, n, hp)
		p.dev.AdamWBF16(dp, p16, dg, dm, dv, n, hp)
	}
	p.same("adamw_bf16 master weights", rp, dp, fp32Tol)
	master := make([]float32, n)
	p.dev.Download(master, dp)
	bits := make([]uint16, n)
	p.dev.DownloadBF16(bits, p16)
	for i := range master {
		if bits[i] != cuda.BF16Bits(master[i]) {
			t.Fatalf("bf16 copy %d = %#04x, want %#04x", i, bits[i], cuda.BF16Bits(master[i]))
		}
	}
}

// roundBF16 rounds every value to bf16 (to nearest even), as the device
// does before a bf16 GEMM.
func roundBF16(v []float32) []float32 {
	o := make([]float32, len(v))
	for i, x := range v {
		o[i] = cuda.BF16Float(cuda.BF16Bits(x))
	}
	return o
}

// bf16PrecisionGemm checks Gemm on a backend in bf16 precision against a
// float64 product of the bf16-rounded operands. A product of two bf16
// values has at most 16 significant bits and is exact in fp32, so the only
// error is the fp32 summation: element by element, |got − want| ≤
// (k+2)·2⁻²⁴·(|α|·Σ|aᵢbᵢ| + |β·c|), the standard bound for k additions in
// any order plus the scaling.
func bf16PrecisionGemm(t *testing.T, p *pair) {
	if err := p.dev.SetPrecision(cuda.PrecisionBF16); err != nil {
		t.Skip(err)
	}
	defer p.dev.SetPrecision(cuda.PrecisionFP32)
	gemmOnRounded(t, p, roundBF16)
}

// tf32Gemm checks Gemm in fp32 precision with TF32 math the same way: a
// product of two TF32 values (11 significant bits each) is exact in fp32.
func tf32Gemm(t *testing.T, p *pair) {
	if err := p.dev.SetTF32(true); err != nil {
		t.Skip(err)
	}
	defer func() {
		if err := p.dev.SetTF32(false); err != nil {
			t.Error(err)
		}
	}()
	gemmOnRounded(t, p, func(v []float32) []float32 {
		o := make([]float32, len(v))
		for i, x := range v {
			o[i] = cuda.TF32Round(x)
		}
		return o
	})
}

// gemmOnRounded compares the device's Gemm with a float64 product of the
// operands as round rounds them, within the fp32 summation bound.
func gemmOnRounded(t *testing.T, p *pair, round func([]float32) []float32) {
	forGemmShapes([][3]int{{13, 7, 11}, {1, 1, 1}, {33, 65, 300}, {5, 9, 0}}, func(g gemmShape) {
		m, n, k, ta, tb := g.m, g.n, g.k, g.ta, g.tb
		lda, ldb, ldc, ar, br := g.lda, g.ldb, g.ldc, g.ar, g.br
		sh := [3]int{m, n, k}
		av, bv, cv := p.rand(ar*lda+5, 1), p.rand(br*ldb+3, 1), p.rand(m*ldc+2, 1)
		_, da := p.bufs(av)
		_, db := p.bufs(bv)
		_, dc := p.bufs(cv)
		const alpha, beta = 0.5, 2
		view := func(x kernels.Buf, off int) kernels.Buf { return p.dev.View(x, off, x.Len()-off) }
		p.dev.Gemm(ta, tb, m, n, k, alpha, view(da, 5), lda, view(db, 3), ldb, beta, view(dc, 2), ldc)
		got := make([]float32, len(cv))
		p.dev.Download(got, dc)
		ra, rb := round(av[5:]), round(bv[3:])
		at := func(i, l int) float64 {
			if ta {
				return float64(ra[l*lda+i])
			}
			return float64(ra[i*lda+l])
		}
		bt := func(l, j int) float64 {
			if tb {
				return float64(rb[j*ldb+l])
			}
			return float64(rb[l*ldb+j])
		}
		bad := 0
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var sum, abs float64
				for l := 0; l < k; l++ {
					sum += at(i, l) * bt(l, j)
					abs += math.Abs(at(i, l) * bt(l, j))
				}
				c := float64(cv[2+i*ldc+j])
				want := alpha*sum + beta*c
				bound := float64(k+2) * 0x1p-24 * (alpha*abs + math.Abs(beta*c))
				if d := math.Abs(float64(got[2+i*ldc+j]) - want); !(d <= bound) && bad < 3 {
					bad++
					t.Errorf("%v ta=%v tb=%v: C[%d,%d] = %.9g, float64 reference %.9g, off by %.3g > %.3g",
						sh, ta, tb, i, j, got[2+i*ldc+j], want, d, bound)
				}
			}
		}
	})
}

// bf16WeightCache checks that a cached bf16 copy of a weight is reused
// while the weight is unchanged and never after any write to it: a
// forward after each kind of write must see the new weights.
func bf16WeightCache(t *testing.T, p *pair) {
	be := p.dev
	if err := be.SetPrecision(cuda.PrecisionBF16); err != nil {
		t.Skip(err)
	}
	defer be.SetPrecision(cuda.PrecisionFP32)
	const rows, in, out = 5, 24, 16
	// The weights are a view into a bigger parameter buffer, as in a model.
	params := be.Alloc(3 + out*in + 7)
	be.Upload(params, p.rand(params.Len(), 1))
	w := be.View(params, 3, out*in)
	x := be.Alloc(rows * in)
	be.Upload(x, p.rand(rows*in, 1))
	be.Scale(x, 1) // written by a kernel, x is an activation: converted per call
	y := be.Alloc(rows * out)
	// check runs y = x·wᵀ on the device and compares it with the product of
	// the bf16-rounded host values of x and w.
	check := func(what string) {
		t.Helper()
		be.Gemm(false, true, rows, out, in, 1, x, in, w, in, 0, y, out)
		xv, wv, got := make([]float32, rows*in), make([]float32, out*in), make([]float32, rows*out)
		be.Download(xv, x)
		be.Download(wv, w)
		be.Download(got, y)
		xv, wv = roundBF16(xv), roundBF16(wv)
		for i := 0; i < rows; i++ {
			for j := 0; j < out; j++ {
				var sum, abs float64
				for l := 0; l < in; l++ {
					sum += float64(xv[i*in+l]) * float64(wv[j*in+l])
					abs += math.Abs(float64(xv[i*in+l]) * float64(wv[j*in+l]))
				}
				if d := math.Abs(float64(got[i*out+j]) - sum); !(d <= float64(in+2)*0x1p-24*abs) {
					t.Fatalf("after %s: y[%d,%d] = %.9g, want %.9g: a stale bf16 copy of the weights", what, i, j, got[i*out+j], sum)
				}
			}
		}
	}
	_, _, bytes0 := be.BF16CacheStats()
	check("upload")
	h0, c0, _ := be.BF16CacheStats()
	check("nothing")
	h1, c1, bytes := be.BF16CacheStats()
	if h1 != h0+1 || c1 != c0+1 {
		t.Errorf("an unchanged weight was not served from the cache: hits %d→%d, conversions %d→%d", h0, h1, c0, c1)
	}
	if bytes-bytes0 != 2*out*in {
		t.Errorf("the cache grew by %d bytes, want %d (one bf16 copy of w)", bytes-bytes0, 2*out*in)
	}
	grad, m, v, src := be.Alloc(out*in), be.Alloc(out*in), be.Alloc(out*in), be.Alloc(out*in)
	be.Upload(grad, p.rand(out*in, 1))
	be.Upload(src, p.rand(out*in, 1))
	step := 0
	for _, wr := range []struct {
		what  string
		write func()
	}{
		{"an AdamW step", func() {
			step++
			be.AdamW(w, grad, m, v, out*in, kernels.AdamWParams{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Step: step})
		}},
		{"an upload of one row", func() { be.Upload(be.View(params, 3+7*in, in), p.rand(in, 3)) }},
		{"a device copy", func() { be.Copy(w, src) }},
		{"a kernel writing it", func() { be.Scale(w, 0.5) }},
		{"zeroing it", func() { be.Zero(w) }},
		{"a GEMM writing it", func() { be.Gemm(false, false, 1, in, 1, 1, x, in, x, in, 0, be.View(params, 3, in), in) }},
	} {
		// Make w a parameter with a cached bf16 copy, then write it.
		be.Upload(params, p.rand(params.Len(), 1))
		check("an upload")
		h0, _, _ := be.BF16CacheStats()
		check("nothing")
		if h1, _, _ := be.BF16CacheStats(); h1 != h0+1 {
			t.Fatalf("before %s: an unchanged weight was not served from the cache", wr.what)
		}
		wr.write()
		check(wr.what)
	}
	for _, b := range []kernels.Buf{params, x, y, grad, m, v, src} {
		be.Free(b)
	}
	if _, _, bytes := be.BF16CacheStats(); bytes != bytes0 {
		t.Errorf("%d bytes of bf16 copies outlive the freed weights", bytes)
	}
}
