package kernels

import "testing"

func TestGemmSpans(t *testing.T) {
	for _, c := range []struct {
		name                   string
		tA, tB                 bool
		m, n, k, lda, ldb, ldc int
		a, b, c                int
		bad                    bool
	}{
		// A 2×3 (ld 3), B 3×4 (ld 4), C 2×4 (ld 4).
		{name: "plain", m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 4, a: 6, b: 12, c: 8},
		// Aᵀ stored 3×2, Bᵀ stored 4×3, strided C.
		{name: "transposed", tA: true, tB: true, m: 2, n: 4, k: 3, lda: 2, ldb: 3, ldc: 10, a: 6, b: 12, c: 14},
		{name: "strided A", m: 2, n: 4, k: 3, lda: 7, ldb: 4, ldc: 4, a: 10, b: 12, c: 8},
		{name: "k=0 reads no A or B", m: 2, n: 4, k: 0, lda: 1, ldb: 4, ldc: 4, a: 0, b: 0, c: 8},
		{name: "short lda", m: 2, n: 4, k: 3, lda: 2, ldb: 4, ldc: 4, bad: true},
		{name: "short ldb of Bᵀ", tB: true, m: 2, n: 4, k: 3, lda: 3, ldb: 2, ldc: 4, bad: true},
		{name: "short ldc", m: 2, n: 4, k: 3, lda: 3, ldb: 4, ldc: 3, bad: true},
	} {
		a, b, cc, err := GemmSpans(c.tA, c.tB, c.m, c.n, c.k, c.lda, c.ldb, c.ldc)
		if (err != nil) != c.bad {
			t.Errorf("%s: err = %v, want an error: %v", c.name, err, c.bad)
			continue
		}
		if !c.bad && (a != c.a || b != c.b || cc != c.c) {
			t.Errorf("%s: spans %d, %d, %d, want %d, %d, %d", c.name, a, b, cc, c.a, c.b, c.c)
		}
	}
}
