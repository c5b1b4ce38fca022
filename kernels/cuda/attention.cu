// Causal grouped-query attention over fused QKV rows (see kernels.AttnShape),
// flash-attention style: the T×T score matrix is never stored; key/value
// tiles are staged in shared memory and every query row keeps an online
// softmax (running max m and sum l). The backward pass recomputes the
// probabilities from the saved log-sum-exp.
//
// Work is shared within a warp rather than owned by one thread: a warp
// takes `rpw` rows (queries, or keys in the dK/dV pass) at once. For the
// scores a lane takes one key of the tile (or two lanes take half of its
// dimensions each when the tile has 16 keys) and computes its dot products
// with all of the warp's rows, so every shared-memory read of a key feeds
// rpw products; the softmax statistics are warp reductions; for the
// weighted sums over the tile a lane owns head dimensions lane, lane+32,
// ..., which keeps each row's accumulator in registers (at most
// MAX_HEAD_DIM/32 floats per row and lane, indexed only by unrolled loop
// counters). Each output value is produced by one lane in a fixed order,
// so every kernel is deterministic; no floating-point atomics.
//
// The host (attention.go) picks the tile (32 keys, 16 when head_dim > 128)
// and rpw so that shared memory stays within 48 KiB.
#include "cuda_compat.cuh"

// Warps per block and the most rows a warp takes.
#define ATT_WARPS 4
#define ATT_RPW 4
// Head dimensions per lane in the accumulators.
#define ATT_DPL (MAX_HEAD_DIM / 32)

// Layout helpers: row r of the fused QKV matrix has (H+2·KVH)·hd floats.
#define QOFF(h) ((h) * hd)
#define KOFF(g) ((H + (g)) * hd)
#define VOFF(g) ((H + KVH + (g)) * hd)

// KeySplit is a lane's share of the score phase: key j of the tile, over
// head dimensions [dlo, dhi). With a 32-key tile a lane takes a whole key;
// with a 16-key tile lanes j and j+16 take the two halves of key j.
struct KeySplit {
  int j, dlo, dhi;
  bool lead;  // the lane that publishes key j's values
};

__device__ __forceinline__ KeySplit key_split(int lane, int tile, int hd) {
  KeySplit s;
  s.j = lane % tile;
  const int part = lane / tile, half = hd / 2;
  s.dlo = tile == 32 ? 0 : (part == 0 ? 0 : half);
  s.dhi = tile == 32 ? hd : (part == 0 ? half : hd);
  s.lead = part == 0;
  return s;
}

// join_halves adds the partial dot products of lanes j and j+16 when a
// 16-key tile splits each key over two lanes.
__device__ __forceinline__ float join_halves(float v, int tile) {
  if (tile == 16) v += __shfl_xor_sync(FULL_MASK, v, 16);
  return v;
}

// load_rows copies n rows of hd floats (row i at src + i·srcStride) into
// shared memory with row stride dstStride, using every thread of the block.
__device__ __forceinline__ void load_rows(float* dst, int dstStride, const float* src, long long srcStride, int n,
                                          int hd, float mul) {
  for (int e = threadIdx.x; e < n * hd; e += blockDim.x) {
    const int r = e / hd, d = e - r * hd;
    dst[r * dstStride + d] = src[r * srcStride + d] * mul;
  }
}

// OnlineRows is the online-softmax state of a warp's rows: running max,
// running sum and the lane's share of each output row.
struct OnlineRows {
  float m[ATT_RPW], l[ATT_RPW];
  float acc[ATT_RPW][ATT_DPL];
};

__device__ __forceinline__ void online_init(OnlineRows& st) {
#pragma unroll
  for (int r = 0; r < ATT_RPW; r++) {
    st.m[r] = -INFINITY;
    st.l[r] = 0;
#pragma unroll
    for (int k = 0; k < ATT_DPL; k++) st.acc[r][k] = 0;
  }
}

