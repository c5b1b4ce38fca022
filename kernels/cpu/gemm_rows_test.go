package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestRowsGemm checks the few-row product against a float64 reference on
// shapes with ragged edges (rows and columns not multiples of the 4×4
// tile, k not a multiple of 16), strided operands, alpha and beta, and
// checks that a row's result is bit-identical whether it is computed
// alone, among other rows, or with the columns split over threads.
func TestRowsGemm(t *testing.T) {
	if !rowsGemmOK {
		t.Skip("no AVX-512: products go to OpenBLAS")
	}
	r := rand.New(rand.NewPCG(31, 32))
	for _, sh := range []struct{ m, n, k int }{{1, 1, 1}, {3, 5, 7}, {4, 4, 16}, {13, 37, 100}, {64, 70, 256}, {17, 1031, 77}} {
		t.Run(fmt.Sprintf("%dx%dx%d", sh.m, sh.n, sh.k), func(t *testing.T) {
			m, n, k := sh.m, sh.n, sh.k
			lda, ldb, ldc := k+3, k+1, n+2
			a, b := randVec(r, m*lda, 1), randVec(r, n*ldb, 1)
			c0 := randVec(r, m*ldc, 1)
			for _, ab := range [][2]float32{{1, 0}, {0.5, 1.5}} {
				alpha, beta := ab[0], ab[1]
				want := make([]float64, m*ldc)
				for i := range m {
					for j := range ldc {
						want[i*ldc+j] = float64(c0[i*ldc+j])
						if j >= n {
							continue
						}
						s := 0.0
						for p := range k {
							s += float64(a[i*lda+p]) * float64(b[j*ldb+p])
						}
						want[i*ldc+j] = float64(alpha)*s + float64(beta)*float64(c0[i*ldc+j])
					}
				}
				var ref []float32
				for _, workers := range []int{1, 2} {
					c := append([]float32(nil), c0...)
					rowsGemm(workers, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
					checkClose(t, fmt.Sprintf("alpha %g beta %g workers %d", alpha, beta, workers), c, want, fwdTol)
					if ref == nil {
						ref = c
					} else if !sameBits(c, ref) {
						t.Fatalf("workers %d: result differs from workers 1", workers)
					}
				}
				// Each row alone gives the same bits.
				for i := range m {
					c := append([]float32(nil), c0[i*ldc:(i+1)*ldc]...)
					rowsGemm(2, 1, n, k, alpha, a[i*lda:], lda, b, ldb, beta, c, ldc)
					if !sameBits(c, ref[i*ldc:(i+1)*ldc]) {
						t.Fatalf("row %d computed alone differs from the batched product", i)
					}
				}
			}
		})
	}
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(a[i] != a[i] && b[i] != b[i]) {
			return false
		}
	}
	return true
}
