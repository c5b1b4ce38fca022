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

	t.Run("conversion", func(t *testing.T) {
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
	})

	t.Run("gemm", func(t *testing.T) {
		for _, sh := range [][3]int{{13, 7, 11}, {1, 1, 1}, {33, 65, 17}} {
			m, n, k := sh[0], sh[1], sh[2]
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					lda, ldb, ldc := k+3, n+2, n+5
					ar, br := m, k
					if ta {
						lda, ar = m+1, k
					}
					if tb {
						ldb, br = k+4, n
					}
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
				}
			}
		}
	})

	t.Run("adamw", func(t *testing.T) {
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
	})
}