// online_tile folds a tile of nt keys (ks: stride kst, vs: stride hd, both
// in shared memory) into the warp's rows. qw holds the rows' (pre-scaled)
// queries, stride hd; row r sees the first nv[r] keys of the tile (0: the
// row skips the tile). pw is the warp's rpw×32 probability buffer.
__device__ __forceinline__ void online_tile(OnlineRows& st, const float* qw, const float* ks, int kst,
                                            const float* vs, int nt, const int* nv, int rpw, int hd, int tile,
                                            float* pw) {
  const int lane = threadIdx.x & 31;
  const KeySplit ksp = key_split(lane, tile, hd);
  float s[ATT_RPW];
#pragma unroll
  for (int r = 0; r < ATT_RPW; r++) s[r] = 0;
  if (ksp.j < nt) {
    const float* kr = ks + ksp.j * kst;
    for (int d = ksp.dlo; d < ksp.dhi; d++) {
      const float kd = kr[d];
#pragma unroll
      for (int r = 0; r < ATT_RPW; r++)
        if (r < rpw) s[r] += qw[r * hd + d] * kd;
    }
  }
  float corr[ATT_RPW];
#pragma unroll
  for (int r = 0; r < ATT_RPW; r++) {
    corr[r] = 1;
    if (r >= rpw || nv[r] <= 0) continue;  // uniform across the warp
    const float joined = join_halves(s[r], tile);  // every lane takes part in the shuffle
    const float sc = ksp.j < nv[r] ? joined : -INFINITY;
    const float mn = fmaxf(st.m[r], warp_max(sc));
    corr[r] = expf(st.m[r] - mn);
    const float p = ksp.j < nv[r] ? expf(sc - mn) : 0.0f;
    if (ksp.lead) pw[r * 32 + ksp.j] = p;
    st.l[r] = st.l[r] * corr[r] + warp_sum(ksp.lead ? p : 0.0f);
    st.m[r] = mn;
  }
  __syncwarp();
#pragma unroll
  for (int k = 0; k < ATT_DPL; k++) {
    const int d = lane + 32 * k;
    if (d >= hd) break;
    float a[ATT_RPW];
#pragma unroll
    for (int r = 0; r < ATT_RPW; r++) a[r] = st.acc[r][k] * corr[r];
    for (int jj = 0; jj < nt; jj++) {
      const float vd = vs[jj * hd + d];
#pragma unroll
      for (int r = 0; r < ATT_RPW; r++)
        if (r < rpw && nv[r] > 0) a[r] += (jj < nv[r] ? pw[r * 32 + jj] : 0.0f) * vd;
    }
#pragma unroll
    for (int r = 0; r < ATT_RPW; r++) st.acc[r][k] = a[r];
  }
  __syncwarp();  // pw is rewritten by the next tile
}

// attn_fwd: grid (ceil(T / (ATT_WARPS·rpw)), H, batch), ATT_WARPS warps;
// warp w takes query rows blockIdx.x·ATT_WARPS·rpw + w·rpw + [0, rpw).
// Dynamic shared memory: tile·(hd+1) + tile·hd + ATT_WARPS·rpw·(hd+32)
// floats.
extern "C" __global__ void attn_fwd(float* out, float* lse, const float* qkv, const int* lens, int T, int H, int KVH,
                                    int hd, float scale, int tile, int rpw) {
  DYN_SHARED(float, sm);
  const int kst = hd + 1;
  float* ks = sm;
  float* vs = ks + tile * kst;
  float* qs = vs + tile * hd;
  float* ps = qs + ATT_WARPS * rpw * hd;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int b = blockIdx.z, h = blockIdx.y;
  const int L = lens ? lens[b] : T;
  const int S = (H + 2 * KVH) * hd, g = h / (H / KVH);
  const long long base = (long long)b * T;
  const int row0 = blockIdx.x * ATT_WARPS * rpw, wrow0 = row0 + warp * rpw;
  float* qw = qs + warp * rpw * hd;
  float* pw = ps + warp * rpw * 32;
  // The block's query rows, pre-scaled (rows past L are never read).
  const int nq = imax(0, imin(ATT_WARPS * rpw, L - row0));
  load_rows(qs, hd, qkv + (base + row0) * S + QOFF(h), S, nq, hd, scale);
  OnlineRows st;
  online_init(st);
  const int kend = imin(L, row0 + ATT_WARPS * rpw);
  for (int j0 = 0; j0 < kend; j0 += tile) {
    const int nt = imin(tile, kend - j0);
    __syncthreads();  // the previous tile is no longer read
    load_rows(ks, kst, qkv + (base + j0) * S + KOFF(g), S, nt, hd, 1.0f);
    load_rows(vs, hd, qkv + (base + j0) * S + VOFF(g), S, nt, hd, 1.0f);
    __syncthreads();
    int nv[ATT_RPW];
    bool any = false;
#pragma unroll
    for (int r = 0; r < ATT_RPW; r++) {
      const int i = wrow0 + r;
      nv[r] = r < rpw && i < L ? imin(nt, i - j0 + 1) : 0;
      any |= nv[r] > 0;
    }
    if (any) online_tile(st, qw, ks, kst, vs, nt, nv, rpw, hd, tile, pw);
  }
#pragma unroll
  for (int r = 0; r < ATT_RPW; r++) {
    const int i = wrow0 + r;
    if (r >= rpw || i >= T) continue;
    const bool active = i < L;
    const float inv = active ? 1.0f / st.l[r] : 0.0f;
    float* o = out + (base + i) * H * hd + (long long)h * hd;
#pragma unroll
    for (int k = 0; k < ATT_DPL; k++) {
      const int d = lane + 32 * k;
      if (d < hd) o[d] = active ? st.acc[r][k] * inv : 0.0f;
    }
    if (lane == 0) lse[((long long)b * H + h) * T + i] = active ? st.m[r] + logf(st.l[r]) : 0.0f;
  }
}

