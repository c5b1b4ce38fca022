// Causal grouped-query attention over fused QKV rows (see kernels.AttnShape),
// flash-attention style: key/value tiles are staged in shared memory and
// each query row keeps an online softmax (running max m and sum l), so the
// T×T score matrix is never stored. One thread owns one query row (forward
// and dQ) or one key row (dK, dV); the backward pass recomputes the
// probabilities from the saved log-sum-exp.
#include "cuda_compat.cuh"

// Layout helpers: row r of the fused QKV matrix has (H+2·KVH)·hd floats.
#define QOFF(h) ((h) * hd)
#define KOFF(g) ((H + (g)) * hd)
#define VOFF(g) ((H + KVH + (g)) * hd)

__device__ __forceinline__ float dotv(const float* a, const float* b, int n) {
  float s = 0;
  for (int d = 0; d < n; d++) s += a[d] * b[d];
  return s;
}

// attn_fwd: grid (ceil(T/blockDim.x), H, batch); dynamic shared memory
// 2·tile·hd floats.
extern "C" __global__ void attn_fwd(float* out, float* lse, const float* qkv, const int* lens, int T, int H, int KVH,
                                    int hd, float scale, int tile) {
  DYN_SHARED(float, sm);
  float* ks = sm;
  float* vs = sm + tile * hd;
  const int b = blockIdx.z, h = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
  const int L = lens ? lens[b] : T;
  const int S = (H + 2 * KVH) * hd, g = h / (H / KVH);
  const long long base = (long long)b * T;
  const bool active = i < L;
  float q[MAX_HEAD_DIM], acc[MAX_HEAD_DIM];
  float m = -INFINITY, l = 0;
  if (active) {
    for (int d = 0; d < hd; d++) {
      q[d] = qkv[(base + i) * S + QOFF(h) + d] * scale;
      acc[d] = 0;
    }
  }
  const int kend = imin(L, (blockIdx.x + 1) * blockDim.x);
  for (int j0 = 0; j0 < kend; j0 += tile) {
    const int nt = imin(tile, kend - j0);
    __syncthreads();
    for (int e = threadIdx.x; e < nt * hd; e += blockDim.x) {
      const long long row = base + j0 + e / hd;
      ks[e] = qkv[row * S + KOFF(g) + e % hd];
      vs[e] = qkv[row * S + VOFF(g) + e % hd];
    }
    __syncthreads();
    if (!active) continue;
    const int jmax = imin(nt, i - j0 + 1);
    for (int jj = 0; jj < jmax; jj++) {
      const float s = dotv(q, ks + jj * hd, hd);
      const float mn = fmaxf(m, s);
      const float corr = expf(m - mn), p = expf(s - mn);
      l = l * corr + p;
      for (int d = 0; d < hd; d++) acc[d] = acc[d] * corr + p * vs[jj * hd + d];
      m = mn;
    }
  }
  if (i >= T) return;
  float* o = out + (base + i) * H * hd + (long long)h * hd;
  const float inv = active ? 1.0f / l : 0.0f;
  for (int d = 0; d < hd; d++) o[d] = active ? acc[d] * inv : 0.0f;
  lse[((long long)b * H + h) * T + i] = active ? m + logf(l) : 0.0f;
}

// attn_bwd_dq writes the query columns of dqkv and, in dsum, each query
// row's D = dO·O for attn_bwd_dkv. Same grid and shared memory as attn_fwd.
extern "C" __global__ void attn_bwd_dq(float* dqkv, float* dsum, const float* dout, const float* qkv,
                                       const float* out, const float* lse, const int* lens, int T, int H, int KVH,
                                       int hd, float scale, int tile) {
  DYN_SHARED(float, sm);
  float* ks = sm;
  float* vs = sm + tile * hd;
  const int b = blockIdx.z, h = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
  const int L = lens ? lens[b] : T;
  const int S = (H + 2 * KVH) * hd, g = h / (H / KVH);
  const long long base = (long long)b * T;
  const bool active = i < L;
  float q[MAX_HEAD_DIM], dO[MAX_HEAD_DIM], dq[MAX_HEAD_DIM];
  float D = 0, li = 0;
  if (active) {
    const float* o = out + (base + i) * H * hd + (long long)h * hd;
    const float* dy = dout + (base + i) * H * hd + (long long)h * hd;
    for (int d = 0; d < hd; d++) {
      q[d] = qkv[(base + i) * S + QOFF(h) + d];
      dO[d] = dy[d];
      dq[d] = 0;
      D += dy[d] * o[d];
    }
    li = lse[((long long)b * H + h) * T + i];
  }
  const int kend = imin(L, (blockIdx.x + 1) * blockDim.x);
  for (int j0 = 0; j0 < kend; j0 += tile) {
    const int nt = imin(tile, kend - j0);
    __syncthreads();
    for (int e = threadIdx.x; e < nt * hd; e += blockDim.x) {
      const long long row = base + j0 + e / hd;
      ks[e] = qkv[row * S + KOFF(g) + e % hd];
      vs[e] = qkv[row * S + VOFF(g) + e % hd];
    }
    __syncthreads();
    if (!active) continue;
    const int jmax = imin(nt, i - j0 + 1);
    for (int jj = 0; jj < jmax; jj++) {
      const float p = expf(dotv(q, ks + jj * hd, hd) * scale - li);
      const float ds = p * (dotv(dO, vs + jj * hd, hd) - D) * scale;
      for (int d = 0; d < hd; d++) dq[d] += ds * ks[jj * hd + d];
    }
  }
  if (i >= T) return;
  float* dst = dqkv + (base + i) * S + QOFF(h);
  for (int d = 0; d < hd; d++) dst[d] = active ? dq[d] : 0.0f;
  dsum[((long long)b * H + h) * T + i] = D;
}

