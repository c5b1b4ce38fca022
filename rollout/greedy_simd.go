//go:build goexperiment.simd && amd64

package rollout

import (
	"math"
	"simd/archsimd"
)

var hasAVX512 = archsimd.X86.AVX512()

// Constants of the vector exponential in greedyRow: e^x = 2^n·e^r with
// n = round(x/ln2), r = x − n·ln2 (ln2 split in two for accuracy) and e^r
// from a degree-6 Taylor polynomial, about 2 ulp in float32.
var (
	gLo    = archsimd.BroadcastFloat32x16(-87.3)
	gLog2e = archsimd.BroadcastFloat32x16(1.44269504088896341)
	gNHi   = archsimd.BroadcastFloat32x16(-0.693359375)
	gNLo   = archsimd.BroadcastFloat32x16(2.12194440e-4)
	gC6    = archsimd.BroadcastFloat32x16(1.0 / 720)
	gC5    = archsimd.BroadcastFloat32x16(1.0 / 120)
	gC4    = archsimd.BroadcastFloat32x16(1.0 / 24)
	gC3    = archsimd.BroadcastFloat32x16(1.0 / 6)
	gC2    = archsimd.BroadcastFloat32x16(0.5)
	gOne   = archsimd.BroadcastFloat32x16(1)
	gBias  = archsimd.BroadcastInt32x16(127)
)

// greedyRow returns the argmax of logits (the lowest id on ties) and its
// log-probability −log Σ e^(z−max). With AVX-512 the maximum, the search
// for its first position and the exponentials run sixteen lanes at a time,
// the exponentials in float32 and their sum in float64 lanes; arguments
// below −87.3 count as e^−87.3 (≈1e-38 against a sum of at least 1). A
// row holding a NaN takes the scalar path.
func greedyRow(logits []float32) (int32, float32) {
	V := len(logits)
	if !hasAVX512 || V < 16 || V%16 != 0 {
		return greedyRowScalar(logits)
	}
	mxv := archsimd.LoadFloat32x16Slice(logits)
	var nan uint16
	for i := 16; i < V; i += 16 {
		x := archsimd.LoadFloat32x16Slice(logits[i:])
		nan |= x.IsNaN().ToBits()
		mxv = mxv.Max(x)
	}
	nan |= archsimd.LoadFloat32x16Slice(logits).IsNaN().ToBits()
	if nan != 0 {
		return greedyRowScalar(logits)
	}
	var lanes [16]float32
	mxv.Store(&lanes)
	mx := lanes[0]
	for _, v := range lanes[1:] {
		mx = max(mx, v)
	}
	if math.IsInf(float64(mx), 0) {
		return greedyRowScalar(logits)
	}
	best := 0
	m := archsimd.BroadcastFloat32x16(mx)
	for i := 0; i < V; i += 16 {
		if bits := archsimd.LoadFloat32x16Slice(logits[i:]).Equal(m).ToBits(); bits != 0 {
			best = i
			for bits&1 == 0 {
				bits >>= 1
				best++
			}
			break
		}
	}
	var s0, s1 archsimd.Float64x8
	for i := 0; i < V; i += 16 {
		x := archsimd.LoadFloat32x16Slice(logits[i:]).Sub(m).Max(gLo)
		fn := x.Mul(gLog2e).RoundToEvenScaled(0)
		r := fn.MulAdd(gNHi, x)
		r = fn.MulAdd(gNLo, r)
		p := gC6.MulAdd(r, gC5)
		p = p.MulAdd(r, gC4)
		p = p.MulAdd(r, gC3)
		p = p.MulAdd(r, gC2)
		p = p.MulAdd(r, gOne)
		p = p.MulAdd(r, gOne)
		e := p.Mul(fn.ConvertToInt32().Add(gBias).ShiftAllLeft(23).AsFloat32x16())
		s0 = s0.Add(e.GetLo().ConvertToFloat64())
		s1 = s1.Add(e.GetHi().ConvertToFloat64())
	}
	var sums [8]float64
	s0.Add(s1).Store(&sums)
	sum := ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]))
	return int32(best), float32(-math.Log(sum))
}
