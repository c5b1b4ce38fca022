package cpu

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>

int rl_blas_threads(void) { return openblas_get_num_threads(); }
void rl_set_blas_threads(int n) { openblas_set_num_threads(n); }
char* rl_blas_config(void) { return openblas_get_config(); }
*/
import "C"

import (
	"fmt"

	"github.com/rltrain/rltrain/kernels"
)

func setBLASThreads(n int) { C.rl_set_blas_threads(C.int(n)) }

// BLASThreads reports OpenBLAS's thread count.
func BLASThreads() int { return int(C.rl_blas_threads()) }

// BLASConfig describes the linked OpenBLAS build.
func BLASConfig() string { return C.GoString(C.rl_blas_config()) }

// sgemm calls cblas_sgemm on row-major operands after checking that every
// operand is large enough for the shape it is given, so a shape bug fails
// loudly in Go instead of reading past a slice inside BLAS.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if k == 0 {
		scaleMatrix(c, m, n, ldc, beta)
		return
	}
	ta, tb := C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans), C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(&a[0]), C.blasint(lda), (*C.float)(&b[0]), C.blasint(ldb),
		C.float(beta), (*C.float)(&c[0]), C.blasint(ldc))
}

// checkGemm panics when an operand is too small for the shape it is given.
func checkGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	sa, sb, sc, err := kernels.GemmSpans(transA, transB, m, n, k, lda, ldb, ldc)
	if err == nil && (len(a) < sa || len(b) < sb || len(c) < sc) {
		err = fmt.Errorf("gemm %dx%dx%d needs %d, %d and %d floats of A, B and C, has %d, %d and %d",
			m, n, k, sa, sb, sc, len(a), len(b), len(c))
	}
	if err != nil {
		panic("cpu: " + err.Error())
	}
}

func scaleMatrix(c []float32, m, n, ldc int, beta float32) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// Gemm implements kernels.Dense. OpenBLAS runs single-threaded; the product
// is split into row (or column) panels computed concurrently by the
// backend's own goroutines. That keeps all parallelism under Go's control —
// OpenBLAS's own pool spins after every call and steals the cores from the
// Go loops that follow — and lets small independent products (attention
// heads) run side by side.
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a kernels.Buf, lda int, bb kernels.Buf, ldb int, beta float32, c kernels.Buf, ldc int) {
	b.gemm(transA, transB, m, n, k, alpha, Data(a), lda, Data(bb), ldb, beta, Data(c), ldc)
}

// gemmSerialFlops is the size (m·n·k) below which splitting a product costs
// more than it gains.
const gemmSerialFlops = 1 << 18

func parallelGemm(workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m > 0 && n > 0 && useRowsGemm(transA, transB, m, k) {
		rowsGemm(workers, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if workers <= 1 || m*n*k < gemmSerialFlops {
		sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// Panels are multiples of 16 rows (or columns) so every panel keeps
	// OpenBLAS's micro-kernel shape.
	// Split the longer side: every panel packs the whole of the other
	// operand, so cutting a short side of a wide product (a few hundred
	// tokens against a 32k vocabulary) would stream the wide matrix once
	// per panel.
	const align = 16
	if m >= n {
		parts := min(workers, (m+align-1)/align)
		parallelFor(parts, parts, 1, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				r0 := alignedSplit(m, parts, p, align)
				r1 := alignedSplit(m, parts, p+1, align)
				if r0 == r1 {
					continue
				}
				aOff := r0 * lda
				if transA {
					aOff = r0
				}
				sgemm(transA, transB, r1-r0, n, k, alpha, a[aOff:], lda, b, ldb, beta, c[r0*ldc:], ldc)
			}
		})
		return
	}
	parts := min(workers, (n+align-1)/align)
	parallelFor(parts, parts, 1, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			c0 := alignedSplit(n, parts, p, align)
			c1 := alignedSplit(n, parts, p+1, align)
			if c0 == c1 {
				continue
			}
			bOff := c0
			if transB {
				bOff = c0 * ldb
			}
			sgemm(transA, transB, m, c1-c0, k, alpha, a, lda, b[bOff:], ldb, beta, c[c0:], ldc)
		}
	})
}

// alignedSplit is the start of part p of n items cut into parts pieces whose
// boundaries are multiples of align (the last piece takes the rest).
func alignedSplit(n, parts, p, align int) int {
	if p >= parts {
		return n
	}
	blocks := (n + align - 1) / align
	return min(n, (blocks*p/parts)*align)
}
