//go:build goexperiment.simd && amd64

package cpu

import (
	"simd/archsimd"

	"github.com/rltrain/rltrain/internal/simdexp"
	"github.com/rltrain/rltrain/kernels"
)

var hasAVX512 = archsimd.X86.AVX512()

// simdEnabled reports whether the AVX-512 kernels are in use.
func simdEnabled() bool { return hasAVX512 }

// expShift writes dst[i] = e^(src[i]−shift) and returns Σ dst, sixteen
// lanes at a time with AVX-512: the same range reduction and polynomial as
// expf, with fused multiply-adds. Blocks holding an argument outside
// [−87.3, 88] (or a NaN) are redone by the scalar code, which handles the
// edges; lane sums are flushed to float64 every 1024 elements.
func expShift(dst, src []float32, shift float32) float64 {
	if !hasAVX512 || len(src) < 16 {
		return expShiftScalar(dst, src, shift)
	}
	dst = dst[:len(src)]
	sh := archsimd.BroadcastFloat32x16(shift)
	var total float64
	acc := archsimd.BroadcastFloat32x16(0)
	var lanes [16]float32
	flush := func() {
		acc.Store(&lanes)
		for _, v := range lanes {
			total += float64(v)
		}
		acc = archsimd.BroadcastFloat32x16(0)
	}
	i := 0
	for ; i+16 <= len(src); i += 16 {
		e, ok := exp16(archsimd.LoadFloat32x16Slice(src[i:]).Sub(sh))
		if !ok {
			total += expShiftScalar(dst[i:i+16], src[i:i+16], shift)
			continue
		}
		e.StoreSlice(dst[i:])
		acc = acc.Add(e)
		if i&1023 == 1008 {
			flush()
		}
	}
	flush()
	if i < len(src) {
		total += expShiftScalar(dst[i:], src[i:], shift)
	}
	return total
}

var vOne = archsimd.BroadcastFloat32x16(1)

// exp16 is e^x on sixteen lanes; ok is false when a lane is outside
// [−87.3, 88] or NaN, and the caller must use the scalar code.
func exp16(x archsimd.Float32x16) (archsimd.Float32x16, bool) {
	if !simdexp.InRange(x) {
		return x, false
	}
	return simdexp.Exp16(x), true
}

// swigluRow computes out = silu(g)·u, sixteen lanes at a time.
func swigluRow(out, g, u []float32) {
	if !hasAVX512 {
		swigluRowScalar(out, g, u)
		return
	}
	zero := archsimd.BroadcastFloat32x16(0)
	i := 0
	for ; i+16 <= len(g); i += 16 {
		gv := archsimd.LoadFloat32x16Slice(g[i:])
		e, ok := exp16(zero.Sub(gv))
		if !ok {
			swigluRowScalar(out[i:i+16], g[i:i+16], u[i:i+16])
			continue
		}
		gv.Mul(archsimd.LoadFloat32x16Slice(u[i:])).Div(vOne.Add(e)).StoreSlice(out[i:])
	}
	swigluRowScalar(out[i:], g[i:], u[i:])
}

// swigluBackwardRow computes du = d·silu(g), dg = d·u·σ·(1 + g·(1 − σ)).
func swigluBackwardRow(dg, du, d, g, u []float32) {
	if !hasAVX512 {
		swigluBackwardRowScalar(dg, du, d, g, u)
		return
	}
	zero := archsimd.BroadcastFloat32x16(0)
	i := 0
	for ; i+16 <= len(g); i += 16 {
		gv := archsimd.LoadFloat32x16Slice(g[i:])
		e, ok := exp16(zero.Sub(gv))
		if !ok {
			swigluBackwardRowScalar(dg[i:i+16], du[i:i+16], d[i:i+16], g[i:i+16], u[i:i+16])
			continue
		}
		s := vOne.Div(vOne.Add(e))
		dv := archsimd.LoadFloat32x16Slice(d[i:])
		uv := archsimd.LoadFloat32x16Slice(u[i:])
		dv.Mul(gv).Mul(s).StoreSlice(du[i:])
		// 1 + g·(1 − σ)
		t := gv.MulAdd(vOne.Sub(s), vOne)
		dv.Mul(uv).Mul(s).Mul(t).StoreSlice(dg[i:])
	}
	swigluBackwardRowScalar(dg[i:], du[i:], d[i:], g[i:], u[i:])
}

// dot is Σ a·b, sixteen lanes at a time.
func dot(a, b []float32) float32 {
	if !hasAVX512 || len(a) < 16 {
		return dotScalar(a, b)
	}
	b = b[:len(a)]
	acc := archsimd.BroadcastFloat32x16(0)
	i := 0
	for ; i+16 <= len(a); i += 16 {
		acc = archsimd.LoadFloat32x16Slice(a[i:]).MulAdd(archsimd.LoadFloat32x16Slice(b[i:]), acc)
	}
	var lanes [16]float32
	acc.Store(&lanes)
	var s float32
	for _, v := range lanes {
		s += v
	}
	return s + dotScalar(a[i:], b[i:])
}