// attn_bwd_dkv writes the key and value columns of dqkv: one thread per key
// row j of KV head g, summing over the heads of its group and the queries
// i ≥ j. grid (ceil(T/blockDim.x), KVH, batch); dynamic shared memory
// (2·hd + 2)·tile floats.
extern "C" __global__ void attn_bwd_dkv(float* dqkv, const float* dout, const float* qkv, const float* lse,
                                        const float* dsum, const int* lens, int T, int H, int KVH, int hd,
                                        float scale, int tile) {
  DYN_SHARED(float, sm);
  float* qs = sm;
  float* dos = sm + tile * hd;
  float* ls = sm + 2 * tile * hd;
  float* Ds = ls + tile;
  const int b = blockIdx.z, g = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
  const int L = lens ? lens[b] : T;
  const int S = (H + 2 * KVH) * hd, group = H / KVH;
  const long long base = (long long)b * T;
  const bool active = j < L;
  float k[MAX_HEAD_DIM], v[MAX_HEAD_DIM], dk[MAX_HEAD_DIM], dv[MAX_HEAD_DIM];
  if (active) {
    for (int d = 0; d < hd; d++) {
      k[d] = qkv[(base + j) * S + KOFF(g) + d];
      v[d] = qkv[(base + j) * S + VOFF(g) + d];
      dk[d] = 0;
      dv[d] = 0;
    }
  }
  const int qstart = blockIdx.x * blockDim.x;
  for (int h = g * group; h < (g + 1) * group; h++) {
    for (int i0 = qstart; i0 < L; i0 += tile) {
      const int nt = imin(tile, L - i0);
      __syncthreads();
      for (int e = threadIdx.x; e < nt * hd; e += blockDim.x) {
        const long long row = base + i0 + e / hd;
        qs[e] = qkv[row * S + QOFF(h) + e % hd];
        dos[e] = dout[row * H * hd + (long long)h * hd + e % hd];
      }
      for (int e = threadIdx.x; e < nt; e += blockDim.x) {
        ls[e] = lse[((long long)b * H + h) * T + i0 + e];
        Ds[e] = dsum[((long long)b * H + h) * T + i0 + e];
      }
      __syncthreads();
      if (!active) continue;
      for (int ii = imax(0, j - i0); ii < nt; ii++) {
        const float* qi = qs + ii * hd;
        const float* doi = dos + ii * hd;
        const float p = expf(dotv(qi, k, hd) * scale - ls[ii]);
        const float ds = p * (dotv(doi, v, hd) - Ds[ii]) * scale;
        for (int d = 0; d < hd; d++) {
          dv[d] += p * doi[d];
          dk[d] += ds * qi[d];
        }
      }
    }
  }
  if (j >= T) return;
  float* dkr = dqkv + (base + j) * S + KOFF(g);
  float* dvr = dqkv + (base + j) * S + VOFF(g);
  for (int d = 0; d < hd; d++) {
    dkr[d] = active ? dk[d] : 0.0f;
    dvr[d] = active ? dv[d] : 0.0f;
  }
}

// attn_decode attends one query row per sequence against the paged cache:
// grid (H, sequences), one warp per block. Lanes take keys round-robin with
// their own online softmax and merge at the end with shuffles.
extern "C" __global__ void attn_decode(float* out, const float* q, int qStride, const float* kPool,
                                       const float* vPool, const int* slots, const int* slotOff, const int* lens,
                                       int H, int KVH, int hd, float scale) {
  const int s = blockIdx.y, h = blockIdx.x, g = h / (H / KVH), lane = threadIdx.x;
  const int width = KVH * hd;
  const int L = lens[s];
  const int* sl = slots + slotOff[s];
  float qv[MAX_HEAD_DIM], acc[MAX_HEAD_DIM];
  for (int d = 0; d < hd; d++) {
    qv[d] = q[(long long)s * qStride + QOFF(h) + d] * scale;
    acc[d] = 0;
  }
  float m = -INFINITY, l = 0;
  for (int j = lane; j < L; j += 32) {
    const long long off = (long long)sl[j] * width + (long long)g * hd;
    const float sc = dotv(qv, kPool + off, hd);
    const float mn = fmaxf(m, sc);
    const float corr = expf(m - mn), p = expf(sc - mn);
    l = l * corr + p;
    for (int d = 0; d < hd; d++) acc[d] = acc[d] * corr + p * vPool[off + d];
    m = mn;
  }
  const float M = warp_max(m);
  const float c = l > 0 ? expf(m - M) : 0.0f;
  l = warp_sum(l * c);
  float* o = out + ((long long)s * H + h) * hd;
  for (int d = 0; d < hd; d++) {
    const float a = warp_sum(acc[d] * c);
    if (lane == d % 32) o[d] = L > 0 ? a / l : 0.0f;
  }
}
