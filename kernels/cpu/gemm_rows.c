// Products with few rows against a transposed weight matrix,
// C = alpha·A·Wᵀ + beta·C, without packing either operand (see gemm_rows.go).

#include <stdint.h>

#if !defined(__x86_64__)

// Other architectures send every product to OpenBLAS.
int rl_rows_gemm_supported(void) { return 0; }
void rl_rows_gemm(int m, int k, float alpha, const float *a, int64_t lda, const float *w, int64_t ldw, float beta,
                  float *c, int64_t ldc, int j0, int j1) {}

#else

#include <immintrin.h>

int rl_rows_gemm_supported(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") != 0;
}

#define RL_AVX512 __attribute__((target("avx512f")))

// fold combines two vectors holding segments of w lanes per output into one
// with segments of w/2: the first halves of x's segments then y's, plus
// the second halves. Outputs keep their order, so four levels turn sixteen
// accumulators into one vector of sixteen sums, and every sum is
// ((l0+l8)+(l4+l12)) + ((l2+l10)+(l6+l14)) + ... in a fixed lane order.
RL_AVX512 static inline __m512 fold(__m512 x, __m512 y, __m512i lo, __m512i hi) {
	return _mm512_add_ps(_mm512_permutex2var_ps(x, lo, y), _mm512_permutex2var_ps(x, hi, y));
}

// tile computes the 4×4 block of outputs for rows r[0..3] of A and rows
// w[0..3] of W (row pointers, possibly repeated at the edges) into out[16]
// (row-major 4×4).
RL_AVX512 static void tile4x4(const float *const a[4], const float *const w[4], int k, float out[16],
                              const __m512i lo[4], const __m512i hi[4], const float *const next[4]) {
	__m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00;
	__m512 c10 = c00, c11 = c00, c12 = c00, c13 = c00;
	__m512 c20 = c00, c21 = c00, c22 = c00, c23 = c00;
	__m512 c30 = c00, c31 = c00, c32 = c00, c33 = c00;
	int p = 0;
	for (; p + 16 <= k; p += 16) {
		if (next) {
			// Start fetching the next rows of W, which a large W (the LM
			// head) has to bring from memory.
			_mm_prefetch((const char *)(next[0] + p), _MM_HINT_T0);
			_mm_prefetch((const char *)(next[1] + p), _MM_HINT_T0);
			_mm_prefetch((const char *)(next[2] + p), _MM_HINT_T0);
			_mm_prefetch((const char *)(next[3] + p), _MM_HINT_T0);
		}
		__m512 w0 = _mm512_loadu_ps(w[0] + p), w1 = _mm512_loadu_ps(w[1] + p);
		__m512 w2 = _mm512_loadu_ps(w[2] + p), w3 = _mm512_loadu_ps(w[3] + p);
		__m512 x = _mm512_loadu_ps(a[0] + p);
		c00 = _mm512_fmadd_ps(x, w0, c00), c01 = _mm512_fmadd_ps(x, w1, c01);
		c02 = _mm512_fmadd_ps(x, w2, c02), c03 = _mm512_fmadd_ps(x, w3, c03);
		x = _mm512_loadu_ps(a[1] + p);
		c10 = _mm512_fmadd_ps(x, w0, c10), c11 = _mm512_fmadd_ps(x, w1, c11);
		c12 = _mm512_fmadd_ps(x, w2, c12), c13 = _mm512_fmadd_ps(x, w3, c13);
		x = _mm512_loadu_ps(a[2] + p);
		c20 = _mm512_fmadd_ps(x, w0, c20), c21 = _mm512_fmadd_ps(x, w1, c21);
		c22 = _mm512_fmadd_ps(x, w2, c22), c23 = _mm512_fmadd_ps(x, w3, c23);
		x = _mm512_loadu_ps(a[3] + p);
		c30 = _mm512_fmadd_ps(x, w0, c30), c31 = _mm512_fmadd_ps(x, w1, c31);
		c32 = _mm512_fmadd_ps(x, w2, c32), c33 = _mm512_fmadd_ps(x, w3, c33);
	}
	if (p < k) {
		// The tail is loaded with zeros in the missing lanes, the same way
		// for every output, so a sum never depends on its tile.
		__mmask16 m = (__mmask16)((1u << (k - p)) - 1);
		__m512 w0 = _mm512_maskz_loadu_ps(m, w[0] + p), w1 = _mm512_maskz_loadu_ps(m, w[1] + p);
		__m512 w2 = _mm512_maskz_loadu_ps(m, w[2] + p), w3 = _mm512_maskz_loadu_ps(m, w[3] + p);
		__m512 x = _mm512_maskz_loadu_ps(m, a[0] + p);
		c00 = _mm512_fmadd_ps(x, w0, c00), c01 = _mm512_fmadd_ps(x, w1, c01);
		c02 = _mm512_fmadd_ps(x, w2, c02), c03 = _mm512_fmadd_ps(x, w3, c03);
		x = _mm512_maskz_loadu_ps(m, a[1] + p);
		c10 = _mm512_fmadd_ps(x, w0, c10), c11 = _mm512_fmadd_ps(x, w1, c11);
		c12 = _mm512_fmadd_ps(x, w2, c12), c13 = _mm512_fmadd_ps(x, w3, c13);
		x = _mm512_maskz_loadu_ps(m, a[2] + p);
		c20 = _mm512_fmadd_ps(x, w0, c20), c21 = _mm512_fmadd_ps(x, w1, c21);
		c22 = _mm512_fmadd_ps(x, w2, c22), c23 = _mm512_fmadd_ps(x, w3, c23);
		x = _mm512_maskz_loadu_ps(m, a[3] + p);
		c30 = _mm512_fmadd_ps(x, w0, c30), c31 = _mm512_fmadd_ps(x, w1, c31);
		c32 = _mm512_fmadd_ps(x, w2, c32), c33 = _mm512_fmadd_ps(x, w3, c33);
	}
	__m512 b0 = fold(c00, c01, lo[0], hi[0]), b1 = fold(c02, c03, lo[0], hi[0]);
	__m512 b2 = fold(c10, c11, lo[0], hi[0]), b3 = fold(c12, c13, lo[0], hi[0]);
	__m512 b4 = fold(c20, c21, lo[0], hi[0]), b5 = fold(c22, c23, lo[0], hi[0]);
	__m512 b6 = fold(c30, c31, lo[0], hi[0]), b7 = fold(c32, c33, lo[0], hi[0]);
	__m512 d0 = fold(b0, b1, lo[1], hi[1]), d1 = fold(b2, b3, lo[1], hi[1]);
	__m512 d2 = fold(b4, b5, lo[1], hi[1]), d3 = fold(b6, b7, lo[1], hi[1]);
	__m512 e0 = fold(d0, d1, lo[2], hi[2]), e1 = fold(d2, d3, lo[2], hi[2]);
	_mm512_storeu_ps(out, fold(e0, e1, lo[3], hi[3]));
}

