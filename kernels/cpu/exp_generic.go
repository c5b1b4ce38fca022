//go:build !(goexperiment.simd && amd64)

package cpu

import "github.com/rltrain/rltrain/kernels"

// expShift is expShiftScalar in builds without GOEXPERIMENT=simd.
func expShift(dst, src []float32, shift float32) float64 { return expShiftScalar(dst, src, shift) }

// simdEnabled reports whether the AVX-512 kernels are in use.
func simdEnabled() bool { return false }

func swigluRow(out, g, u []float32)               { swigluRowScalar(out, g, u) }
func swigluBackwardRow(dg, du, d, g, u []float32) { swigluBackwardRowScalar(dg, du, d, g, u) }

func dot(a, b []float32) float32     { return dotScalar(a, b) }
func axpy(a float32, x, y []float32) { axpyScalar(a, x, y) }

func maxSlice(x []float32) float32             { return maxSliceScalar(x) }
func sumSquares(x []float32) float64           { return sumSquaresScalar(x) }
func normRow(dst, src, w []float32, r float32) { normRowScalar(dst, src, w, r) }
func scaleInto(dst, src []float32, s float32)  { scaleIntoScalar(dst, src, s) }
func adamwRange(p, g, m, v []float32, c kernels.AdamWScalars) {
	adamwRangeScalar(p, g, m, v, c)
}
