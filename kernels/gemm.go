package kernels

import (
	"fmt"
	"time"
)

// GemmSpans checks the leading dimensions of a row-major Gemm and returns
// how many elements of A, B and C it touches: an r×c operand with leading
// dimension ld spans (r−1)·ld + c elements. A and B are not read when
// k = 0 (C is only scaled by beta): their spans are then 0.
//
// A column-major product C = op(A)·op(B) of m×n is the row-major product
// Cᵀ = op(B)ᵀ·op(A)ᵀ, so GemmSpans(transB, transA, n, m, k, ldb, lda, ldc)
// returns (spanB, spanA, spanC) for it.
func GemmSpans(transA, transB bool, m, n, k, lda, ldb, ldc int) (spanA, spanB, spanC int, err error) {
	rowsA, colsA := m, k
	if transA {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if transB {
		rowsB, colsB = n, k
	}
	if lda < max(1, colsA) || ldb < max(1, colsB) || ldc < max(1, n) {
		return 0, 0, 0, fmt.Errorf("gemm %dx%dx%d: leading dimensions %d, %d, %d below the rows' widths %d, %d, %d",
			m, n, k, lda, ldb, ldc, colsA, colsB, n)
	}
	if k > 0 {
		spanA, spanB = MatrixSpan(rowsA, colsA, lda), MatrixSpan(rowsB, colsB, ldb)
	}
	return spanA, spanB, MatrixSpan(m, n, ldc), nil
}

// MatrixSpan is the number of elements a rows×cols row-major matrix with
// leading dimension ld spans: (rows−1)·ld + cols, or 0 when it is empty.
func MatrixSpan(rows, cols, ld int) int {
	if rows <= 0 || cols <= 0 {
		return 0
	}
	return (rows-1)*ld + cols
}

// GemmGFLOPS measures be's matrix-multiply rate: the best of reps timed
// n×n×n products (after one untimed), each waited for by reading one
// element back, in GFLOP/s.
func GemmGFLOPS(be Backend, n, reps int) float64 {
	a, b, c := be.Alloc(n*n), be.Alloc(n*n), be.Alloc(n*n)
	defer func() { be.Free(a); be.Free(b); be.Free(c) }()
	host := make([]float32, n*n)
	for i := range host {
		host[i] = float32(i%13) * 0.01
	}
	be.Upload(a, host)
	be.Upload(b, host)
	be.Gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
	best := 0.0
	for range reps {
		start := time.Now()
		be.Gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
		be.Download(host[:1], be.View(c, 0, 1))
		best = max(best, 2*float64(n)*float64(n)*float64(n)/time.Since(start).Seconds()/1e9)
	}
	return best
}