// rl_rows_gemm computes output columns [j0, j1) of
// C[m×n] = alpha·A[m×k]·W[n×k]ᵀ + beta·C (row-major, leading dimensions
// lda, ldw, ldc). Each output is the same sequence of operations whatever
// m, n, j0 and j1 are, so the result of a row does not depend on the
// other rows in the product or on how the columns are split.
RL_AVX512 void rl_rows_gemm(int m, int k, float alpha, const float *a, int64_t lda, const float *w, int64_t ldw,
                            float beta, float *c, int64_t ldc, int j0, int j1) {
	__m512i lo[4], hi[4];
	for (int l = 0; l < 4; l++) {
		int wd = 16 >> l;
		int32_t x[16], y[16];
		for (int i = 0; i < 16; i++) {
			int src = (i % 8) / (wd / 2) * wd + i % (wd / 2);
			if (i >= 8) src += 16;
			x[i] = src, y[i] = src + wd / 2;
		}
		lo[l] = _mm512_loadu_si512(x), hi[l] = _mm512_loadu_si512(y);
	}
	float out[16];
	for (int j = j0; j < j1; j += 4) {
		int nj = j1 - j < 4 ? j1 - j : 4;
		const float *wr[4], *wn[4];
		for (int t = 0; t < 4; t++) {
			wr[t] = w + (int64_t)(j + (t < nj ? t : nj - 1)) * ldw;
			// Rows past j1 belong to another thread or do not exist:
			// prefetch the current tile again instead.
			wn[t] = j + 4 + t < j1 ? w + (int64_t)(j + 4 + t) * ldw : wr[t];
		}
		for (int r = 0; r < m; r += 4) {
			int nr = m - r < 4 ? m - r : 4;
			const float *ar[4];
			for (int t = 0; t < 4; t++) ar[t] = a + (int64_t)(r + (t < nr ? t : nr - 1)) * lda;
			tile4x4(ar, wr, k, out, lo, hi, r == 0 ? wn : 0);
			for (int t = 0; t < nr; t++) {
				float *cr = c + (int64_t)(r + t) * ldc + j;
				for (int u = 0; u < nj; u++) {
					float v = alpha * out[t * 4 + u];
					cr[u] = beta == 0 ? v : v + beta * cr[u];
				}
			}
		}
	}
}

#endif
