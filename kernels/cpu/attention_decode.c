// Single-query attention over a paged KV cache for one sequence and one KV
// head (see AttentionDecode in attention.go).

#include <math.h>
#include <stdint.h>

#if !defined(__x86_64__)

int rl_decode_attn(const float *q, int group, int hd, const float *kp, const float *vp, const int64_t *offs, int len,
                   float scale, float *scores, float *out) {
	return 0;
}

#else

#include <immintrin.h>

#define RL_AVX512 __attribute__((target("avx512f")))

// exp16 is e^x for x ≤ 0 on sixteen lanes: x = n·ln2 + r, e^r from a
// degree-6 Taylor polynomial (about 2 ulp), arguments below −87.3 flushed
// to 0.
RL_AVX512 static inline __m512 exp16(__m512 x) {
	__mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
	x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
	__m512 fn = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
	__m512 r = _mm512_fmadd_ps(fn, _mm512_set1_ps(-0.693359375f), x);
	r = _mm512_fmadd_ps(fn, _mm512_set1_ps(2.12194440e-4f), r);
	__m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 720), r, _mm512_set1_ps(1.0f / 120));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1));
	__m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fn), _mm512_set1_epi32(127)), 23);
	return _mm512_maskz_mov_ps(~tiny, _mm512_mul_ps(p, _mm512_castsi512_ps(e)));
}

// fold combines two vectors holding segments of w lanes per key into one
// with segments of w/2 (see gemm_rows.c): four levels turn sixteen
// accumulators into one vector of sixteen sums.
RL_AVX512 static inline __m512 fold(__m512 x, __m512 y, __m512i lo, __m512i hi) {
	return _mm512_add_ps(_mm512_permutex2var_ps(x, lo, y), _mm512_permutex2var_ps(x, hi, y));
}

// The fold permutations of levels 0..3 (first and second halves).
static const int32_t fold_lo[4][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
    {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27},
    {0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29},
    {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30},
};
static const int32_t fold_hi[4][16] = {
    {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31},
    {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31},
    {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31},
    {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31},
};

RL_AVX512 static void fold_indices(__m512i lo[4], __m512i hi[4]) {
	for (int l = 0; l < 4; l++) lo[l] = _mm512_loadu_si512(fold_lo[l]), hi[l] = _mm512_loadu_si512(fold_hi[l]);
}

