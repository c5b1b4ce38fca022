package cuda

import (
	"fmt"
	"math"

	"github.com/rltrain/rltrain/kernels"
)

// BF16 is a device buffer of bfloat16 values: the low-precision copy of
// weights or activations, next to fp32 master weights. It is not a
// kernels.Buf; the fp32 interface stays the contract, and these methods are
// the building blocks of the bf16 path (GEMMs on bf16 operands with fp32
// accumulation, casts, the optimizer step refreshing the bf16 copy).
type BF16 struct {
	p DevPtr
	n int
}

// Len is the number of values.
func (h BF16) Len() int { return h.n }

// AllocBF16 returns a zeroed bf16 buffer of n values.
func (b *Backend) AllocBF16(n int) BF16 { return BF16{p: b.alloc(2 * max(n, 1)), n: n} }

// FreeBF16 releases a bf16 buffer.
func (b *Backend) FreeBF16(h BF16) { b.free(h.p) }

// ViewBF16 returns n values of h starting at off.
func (b *Backend) ViewBF16(h BF16, off, n int) BF16 {
	if off < 0 || n < 0 || off+n > h.n {
		panic(fmt.Sprintf("cuda: view [%d:%d] of a %d-value bf16 buffer", off, off+n, h.n))
	}
	return BF16{p: h.p + DevPtr(2*off), n: n}
}

// ToBF16 rounds src to bf16 (to nearest, ties to even) into dst.
func (b *Backend) ToBF16(dst BF16, src kernels.Buf) {
	n := min(dst.n, src.Len())
	if n > 0 {
		b.launch("cast_f32_bf16", elemGrid(n), D1(elemThreads), 0, ArgPtr(dst.p), ArgPtr(dev(src)), ArgInt(n))
	}
}

// FromBF16 widens src into dst (exactly).
func (b *Backend) FromBF16(dst kernels.Buf, src BF16) {
	n := min(dst.Len(), src.n)
	if n > 0 {
		b.launch("cast_bf16_f32", elemGrid(n), D1(elemThreads), 0, ArgPtr(dev(dst)), ArgPtr(src.p), ArgInt(n))
	}
}

// DownloadBF16 copies a bf16 buffer to the host as raw bits.
func (b *Backend) DownloadBF16(dst []uint16, src BF16) {
	n := min(len(dst), src.n)
	b.must("download", b.drv.CopyDtoH(bytesOf(dst[:n]), src.p))
}

// GemmBF16 is Gemm (row-major) with bf16 A and B, fp32 C and fp32
// accumulation.
func (b *Backend) GemmBF16(transA, transB bool, m, n, k int, alpha float32, a BF16, lda int, bb BF16, ldb int, beta float32, c kernels.Buf, ldc int) {
	b.must("gemm bf16", b.drv.GemmBF16(transB, transA, n, m, k, alpha, bb.p, ldb, a.p, lda, beta, dev(c), ldc))
}

// AdamWBF16 is AdamW on the fp32 master weights that also refreshes their
// bf16 copy.
func (b *Backend) AdamWBF16(param kernels.Buf, param16 BF16, grad, m, v kernels.Buf, n int, hp kernels.AdamWParams) {
	if n == 0 {
		return
	}
	if param16.n < n {
		panic(fmt.Sprintf("cuda: bf16 copy of %d values for %d parameters", param16.n, n))
	}
	c := hp.Scalars()
	b.launch("adamw_bf16", elemGrid(n), D1(elemThreads), 0, ArgPtr(dev(param)), ArgPtr(param16.p), ArgPtr(dev(grad)), ArgPtr(dev(m)), ArgPtr(dev(v)), ArgInt(n),
		ArgF32(c.Decay), ArgF32(c.Beta1), ArgF32(c.OneMinusBeta1), ArgF32(c.Beta2), ArgF32(c.OneMinusBeta2),
		ArgF32(c.NegStep), ArgF32(c.BC2Sqrt), ArgF32(c.Eps))
}

// BF16Bits rounds a float32 to bfloat16 bits on the host, to nearest with
// ties to even: the reference for the device conversion.
func BF16Bits(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// BF16Float widens bfloat16 bits to float32.
func BF16Float(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