// axpy computes y += a·x, sixteen lanes at a time.
func axpy(a float32, x, y []float32) {
	if !hasAVX512 || len(x) < 16 {
		axpyScalar(a, x, y)
		return
	}
	y = y[:len(x)]
	av := archsimd.BroadcastFloat32x16(a)
	i := 0
	for ; i+16 <= len(x); i += 16 {
		archsimd.LoadFloat32x16Slice(x[i:]).MulAdd(av, archsimd.LoadFloat32x16Slice(y[i:])).StoreSlice(y[i:])
	}
	axpyScalar(a, x[i:], y[i:])
}

// maxSlice is the largest element of a non-empty x.
func maxSlice(x []float32) float32 {
	if !hasAVX512 || len(x) < 32 {
		return maxSliceScalar(x)
	}
	acc := archsimd.LoadFloat32x16Slice(x)
	i := 16
	for ; i+16 <= len(x); i += 16 {
		acc = acc.Max(archsimd.LoadFloat32x16Slice(x[i:]))
	}
	var lanes [16]float32
	acc.Store(&lanes)
	m := maxSliceScalar(lanes[:])
	for _, v := range x[i:] {
		m = max(m, v)
	}
	return m
}

// sumSquares is Σ x² in float64, sixteen lanes at a time: each square is
// exact in float64, so only the order of the additions differs from the
// scalar loop.
func sumSquares(x []float32) float64 {
	if !hasAVX512 || len(x) < 16 {
		return sumSquaresScalar(x)
	}
	lo, hi := archsimd.BroadcastFloat64x8(0), archsimd.BroadcastFloat64x8(0)
	i := 0
	for ; i+16 <= len(x); i += 16 {
		v := archsimd.LoadFloat32x16Slice(x[i:])
		l, h := v.GetLo().ConvertToFloat64(), v.GetHi().ConvertToFloat64()
		lo, hi = l.MulAdd(l, lo), h.MulAdd(h, hi)
	}
	var lanes [8]float64
	lo.Add(hi).Store(&lanes)
	var s float64
	for _, v := range lanes {
		s += v
	}
	return s + sumSquaresScalar(x[i:])
}

// normRow writes dst[j] = (src[j]·r)·w[j] with the scalar loop's
// operations (two roundings, no fused multiply-add).
func normRow(dst, src, w []float32, r float32) {
	if !hasAVX512 {
		normRowScalar(dst, src, w, r)
		return
	}
	dst, w = dst[:len(src)], w[:len(src)]
	rv := archsimd.BroadcastFloat32x16(r)
	i := 0
	for ; i+16 <= len(src); i += 16 {
		archsimd.LoadFloat32x16Slice(src[i:]).Mul(rv).Mul(archsimd.LoadFloat32x16Slice(w[i:])).StoreSlice(dst[i:])
	}
	normRowScalar(dst[i:], src[i:], w[i:], r)
}

// scaleInto writes dst = s·src.
func scaleInto(dst, src []float32, s float32) {
	if !hasAVX512 {
		scaleIntoScalar(dst, src, s)
		return
	}
	dst = dst[:len(src)]
	sv := archsimd.BroadcastFloat32x16(s)
	i := 0
	for ; i+16 <= len(src); i += 16 {
		archsimd.LoadFloat32x16Slice(src[i:]).Mul(sv).StoreSlice(dst[i:])
	}
	scaleIntoScalar(dst[i:], src[i:], s)
}

// adamwRange is adamwRangeScalar sixteen lanes at a time, with the same
// operations in the same order.
func adamwRange(p, g, mm, vv []float32, c kernels.AdamWScalars) {
	if !hasAVX512 {
		adamwRangeScalar(p, g, mm, vv, c)
		return
	}
	var (
		decay = archsimd.BroadcastFloat32x16(c.Decay)
		b1    = archsimd.BroadcastFloat32x16(c.Beta1)
		omb1  = archsimd.BroadcastFloat32x16(c.OneMinusBeta1)
		b2    = archsimd.BroadcastFloat32x16(c.Beta2)
		omb2  = archsimd.BroadcastFloat32x16(c.OneMinusBeta2)
		neg   = archsimd.BroadcastFloat32x16(c.NegStep)
		bc2   = archsimd.BroadcastFloat32x16(c.BC2Sqrt)
		eps   = archsimd.BroadcastFloat32x16(c.Eps)
	)
	i := 0
	for ; i+16 <= len(p); i += 16 {
		gi := archsimd.LoadFloat32x16Slice(g[i:])
		pi := archsimd.LoadFloat32x16Slice(p[i:]).Mul(decay)
		mi := archsimd.LoadFloat32x16Slice(mm[i:]).Mul(b1).Add(omb1.Mul(gi))
		vi := archsimd.LoadFloat32x16Slice(vv[i:]).Mul(b2).Add(omb2.Mul(gi).Mul(gi))
		denom := vi.Sqrt().Div(bc2).Add(eps)
		pi.Add(neg.Mul(mi.Div(denom))).StoreSlice(p[i:])
		mi.StoreSlice(mm[i:])
		vi.StoreSlice(vv[i:])
	}
	adamwRangeScalar(p[i:], g[i:], mm[i:], vv[i:], c)
}