// hsum16 adds the lanes of x pairwise in a fixed order.
RL_AVX512 static inline float hsum16(__m512 x) {
	__m256 a = _mm256_add_ps(_mm512_castps512_ps256(x), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
	__m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
	b = _mm_add_ps(b, _mm_movehl_ps(b, b));
	b = _mm_add_ss(b, _mm_movehdup_ps(b));
	return _mm_cvtss_f32(b);
}

// attn64 handles head size 64 for a group of g query heads that share one
// KV head. Scores are taken sixteen keys at a time and summed by a
// transpose-and-add tree; the rows of the next positions are prefetched,
// since a paged cache scatters them; for a pair of heads each value row is
// loaded once.
RL_AVX512 static void attn64(const float *q, int g, const float *kp, const float *vp, const int64_t *offs, int len,
                             float scale, float *scores, float *out) {
	__m512i lo[4], hi[4];
	fold_indices(lo, hi);
	for (int h = 0; h < g; h++) {
		const float *qh = q + h * 64;
		__m512 q0 = _mm512_loadu_ps(qh), q1 = _mm512_loadu_ps(qh + 16);
		__m512 q2 = _mm512_loadu_ps(qh + 32), q3 = _mm512_loadu_ps(qh + 48);
		float *sc = scores + (int64_t)h * len;
		__m512 mv = _mm512_set1_ps(-INFINITY);
		for (int j0 = 0; j0 < len; j0 += 16) {
			int n = len - j0 < 16 ? len - j0 : 16;
			__m512 acc[16];
#pragma GCC unroll 16
			for (int t = 0; t < 16; t++) {
				// Lanes past the last key repeat it.
				const float *k = kp + offs[j0 + (t < n ? t : n - 1)];
				__m512 a = _mm512_mul_ps(_mm512_loadu_ps(k), q0);
				__m512 b = _mm512_mul_ps(_mm512_loadu_ps(k + 16), q1);
				a = _mm512_fmadd_ps(_mm512_loadu_ps(k + 32), q2, a);
				b = _mm512_fmadd_ps(_mm512_loadu_ps(k + 48), q3, b);
				acc[t] = _mm512_add_ps(a, b);
			}
			if (h == 0) {
				for (int t = 0; t < 16 && j0 + 16 + t < len; t++) {
					_mm_prefetch((const char *)(kp + offs[j0 + 16 + t]), _MM_HINT_T0);
					_mm_prefetch((const char *)(kp + offs[j0 + 16 + t] + 32), _MM_HINT_T0);
				}
			}
			__m512 b[8], c[4], d[2];
#pragma GCC unroll 8
			for (int t = 0; t < 8; t++) b[t] = fold(acc[2 * t], acc[2 * t + 1], lo[0], hi[0]);
#pragma GCC unroll 4
			for (int t = 0; t < 4; t++) c[t] = fold(b[2 * t], b[2 * t + 1], lo[1], hi[1]);
#pragma GCC unroll 2
			for (int t = 0; t < 2; t++) d[t] = fold(c[2 * t], c[2 * t + 1], lo[2], hi[2]);
			__m512 s = _mm512_mul_ps(fold(d[0], d[1], lo[3], hi[3]), _mm512_set1_ps(scale));
			mv = _mm512_max_ps(mv, s);
			_mm512_mask_storeu_ps(sc + j0, (__mmask16)((1u << n) - 1), s);
		}
		float mx = _mm512_reduce_max_ps(mv);
		// Softmax weights in place; the sum in float64 per 16-lane block.
		__m512 m = _mm512_set1_ps(mx);
		double sum = 0;
		int j = 0;
		for (; j + 16 <= len; j += 16) {
			__m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(sc + j), m));
			_mm512_storeu_ps(sc + j, e);
			sum += hsum16(e);
		}
		if (j < len) {
			__mmask16 t = (__mmask16)((1u << (len - j)) - 1);
			__m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, sc + j), m));
			e = _mm512_maskz_mov_ps(t, e);
			_mm512_mask_storeu_ps(sc + j, t, e);
			sum += hsum16(e);
		}
		float inv = (float)(1 / sum);
		for (j = 0; j < len; j++) sc[j] *= inv;
	}
	// Weighted values: for a pair of heads (the usual GQA group) both
	// outputs stay in registers and each value row is loaded once.
	if (g == 2) {
		__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
		const float *p0 = scores, *p1 = scores + len;
		for (int j = 0; j < len; j++) {
			const float *v = vp + offs[j];
			if (j + 8 < len) {
				_mm_prefetch((const char *)(vp + offs[j + 8]), _MM_HINT_T0);
				_mm_prefetch((const char *)(vp + offs[j + 8] + 32), _MM_HINT_T0);
			}
			__m512 v0 = _mm512_loadu_ps(v), v1 = _mm512_loadu_ps(v + 16);
			__m512 v2 = _mm512_loadu_ps(v + 32), v3 = _mm512_loadu_ps(v + 48);
			__m512 x = _mm512_set1_ps(p0[j]), y = _mm512_set1_ps(p1[j]);
			a0 = _mm512_fmadd_ps(v0, x, a0), a1 = _mm512_fmadd_ps(v1, x, a1);
			a2 = _mm512_fmadd_ps(v2, x, a2), a3 = _mm512_fmadd_ps(v3, x, a3);
			b0 = _mm512_fmadd_ps(v0, y, b0), b1 = _mm512_fmadd_ps(v1, y, b1);
			b2 = _mm512_fmadd_ps(v2, y, b2), b3 = _mm512_fmadd_ps(v3, y, b3);
		}
		_mm512_storeu_ps(out, a0), _mm512_storeu_ps(out + 16, a1);
		_mm512_storeu_ps(out + 32, a2), _mm512_storeu_ps(out + 48, a3);
		_mm512_storeu_ps(out + 64, b0), _mm512_storeu_ps(out + 80, b1);
		_mm512_storeu_ps(out + 96, b2), _mm512_storeu_ps(out + 112, b3);
		return;
	}
	for (int h = 0; h < g; h++) {
		__m512 o0 = _mm512_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
		const float *p = scores + (int64_t)h * len;
		for (int j = 0; j < len; j++) {
			const float *v = vp + offs[j];
			__m512 pj = _mm512_set1_ps(p[j]);
			o0 = _mm512_fmadd_ps(_mm512_loadu_ps(v), pj, o0);
			o1 = _mm512_fmadd_ps(_mm512_loadu_ps(v + 16), pj, o1);
			o2 = _mm512_fmadd_ps(_mm512_loadu_ps(v + 32), pj, o2);
			o3 = _mm512_fmadd_ps(_mm512_loadu_ps(v + 48), pj, o3);
		}
		_mm512_storeu_ps(out + h * 64, o0), _mm512_storeu_ps(out + h * 64 + 16, o1);
		_mm512_storeu_ps(out + h * 64 + 32, o2), _mm512_storeu_ps(out + h * 64 + 48, o3);
	}
}

// rl_decode_attn attends the group query heads q[group × hd] to the len
// cached positions whose key and value rows start at kp+offs[j] and
// vp+offs[j], writing out[group × hd]; scores holds group × len floats of
// scratch. It returns 0, doing nothing, when it has no kernel for the
// shape (the caller then runs the Go code); the caller checks for AVX-512.
RL_AVX512 int rl_decode_attn(const float *q, int group, int hd, const float *kp, const float *vp, const int64_t *offs,
                             int len, float scale, float *scores, float *out) {
	if (hd != 64 || len < 1) return 0;
	attn64(q, group, kp, vp, offs, len, scale, scores, out);
	return 1;
}

#endif
