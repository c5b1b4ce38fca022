package cuda

import (
	"fmt"
	"math"

	"github.com/rltrain/rltrain/kernels"
)

// Precision is the number format of the backend's GEMM operands.
type Precision string

const (
	// PrecisionFP32 runs every GEMM in float32 (cuBLAS sgemm).
	PrecisionFP32 Precision = "fp32"
	// PrecisionBF16 runs every GEMM on bfloat16 operands with float32 accumulation
	// and output (cuBLAS GemmEx), as PyTorch's autocast does for matmuls.
	// Everything else — norms, softmax, log-probs, losses, the optimizer
	// and the master weights — stays float32.
	PrecisionBF16 Precision = "bf16"
)

// ParsePrecision checks a precision name.
func ParsePrecision(s string) (Precision, error) {
	switch p := Precision(s); p {
	case "", PrecisionFP32:
		return PrecisionFP32, nil
	case PrecisionBF16:
		return p, nil
	}
	return "", fmt.Errorf("precision %q: want fp32 or bf16", s)
}

// SetPrecision selects the GEMM precision of subsequent operations. bf16
// needs a GPU of compute capability 8.0 (Ampere) or newer.
func (b *Backend) SetPrecision(p Precision) error {
	if p == "" {
		p = PrecisionFP32
	}
	if p == PrecisionBF16 {
		if err := b.needAmpere("bf16 GEMMs (backend.precision: bf16)", "backend.precision: fp32"); err != nil {
			return err
		}
	}
	b.precision = p
	return nil
}

// capabilityDriver is a driver that reports its device's compute
// capability (a real GPU; the emulator has none and runs everything).
type capabilityDriver interface {
	ComputeCapability() (major, minor int)
}

// needAmpere refuses a feature on devices older than compute capability
// 8.0, saying what to use instead.
func (b *Backend) needAmpere(feature, instead string) error {
	raw := b.drv.(*trackingDriver).Driver
	d, ok := raw.(capabilityDriver)
	if !ok {
		return nil
	}
	if major, minor := d.ComputeCapability(); major < 8 {
		return fmt.Errorf("cuda: %s need compute capability 8.0 (sm_80, Ampere) or newer; %s is %d.%d: use %s", feature, raw.Name(), major, minor, instead)
	}
	return nil
}

// Precision returns the GEMM precision.
func (b *Backend) Precision() Precision {
	if b.precision == "" {
		return PrecisionFP32
	}
	return b.precision
}

// SetTF32 lets the fp32 GEMMs (precision fp32) run on TF32 tensor cores:
// cuBLAS rounds A and B to TF32 (10-bit mantissa, relative error 2⁻¹¹)
// and accumulates in fp32. The emulator rounds the same way, so emulated
// results show the same numerics. bf16 GEMMs are unaffected.
func (b *Backend) SetTF32(on bool) error {
	raw := b.drv.(*trackingDriver).Driver
	d, ok := raw.(TF32Driver)
	if !ok {
		return fmt.Errorf("cuda: the %s driver has no TF32 mode", raw.Name())
	}
	if on {
		if err := b.needAmpere("TF32 tensor cores (backend.tf32)", "backend.tf32: false"); err != nil {
			return err
		}
	}
	if err := d.SetTF32(on); err != nil {
		return fmt.Errorf("cuda: set TF32 math: %w", err)
	}
	b.tf32 = on
	return nil
}

// bf16Key identifies a converted operand: its first element and the number
// of float32 values its rows span.
type bf16Key struct {
	p    DevPtr
	span int
}

// bf16Entry is the cached bf16 copy of a parameter operand, valid while
// its allocation (alloc) has not been written since (written).
type bf16Entry struct {
	p16     DevPtr
	alloc   uint64
	written uint64
}

// bf16Cache holds the bf16 operands of the GEMMs: a copy per parameter
// operand (weights are read by many GEMMs between optimizer steps) and two
// scratch buffers for everything else, converted on every call.
type bf16Cache struct {
	entries map[bf16Key]*bf16Entry
	bytes   int
	scratch [2]DevPtr
	scrLen  [2]int
	// hits and converts count operand conversions saved and done, for
	// tests and reports.
	hits, converts int
}