// attn_bwd_dq writes the query columns of dqkv and, in dsum, each query
// row's D = dO·O for attn_bwd_dkv. Grid and warps as attn_fwd; dynamic
// shared memory 2·tile·(hd+1) + ATT_WARPS·rpw·(2·hd+32) floats.
extern "C" __global__ void attn_bwd_dq(float* dqkv, float* dsum, const float* dout, const float* qkv,
                                       const float* out, const float* lse, const int* lens, int T, int H, int KVH,
                                       int hd, float scale, int tile, int rpw) {
  DYN_SHARED(float, sm);
  const int kst = hd + 1;
  float* ks = sm;
  float* vs = ks + tile * kst;
  float* qs = vs + tile * kst;
  float* dos = qs + ATT_WARPS * rpw * hd;
  float* ps = dos + ATT_WARPS * rpw * hd;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int b = blockIdx.z, h = blockIdx.y;
  const int L = lens ? lens[b] : T;
  const int S = (H + 2 * KVH) * hd, g = h / (H / KVH);
  const long long base = (long long)b * T;
  const int row0 = blockIdx.x * ATT_WARPS * rpw, wrow0 = row0 + warp * rpw;
  const int nq = imax(0, imin(ATT_WARPS * rpw, L - row0));
  load_rows(qs, hd, qkv + (base + row0) * S + QOFF(h), S, nq, hd, 1.0f);
  load_rows(dos, hd, dout + (base + row0) * H * hd + (long long)h * hd, (long long)H * hd, nq, hd, 1.0f);
  const float* qw = qs + warp * rpw * hd;
  const float* dow = dos + warp * rpw * hd;
  float* pw = ps + warp * rpw * 32;
  float li[ATT_RPW], Di[ATT_RPW], dq[ATT_RPW][ATT_DPL];
#pragma unroll
  for (int r = 0; r < ATT_RPW; r++) {
    const int i = wrow0 + r;
    li[r] = 0;
    Di[r] = 0;
#pragma unroll
    for (int k = 0; k < ATT_DPL; k++) dq[r][k] = 0;
    if (r >= rpw || i >= L) continue;
    const float* o = out + (base + i) * H * hd + (long long)h * hd;
    const float* dy = dout + (base + i) * H * hd + (long long)h * hd;
    float part = 0;
    for (int d = lane; d < hd; d += 32) part += dy[d] * o[d];
    Di[r] = warp_sum(part);
    li[r] = lse[((long long)b * H + h) * T + i];
  }
  const KeySplit ksp = key_split(lane, tile, hd);
  const int kend = imin(L, row0 + ATT_WARPS * rpw);
  for (int j0 = 0; j0 < kend; j0 += tile) {
    const int nt = imin(tile, kend - j0);
    __syncthreads();
    load_rows(ks, kst, qkv + (base + j0) * S + KOFF(g), S, nt, hd, 1.0f);
    load_rows(vs, kst, qkv + (base + j0) * S + VOFF(g), S, nt, hd, 1.0f);
    __syncthreads();
    int nv[ATT_RPW];
    bool any = false;
#pragma unroll
    for (int r = 0; r < ATT_RPW; r++) {
      const int i = wrow0 + r;
      nv[r] = r < rpw && i < L ? imin(nt, i - j0 + 1) : 0;
      any |= nv[r] > 0;
    }
    if (!any) continue;  // uniform across the warp
    float s[ATT_RPW], dp[ATT_RPW];
#pragma unroll
    for (int r = 0; r < ATT_RPW; r++) s[r] = dp[r] = 0;
    if (ksp.j < nt) {
      const float* kr = ks + ksp.j * kst;
      const float* vr = vs + ksp.j * kst;
      for (int d = ksp.dlo; d < ksp.dhi; d++) {
        const float kd = kr[d], vd = vr[d];
#pragma unroll
        for (int r = 0; r < ATT_RPW; r++)
          if (r < rpw) {
            s[r] += qw[r * hd + d] * kd;
            dp[r] += dow[r * hd + d] * vd;
          }
      }
    }
#pragma unroll
    for (int r = 0; r < ATT_RPW; r++) {
      if (r >= rpw || nv[r] <= 0) continue;
      const float sc = join_halves(s[r], tile), dpr = join_halves(dp[r], tile);
      if (ksp.lead) {
        const float p = ksp.j < nv[r] ? expf(sc * scale - li[r]) : 0.0f;
        pw[r * 32 + ksp.j] = p * (dpr - Di[r]) * scale;
      }
    }
    __syncwarp();
#pragma unroll
    for (int k = 0; k < ATT_DPL; k++) {
      const int d = lane + 32 * k;
      if (d >= hd) break;
      for (int jj = 0; jj < nt; jj++) {
        const float kd = ks[jj * kst + d];
#pragma unroll
        for (int r = 0; r < ATT_RPW; r++)
          if (r < rpw && jj < nv[r]) dq[r][k] += pw[r * 32 + jj] * kd;
      }
    }
    __syncwarp();
  }
#pragma unroll
  for (int r = 0; r < ATT_RPW; r++) {
    const int i = wrow0 + r;
    if (r >= rpw || i >= T) continue;
    const bool active = i < L;
    float* dst = dqkv + (base + i) * S + QOFF(h);
#pragma unroll
    for (int k = 0; k < ATT_DPL; k++) {
      const int d = lane + 32 * k;
      if (d < hd) dst[d] = active ? dq[r][k] : 0.0f;
    }
    if (lane == 0) dsum[((long long)b * H + h) * T + i] = Di[r];
  }
}

