//go:build goexperiment.simd && amd64

package simdexp

import "simd/archsimd"

// Constants of Exp16.
var (
	lo    = archsimd.BroadcastFloat32x16(-87.3)
	hi    = archsimd.BroadcastFloat32x16(88)
	log2e = archsimd.BroadcastFloat32x16(1.44269504088896341)
	nHi   = archsimd.BroadcastFloat32x16(-0.693359375)
	nLo   = archsimd.BroadcastFloat32x16(2.12194440e-4)
	c6    = archsimd.BroadcastFloat32x16(1.0 / 720)
	c5    = archsimd.BroadcastFloat32x16(1.0 / 120)
	c4    = archsimd.BroadcastFloat32x16(1.0 / 24)
	c3    = archsimd.BroadcastFloat32x16(1.0 / 6)
	c2    = archsimd.BroadcastFloat32x16(0.5)
	one   = archsimd.BroadcastFloat32x16(1)
	bias  = archsimd.BroadcastInt32x16(127)
)

// Exp16 is e^x on sixteen lanes, the range reduction and polynomial of
// expf with fused multiply-adds: e^x = 2^n·e^r with n = round(x/ln2),
// r = x − n·ln2 (ln2 split in two for accuracy) and e^r from a degree-6
// Taylor polynomial, about 2 ulp. It is exact only for x in [Lo, Hi]: a
// caller either checks InRange or clamps with ClampLow (for x ≤ 0).
// Small enough to be inlined into the callers' loops.
func Exp16(x archsimd.Float32x16) archsimd.Float32x16 {
	fn := x.Mul(log2e).RoundToEvenScaled(0)
	r := fn.MulAdd(nHi, x)
	r = fn.MulAdd(nLo, r)
	p := c6.MulAdd(r, c5)
	p = p.MulAdd(r, c4)
	p = p.MulAdd(r, c3)
	p = p.MulAdd(r, c2)
	p = p.MulAdd(r, one)
	p = p.MulAdd(r, one)
	return p.Mul(fn.ConvertToInt32().Add(bias).ShiftAllLeft(23).AsFloat32x16())
}

// InRange reports whether every lane of x lies in [−87.3, 88], where
// Exp16 is accurate (false for a NaN lane).
func InRange(x archsimd.Float32x16) bool {
	return x.GreaterEqual(lo).And(x.LessEqual(hi)).ToBits() == 0xffff
}

// ClampLow raises every lane below −87.3 to −87.3 (e^−87.3 ≈ 1e-38:
// nothing a sum of probabilities can notice).
func ClampLow(x archsimd.Float32x16) archsimd.Float32x16 { return x.Max(lo) }