// BF16CacheStats reports how many GEMM operands were served by a cached
// bf16 copy, how many were converted, and the bytes the cached copies hold.
func (b *Backend) BF16CacheStats() (hits, converts, bytes int) {
	return b.c16.hits, b.c16.converts, b.c16.bytes
}

// bf16Operand returns a bf16 copy of the span floats at p: the cached copy
// when p lies in an allocation last written as parameters, otherwise a
// fresh conversion into scratch buffer slot.
func (b *Backend) bf16Operand(slot int, p DevPtr, span int) DevPtr {
	if span == 0 {
		return 0
	}
	a := b.tr.find(p)
	if a == nil || !a.param {
		b.c16.converts++
		if b.c16.scrLen[slot] < span {
			b.free(b.c16.scratch[slot])
			b.c16.scratch[slot] = b.alloc(2 * span)
			b.c16.scrLen[slot] = span
		}
		b.castBF16(b.c16.scratch[slot], p, span)
		return b.c16.scratch[slot]
	}
	if b.c16.entries == nil {
		b.c16.entries = map[bf16Key]*bf16Entry{}
	}
	k := bf16Key{p, span}
	e := b.c16.entries[k]
	if e != nil && e.alloc == a.id && e.written == a.written {
		b.c16.hits++
		return e.p16
	}
	if e == nil {
		e = &bf16Entry{p16: b.alloc(2 * span)}
		b.c16.entries[k] = e
		b.c16.bytes += 2 * span
	}
	b.c16.converts++
	b.castBF16(e.p16, p, span)
	e.alloc, e.written = a.id, a.written
	return e.p16
}

func (b *Backend) castBF16(dst, src DevPtr, n int) {
	b.launch("cast_f32_bf16", elemGrid(n), D1(elemThreads), 0, ArgPtr(dst), ArgPtr(src), ArgInt(n))
}

// dropBF16 frees the cached copies made from allocation a.
func (b *Backend) dropBF16(a *allocation) {
	for k, e := range b.c16.entries {
		if e.alloc == a.id {
			b.free(e.p16)
			b.c16.bytes -= 2 * k.span
			delete(b.c16.entries, k)
		}
	}
}

// closeBF16 frees every bf16 copy and scratch buffer.
func (b *Backend) closeBF16() {
	for k, e := range b.c16.entries {
		b.free(e.p16)
		delete(b.c16.entries, k)
	}
	b.c16.bytes = 0
	for i, p := range b.c16.scratch {
		b.free(p)
		b.c16.scratch[i], b.c16.scrLen[i] = 0, 0
	}
}

// gemmBF16 is gemm (row-major) on bf16 copies of A and B.
func (b *Backend) gemmBF16(transA, transB bool, m, n, k int, alpha float32, a DevPtr, lda int, bb DevPtr, ldb int, beta float32, c DevPtr, ldc int) {
	if k == 0 || m == 0 || n == 0 {
		// Nothing to convert: C = β·C, as sgemm does it (no bf16 operand
		// pointers for cuBLAS to check).
		b.must("sgemm", b.drv.Sgemm(transB, transA, n, m, k, alpha, bb, ldb, a, lda, beta, c, ldc))
		return
	}
	spanA, spanB, _, err := kernels.GemmSpans(transA, transB, m, n, k, lda, ldb, ldc)
	b.must("gemm bf16", err)
	a16 := b.bf16Operand(0, a, spanA)
	b16 := b.bf16Operand(1, bb, spanB)
	b.must("gemm bf16", b.drv.GemmBF16(transB, transA, n, m, k, alpha, b16, ldb, a16, lda, beta, c, ldc))
}

// TF32Round rounds a float32 to TF32 on the host (10-bit mantissa, to
// nearest with ties to even; NaN and infinities unchanged): the reference
// for the emulated TF32 GEMM.
func TF32Round(f float32) float32 {
	u := math.Float32bits(f)
	if u&0x7f800000 != 0x7f800000 {
		u = (u + 0xfff + (u>>13)&1) &^ 0x1fff
	}
	return math.Float32frombits(u)
}