// attn_bwd_dkv writes the key and value columns of dqkv. Grid
// (ceil(T / (ATT_WARPS·rpw)), KVH, batch); warp w takes key rows j of KV
// head g and sums over the heads of its group and the queries i ≥ j, query
// tiles staged in shared memory, one query per lane (two half-lanes with
// 16-query tiles). Dynamic shared memory 2·tile·(hd+1) + 2·tile +
// ATT_WARPS·rpw·(2·hd+64) floats.
extern "C" __global__ void attn_bwd_dkv(float* dqkv, const float* dout, const float* qkv, const float* lse,
                                        const float* dsum, const int* lens, int T, int H, int KVH, int hd,
                                        float scale, int tile, int rpw) {
  DYN_SHARED(float, sm);
  const int qst = hd + 1;
  float* qs = sm;
  float* dos = qs + tile * qst;
  float* ls = dos + tile * qst;
  float* Ds = ls + tile;
  float* kw = Ds + tile + (threadIdx.x >> 5) * rpw * hd;
  float* vw = Ds + tile + ATT_WARPS * rpw * hd + (threadIdx.x >> 5) * rpw * hd;
  float* pw = Ds + tile + 2 * ATT_WARPS * rpw * hd + (threadIdx.x >> 5) * rpw * 64;
  float* dsw = pw + rpw * 32;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int b = blockIdx.z, g = blockIdx.y;
  const int L = lens ? lens[b] : T;
  const int S = (H + 2 * KVH) * hd, group = H / KVH;
  const long long base = (long long)b * T;
  const int row0 = blockIdx.x * ATT_WARPS * rpw, wrow0 = row0 + warp * rpw;
  {
    float* ksb = Ds + tile;
    float* vsb = ksb + ATT_WARPS * rpw * hd;
    const int nk = imax(0, imin(ATT_WARPS * rpw, L - row0));
    load_rows(ksb, hd, qkv + (base + row0) * S + KOFF(g), S, nk, hd, 1.0f);
    load_rows(vsb, hd, qkv + (base + row0) * S + VOFF(g), S, nk, hd, 1.0f);
  }
  float dk[ATT_RPW][ATT_DPL], dv[ATT_RPW][ATT_DPL];
#pragma unroll
  for (int r = 0; r < ATT_RPW; r++)
#pragma unroll
    for (int k = 0; k < ATT_DPL; k++) dk[r][k] = dv[r][k] = 0;
  const KeySplit qsp = key_split(lane, tile, hd);  // here: query qsp.j of the tile
  for (int h = g * group; h < (g + 1) * group; h++) {
    for (int i0 = row0; i0 < L; i0 += tile) {
      const int nt = imin(tile, L - i0);
      __syncthreads();
      load_rows(qs, qst, qkv + (base + i0) * S + QOFF(h), S, nt, hd, 1.0f);
      load_rows(dos, qst, dout + (base + i0) * H * hd + (long long)h * hd, (long long)H * hd, nt, hd, 1.0f);
      for (int e = threadIdx.x; e < nt; e += blockDim.x) {
        ls[e] = lse[((long long)b * H + h) * T + i0 + e];
        Ds[e] = dsum[((long long)b * H + h) * T + i0 + e];
      }
      __syncthreads();
      // Key row r sees the queries i ≥ j of the tile: from lo[r] on.
      int lo[ATT_RPW];
      bool any = false;
#pragma unroll
      for (int r = 0; r < ATT_RPW; r++) {
        const int j = wrow0 + r;
        lo[r] = r < rpw && j < L ? imax(0, j - i0) : nt;
        any |= lo[r] < nt;
      }
      if (!any) continue;  // uniform across the warp
      float s[ATT_RPW], dp[ATT_RPW];
#pragma unroll
      for (int r = 0; r < ATT_RPW; r++) s[r] = dp[r] = 0;
      if (qsp.j < nt) {
        const float* qr = qs + qsp.j * qst;
        const float* dor = dos + qsp.j * qst;
        for (int d = qsp.dlo; d < qsp.dhi; d++) {
          const float qd = qr[d], dod = dor[d];
#pragma unroll
          for (int r = 0; r < ATT_RPW; r++)
            if (r < rpw) {
              s[r] += kw[r * hd + d] * qd;
              dp[r] += vw[r * hd + d] * dod;
            }
        }
      }
#pragma unroll
      for (int r = 0; r < ATT_RPW; r++) {
        if (r >= rpw || lo[r] >= nt) continue;
        const float sc = join_halves(s[r], tile), dpr = join_halves(dp[r], tile);
        if (qsp.lead) {
          const bool ok = qsp.j >= lo[r] && qsp.j < nt;
          const float p = ok ? expf(sc * scale - ls[qsp.j]) : 0.0f;
          pw[r * 32 + qsp.j] = p;
          dsw[r * 32 + qsp.j] = ok ? p * (dpr - Ds[qsp.j]) * scale : 0.0f;
        }
      }
      __syncwarp();
#pragma unroll
      for (int k = 0; k < ATT_DPL; k++) {
        const int d = lane + 32 * k;
        if (d >= hd) break;
        for (int ii = 0; ii < nt; ii++) {
          const float qd = qs[ii * qst + d], dod = dos[ii * qst + d];
#pragma unroll
          for (int r = 0; r < ATT_RPW; r++)
            if (r < rpw && ii >= lo[r]) {
              dv[r][k] += pw[r * 32 + ii] * dod;
              dk[r][k] += dsw[r * 32 + ii] * qd;
            }
        }
      }
      __syncwarp();
    }
  }
#pragma unroll
  for (int r = 0; r < ATT_RPW; r++) {
    const int j = wrow0 + r;
    if (r >= rpw || j >= T) continue;
    const bool active = j < L;
    float* dkr = dqkv + (base + j) * S + KOFF(g);
    float* dvr = dqkv + (base + j) * S + VOFF(g);
#pragma unroll
    for (int k = 0; k < ATT_DPL; k++) {
      const int d = lane + 32 * k;
      if (d < hd) {
        dkr[d] = active ? dk[r][k] : 0.0f;
        dvr[d] = active ? dv[r][k] : 0.0f;
      }
    }
  }
}

