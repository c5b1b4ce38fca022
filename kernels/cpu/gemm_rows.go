package cpu

/*
#include <stdint.h>
int rl_rows_gemm_supported(void);
void rl_rows_gemm(int m, int k, float alpha, const float *a, int64_t lda, const float *w, int64_t ldw,
                  float beta, float *c, int64_t ldc, int j0, int j1);
*/
import "C"

import (
	"math"
	"sync"
)

// Products with few rows against a transposed weight matrix (C = A·Wᵀ with
// A [m × k], W [n × k]) are what decoding runs: m is the number of running
// sequences, W a projection or the LM head. OpenBLAS packs the whole of W
// on every call, which at 64 rows costs about half as much as the product
// itself; rowsGemm (gemm_rows.c) reads W in place instead: each output is
// a 16-lane dot product of a row of A and a row of W, sixteen outputs (a
// 4×4 tile) at a time, and the lanes are summed by a transpose-and-add
// tree. Every output is computed by the same operations whatever the shape
// of the product and however its columns are split over threads, so a
// sequence's logits do not depend on the batch it is decoded in.

// rowsGemmMaxM is the largest row count sent to rowsGemm: beyond it,
// OpenBLAS's packing is spread over enough rows to pay for itself.
const rowsGemmMaxM = 64

var rowsGemmOK = C.rl_rows_gemm_supported() != 0

// useRowsGemm reports whether rowsGemm handles a product.
func useRowsGemm(transA, transB bool, m, k int) bool {
	return rowsGemmOK && !transA && transB && m <= rowsGemmMaxM && k > 0
}

// rowsGemm computes C = alpha·A·Wᵀ + beta·C with columns split over
// workers in multiples of 4 (the tile width).
func rowsGemm(workers, m, n, k int, alpha float32, a []float32, lda int, w []float32, ldw int, beta float32, c []float32, ldc int) {
	checkGemm(false, true, m, n, k, a, lda, w, ldw, c, ldc)
	run := func(j0, j1 int) {
		C.rl_rows_gemm(C.int(m), C.int(k), C.float(alpha), (*C.float)(&a[0]), C.int64_t(lda), (*C.float)(&w[0]), C.int64_t(ldw),
			C.float(beta), (*C.float)(&c[0]), C.int64_t(ldc), C.int(j0), C.int(j1))
	}
	if workers <= 1 || m*n*k < gemmSerialFlops {
		run(0, n)
		return
	}
	const align = 4
	parts := min(workers, (n+align-1)/align)
	parallelFor(parts, parts, 1, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			if j0, j1 := alignedSplit(n, parts, p, align), alignedSplit(n, parts, p+1, align); j0 < j1 {
				run(j0, j1)
			}
		}
	})
}

// InvariantRows is the largest number of rows a decoding step may have
// while every row's results stay bit-identical whatever the other rows and
// the thread count: the products go to rowsGemm, and every other
// operation of a step (norms, RoPE, SwiGLU, decode attention, additions)
// works row by row. It is 0 when products go to OpenBLAS, whose kernel
// choice depends on the shape. A sampler can then decode batch-invariantly
// without padding to a fixed shape.
func (b *Backend) InvariantRows() int {
	if !rowsGemmOK {
		return 0
	}
	return rowsGemmMaxM
}

// SetRowInvariant implements kernels.RowInvariantForward: on, every
// product A·Wᵀ (projections, the LM head) goes to rowsGemm whatever its
// row count, so a row of a training forward pass or a prefill is computed
// by the same operations as the same row of a decoding step. It needs the
// AVX-512 kernel; without it nothing changes and it returns false.
func (b *Backend) SetRowInvariant(on bool) bool {
	if !rowsGemmOK {
		return false
	}
	b.rowInvariant.Store(on)
	return true
}

// gemm is parallelGemm on b's threads, with products sent to rowsGemm
// whenever row-invariant products are on.
func (b *Backend) gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, w []float32, ldw int, beta float32, c []float32, ldc int) {
	if b.rowInvariant.Load() && !transA && transB && m > 0 && n > 0 && k > 0 {
		rowsGemm(b.threads, m, n, k, alpha, a, lda, w, ldw, beta, c, ldc)
		return
	}
	parallelGemm(b.threads, transA, transB, m, n, k, alpha, a, lda, w, ldw, beta, c, ldc)
}

var rowLogProbBufs = sync.Pool{New: func() any { return new([]float32) }}

// RowLogProb implements kernels.RowInvariantForward: the output-layer
// kernels compute a row's logits z = invTemp·(h·Wᵀ) in one product (rowsGemm
// rounds alpha·acc once) and its log-prob with rowSoftmax; from the raw
// logits acc of the same product this is the same arithmetic, to the bit.
func (b *Backend) RowLogProb(logits []float32, target int32, invTemp float32) float32 {
	p := rowLogProbBufs.Get().(*[]float32)
	defer rowLogProbBufs.Put(p)
	V := len(logits)
	if cap(*p) < 2*V {
		*p = make([]float32, 2*V)
	}
	z, e := (*p)[:V], (*p)[V:2*V]
	for j, v := range logits {
		z[j] = invTemp * v
	}
	mx := maxSlice(z)
	sum := expShift(e, z, mx)
	return z[target] - float32(float64(mx)+math.Log(sum))
}
