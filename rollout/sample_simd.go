//go:build goexperiment.simd && amd64

package rollout

import (
	"math"
	"simd/archsimd"

	"github.com/rltrain/rltrain/internal/simdexp"
)

var hasAVX512 = archsimd.X86.AVX512()

// exp16 is e^x for x ≤ 0 on sixteen lanes, arguments below −87.3 taken as
// −87.3 (e^−87.3 ≈ 1e-38: nothing a sum of probabilities can notice).
func exp16(x archsimd.Float32x16) archsimd.Float32x16 {
	return simdexp.Exp16(simdexp.ClampLow(x))
}

// rowMax returns the largest logit; ok is false (and the caller must use
// scalar code) without AVX-512, for a length that is not a multiple of 16,
// or when a logit is NaN or the maximum is infinite.
func rowMax(logits []float32) (float32, bool) {
	V := len(logits)
	if !hasAVX512 || V < 16 || V%16 != 0 {
		return 0, false
	}
	mxv := archsimd.LoadFloat32x16Slice(logits)
	nan := mxv.IsNaN().ToBits()
	for i := 16; i < V; i += 16 {
		x := archsimd.LoadFloat32x16Slice(logits[i:])
		nan |= x.IsNaN().ToBits()
		mxv = mxv.Max(x)
	}
	if nan != 0 {
		return 0, false
	}
	var lanes [16]float32
	mxv.Store(&lanes)
	mx := lanes[0]
	for _, v := range lanes[1:] {
		mx = max(mx, v)
	}
	return mx, !math.IsInf(float64(mx), 0)
}

// greedyRow returns the argmax of logits (the lowest id on ties) and its
// log-probability −log Σ e^(z−max). With AVX-512 the maximum, the search
// for its first position and the exponentials run sixteen lanes at a time,
// the exponentials in float32 and their sum in float64 lanes. A row
// holding a NaN or an infinity takes the scalar path.
func greedyRow(logits []float32) (int32, float32) {
	mx, ok := rowMax(logits)
	if !ok {
		return greedyRowScalar(logits)
	}
	V := len(logits)
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
		e := exp16(archsimd.LoadFloat32x16Slice(logits[i:]).Sub(m))
		s0 = s0.Add(e.GetLo().ConvertToFloat64())
		s1 = s1.Add(e.GetHi().ConvertToFloat64())
	}
	var sums [8]float64
	s0.Add(s1).Store(&sums)
	sum := ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7]))
	return int32(best), float32(-math.Log(sum))
}

// expWeights writes w[i] = e^((logits[i]−mx)·invT) for the row maximum mx
// and returns Σ w, or ok false (without AVX-512, or for a length that is
// not a multiple of 16) for the caller to use scalar code. The arguments
// and exponentials are float32 (about 1e-7 relative, far below any
// sampling test's resolution), the weights and their sum float64.
func expWeights(w []float64, logits []float32, mx float32, invT float64) (float64, bool) {
	V := len(logits)
	if !hasAVX512 || V < 16 || V%16 != 0 {
		return 0, false
	}
	w = w[:V]
	m := archsimd.BroadcastFloat32x16(mx)
	t := archsimd.BroadcastFloat32x16(float32(invT))
	var s0, s1 archsimd.Float64x8
	for i := 0; i < V; i += 16 {
		e := exp16(archsimd.LoadFloat32x16Slice(logits[i:]).Sub(m).Mul(t))
		lo, hi := e.GetLo().ConvertToFloat64(), e.GetHi().ConvertToFloat64()
		lo.StoreSlice(w[i:])
		hi.StoreSlice(w[i+8:])
		s0 = s0.Add(lo)
		s1 = s1.Add(hi)
	}
	var sums [8]float64
	s0.Add(s1).Store(&sums)
	return ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7])), true
}