// attn_decode attends one query row per (sequence, head) against the paged
// cache. Grid (KVH·hchunks, sequences, splits): block (x, s, z) stages each
// tile of sequence s's keys [z·chunk, (z+1)·chunk) and values of KV head
// g = x / hchunks once for up to ATT_WARPS·rpw query heads of the group,
// warp w taking heads g·group + (x % hchunks)·ATT_WARPS·rpw + w·rpw +
// [0, rpw). With one split (part null) it writes the attention output;
// otherwise it writes each head's partial softmax state (m, l and the
// unnormalised sums, hd+2 floats at part[((s·H + h)·splits + z)·(hd+2)])
// for attn_decode_combine, so that long contexts with few sequences still
// fill the GPU. Dynamic shared memory as attn_fwd.
extern "C" __global__ void attn_decode(float* out, float* part, const float* q, int qStride, const float* kPool,
                                       const float* vPool, const int* slots, const int* slotOff, const int* lens,
                                       int H, int KVH, int hd, float scale, int tile, int rpw, int hchunks,
                                       int chunk) {
  DYN_SHARED(float, sm);
  const int kst = hd + 1;
  float* ks = sm;
  float* vs = ks + tile * kst;
  float* qs = vs + tile * hd;
  float* ps = qs + ATT_WARPS * rpw * hd;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = blockIdx.x / hchunks, sq = blockIdx.y, group = H / KVH;
  const int width = KVH * hd;
  const int L = lens[sq];
  const int kbeg = blockIdx.z * chunk, kend = imin(L, kbeg + chunk);
  const int* sl = slots + slotOff[sq];
  const int head0 = (blockIdx.x % hchunks) * ATT_WARPS * rpw;  // within the group
  const int nh = imax(0, imin(ATT_WARPS * rpw, group - head0));
  load_rows(qs, hd, q + (long long)sq * qStride + QOFF(g * group + head0), hd, nh, hd, scale);
  float* qw = qs + warp * rpw * hd;
  float* pw = ps + warp * rpw * 32;
  OnlineRows st;
  online_init(st);
  for (int j0 = kbeg; j0 < kend; j0 += tile) {
    const int nt = imin(tile, kend - j0);
    __syncthreads();
    for (int e = threadIdx.x; e < nt * hd; e += blockDim.x) {
      const int jj = e / hd, d = e - jj * hd;
      const long long off = (long long)sl[j0 + jj] * width + (long long)g * hd + d;
      ks[jj * kst + d] = kPool[off];
      vs[jj * hd + d] = vPool[off];
    }
    __syncthreads();
    int nv[ATT_RPW];
    bool any = false;
#pragma unroll
    for (int r = 0; r < ATT_RPW; r++) {
      nv[r] = r < rpw && warp * rpw + r < nh ? nt : 0;
      any |= nv[r] > 0;
    }
    if (any) online_tile(st, qw, ks, kst, vs, nt, nv, rpw, hd, tile, pw);
  }
#pragma unroll
  for (int r = 0; r < ATT_RPW; r++) {
    const int hh = warp * rpw + r;
    if (r >= rpw || hh >= nh) continue;
    const long long h = (long long)g * group + head0 + hh;
    if (part) {
      float* pr = part + ((sq * H + h) * gridDim.z + blockIdx.z) * (hd + 2);
      if (lane == 0) {
        pr[0] = st.m[r];
        pr[1] = st.l[r];
      }
#pragma unroll
      for (int k = 0; k < ATT_DPL; k++) {
        const int d = lane + 32 * k;
        if (d < hd) pr[2 + d] = st.acc[r][k];
      }
      continue;
    }
    float* o = out + (sq * H + h) * hd;
    const float inv = L > 0 ? 1.0f / st.l[r] : 0.0f;
#pragma unroll
    for (int k = 0; k < ATT_DPL; k++) {
      const int d = lane + 32 * k;
      if (d < hd) o[d] = L > 0 ? st.acc[r][k] * inv : 0.0f;
    }
  }
}

