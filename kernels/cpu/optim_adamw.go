package cpu

import (
	"math"

	"github.com/rltrain/rltrain/kernels"
)

// AdamW implements kernels.Optim. It follows torch.optim.AdamW's
// single-tensor path operation by operation (scalars formed in float64 and
// rounded to float32, element work in float32) so that the two agree to a
// few ulps over many steps.
func (b *Backend) AdamW(param, grad, m, v kernels.Buf, n int, hp kernels.AdamWParams) {
	p, g, mm, vv := Data(param)[:n], Data(grad)[:n], Data(m)[:n], Data(v)[:n]
	c := hp.Scalars()
	optimParallel(n, optimParts(n, b.threads), func(_, lo, hi int) {
		adamwRange(p[lo:hi], g[lo:hi], mm[lo:hi], vv[lo:hi], c)
	})
}

// adamwRangeScalar is the element update; the vector version performs the
// same float32 operations in the same order (no fused multiply-adds, an
// exactly rounded square root), so both give identical results.
func adamwRangeScalar(p, g, mm, vv []float32, c kernels.AdamWScalars) {
	for i := range p {
		gi := g[i]
		pi := p[i] * c.Decay
		mi := mm[i]*c.Beta1 + c.OneMinusBeta1*gi
		vi := vv[i]*c.Beta2 + c.OneMinusBeta2*gi*gi
		denom := float32(math.Sqrt(float64(vi)))/c.BC2Sqrt + c.Eps
		p[i] = pi + c.NegStep*(mi/denom)
		mm[i], vv[i] = mi, vi
	}
}

// optimSumChunk is the fixed block size of SumSquares: partial sums are
// formed per block and added in block order, whatever the thread count.
const optimSumChunk = 1 << 12

// SumSquares implements kernels.Optim.
func (b *Backend) SumSquares(x kernels.Buf) float64 {
	d := Data(x)
	blocks := (len(d) + optimSumChunk - 1) / optimSumChunk
	partial := make([]float64, blocks)
	optimParallel(blocks, optimParts(len(d), b.threads), func(_, lo, hi int) {
		for k := lo; k < hi; k++ {
			end := min((k+1)*optimSumChunk, len(d))
			var s float64
			for _, f := range d[k*optimSumChunk : end] {
				s += float64(f) * float64(f)
			}
			partial[k] = s
		}
	})
	var s float64
	for _, p := range partial {
		s += p
	}
	return s
}

// Scale implements kernels.Optim.
func (b *Backend) Scale(x kernels.Buf, s float32) {
	d := Data(x)
	optimParallel(len(d), optimParts(len(d), b.threads), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			d[i] *= s
		}
	})
}

// SegmentSums implements kernels.Optim.
func (b *Backend) SegmentSums(out []float64, x, mask kernels.Buf, offsets []int) {
	xd, md := Data(x), Data(mask)
	for i := 0; i+1 < len(offsets); i++ {
		var s float64
		for t := offsets[i]; t < offsets[i+1]; t++ {
			s += float64(md[t]) * float64(xd[t])
		}
		out[i] = s
	}
}

// SegmentBroadcast implements kernels.Optim.
func (b *Backend) SegmentBroadcast(dst, mask kernels.Buf, offsets []int, coef []float32) {
	dd, md := Data(dst), Data(mask)
	clear(dd)
	for i := 0; i+1 < len(offsets); i++ {
		for t := offsets[i]; t < offsets[i+1]; t++ {
			dd[t] = coef[i] * md[t]
		}
	}
}