// attn_decode_combine merges the splits of attn_decode, in split order:
// grid (H, sequences), one warp per block.
extern "C" __global__ void attn_decode_combine(float* out, const float* part, int H, int hd, int splits) {
  const int h = blockIdx.x, sq = blockIdx.y, lane = threadIdx.x;
  const float* pr = part + ((long long)sq * H + h) * splits * (hd + 2);
  float M = -INFINITY;
  for (int z = 0; z < splits; z++) M = fmaxf(M, pr[z * (hd + 2)]);
  float* o = out + ((long long)sq * H + h) * hd;
  if (M == -INFINITY) {  // no keys at all
    for (int d = lane; d < hd; d += 32) o[d] = 0.0f;
    return;
  }
  float l = 0;
  for (int z = 0; z < splits; z++) {
    const float m = pr[z * (hd + 2)];
    if (m != -INFINITY) l += pr[z * (hd + 2) + 1] * expf(m - M);
  }
  const float inv = 1.0f / l;
  for (int d = lane; d < hd; d += 32) {
    float a = 0;
    for (int z = 0; z < splits; z++) {
      const float m = pr[z * (hd + 2)];
      if (m != -INFINITY) a += pr[z * (hd + 2) + 2 + d] * expf(m - M);
    }
    o[d] = a * inv;
  }
}
