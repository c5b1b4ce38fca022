// Token sampling on the device: temperature, top-k, top-p and min-p, with
// the CPU sampler's counter-based random stream (internal/rng: SplitMix64
// hashes of (seed, prompt, sample, step)), so a draw is the same number on
// every backend and under the emulator. One block per row; the filters are
// found by bisection over the weights' bit patterns with block-wide counts
// and sums, so nothing is sorted and no [rows × vocab] scratch is needed.
// The semantics are rollout.Sampler's (see SampleReference in sample.go):
// tokens rank by weight, lower id first on ties.
#include "cuda_compat.cuh"

typedef unsigned long long u64;

// mix64 is the SplitMix64 finaliser (Stafford's variant 13).
__device__ __forceinline__ u64 mix64(u64 x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// uniform_draw is internal/rng.Uniform: a double in [0, 1) with 53 bits of
// the hash of (seed, prompt, sample, step).
__device__ __forceinline__ double uniform_draw(u64 seed, u64 prompt, u64 sample, u64 step) {
  u64 h = mix64(seed + 0x9e3779b97f4a7c15ull);
  h = mix64(h ^ (prompt + 0x3c6ef372fe94f82aull));
  h = mix64(h ^ (sample + 0xdaa66d2c7ddf743full));
  h = mix64(h ^ (step + 0x78dde6e5fd29f054ull));
  return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

__device__ __forceinline__ double weight(const float* z, int i, float mx, double invT) {
  return exp(((double)z[i] - (double)mx) * invT);
}

// Block-wide sum and count helpers over the row, with a predicate on the
// weight and id.
#define ROW_SUM(expr, out)                                          \
  do {                                                              \
    double acc_ = 0;                                                \
    for (int i = threadIdx.x; i < V; i += blockDim.x) acc_ += (expr); \
    out = block_sum(acc_, dscratch);                                \
  } while (0)

// draws holds (prompt, sample, step) for each row. With no filter active a
// zero weight is never the fallback token (rounding left the target at or
// above the mass), with filters the last candidate is, as on the CPU.
extern "C" __global__ void sample_rows(int* tokens, float* logprobs, const float* logits, int V, const u64* draws,
                                       u64 seed, int greedy, double invT, int topK, double topP, double minP) {
  __shared__ double dscratch[32];
  __shared__ float vbest[32];
  __shared__ int ibest[32];
  const int r = blockIdx.x;
  const float* z = logits + (long long)r * V;

  // Argmax, lowest id on ties.
  float bv = -INFINITY;
  int bi = V;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    if (z[i] > bv) {
      bv = z[i];
      bi = i;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(FULL_MASK, bv, o);
    const int oi = __shfl_xor_sync(FULL_MASK, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) {
      bv = ov;
      bi = oi;
    }
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) {
    vbest[threadIdx.x >> 5] = bv;
    ibest[threadIdx.x >> 5] = bi;
  }
  __syncthreads();
  bv = vbest[0];
  bi = ibest[0];
  for (int w = 1; w < (int)(blockDim.x >> 5); w++) {
    if (vbest[w] > bv || (vbest[w] == bv && ibest[w] < bi)) {
      bv = vbest[w];
      bi = ibest[w];
    }
  }
  const float mx = bv;
  const double it = greedy ? 1.0 : invT;
  double total;
  ROW_SUM(weight(z, i, mx, it), total);
  const double lse = log(total);
  int tok = bi;
  if (!greedy) {
    // Candidate set: w > wT, or w == wT and id <= idT (the top-k cut), then
    // the top-p cut (w > pT, or w == pT and id <= pId), then min-p.
    double wT = 0;
    int idT = V;
    if (topK > 0 && topK < V) {
      // Largest weight bit pattern b with #{w >= b} >= k.
      u64 lo = 0, hi = 0x3FF0000000000000ull;  // bits of 1.0, the largest weight
      while (lo < hi) {
        const u64 mid = lo + (hi - lo + 1) / 2;
        const double v = __longlong_as_double((long long)mid);
        double c;
        ROW_SUM(weight(z, i, mx, it) >= v ? 1.0 : 0.0, c);
        if (c >= topK) lo = mid; else hi = mid - 1;
      }
      wT = __longlong_as_double((long long)lo);
      double above;
      ROW_SUM(weight(z, i, mx, it) > wT ? 1.0 : 0.0, above);
      const int need = topK - (int)above;
      // Smallest id m with #{w == wT, id <= m} >= need.
      int a = 0, b = V - 1;
      while (a < b) {
        const int m = a + (b - a) / 2;
        double c;
        ROW_SUM((i <= m && weight(z, i, mx, it) == wT) ? 1.0 : 0.0, c);
        if (c >= need) b = m; else a = m + 1;
      }
      idT = a;
    }
#define IN_TOPK(w, i) ((w) > wT || ((w) == wT && (i) <= idT))
    double pT = 0;
    int pId = V;
    if (topP < 1) {
      double candMass;
      ROW_SUM(IN_TOPK(weight(z, i, mx, it), i) ? weight(z, i, mx, it) : 0.0, candMass);
      const double target = (double)topP * candMass;
      // Smallest bit pattern b with M(b) = Σ_{cand, w > b} w < target.
      u64 lo = 0, hi = 0x3FF0000000000000ull;
      while (lo < hi) {
        const u64 mid = lo + (hi - lo) / 2;
        const double v = __longlong_as_double((long long)mid);
        double M;
        ROW_SUM((IN_TOPK(weight(z, i, mx, it), i) && weight(z, i, mx, it) > v) ? weight(z, i, mx, it) : 0.0, M);
        if (M < target) hi = mid; else lo = mid + 1;
      }
      pT = __longlong_as_double((long long)lo);
      if (pT > 0) {
        double M;
        ROW_SUM((IN_TOPK(weight(z, i, mx, it), i) && weight(z, i, mx, it) > pT) ? weight(z, i, mx, it) : 0.0, M);
        // Equal-weight candidates are kept while the mass ranked before
        // them is below target: the first nEq of them in id order.
        // At least the top-ranked token survives (target 0 keeps one).
        const double nEq = M == 0 && target <= 0 ? 1.0 : ceil((target - M) / pT);
        int a = 0, b = V - 1;
        double cAll;
        ROW_SUM((IN_TOPK(weight(z, i, mx, it), i) && weight(z, i, mx, it) == pT) ? 1.0 : 0.0, cAll);
        if (nEq >= cAll) {
          pId = V;
        } else {
          while (a < b) {
            const int m = a + (b - a) / 2;
            double c;
            ROW_SUM((i <= m && IN_TOPK(weight(z, i, mx, it), i) && weight(z, i, mx, it) == pT) ? 1.0 : 0.0, c);
            if (c >= nEq) b = m; else a = m + 1;
          }
          pId = a;
        }
      }
    }
#define KEPT(w, i) (IN_TOPK(w, i) && ((w) > pT || ((w) == pT && (i) <= pId)) && (w) >= (double)minP)
    const bool filtered = (topK > 0 && topK < V) || topP < 1 || minP > 0;
    // Inverse CDF in id order: each thread owns a contiguous range.
    const int chunk = (V + blockDim.x - 1) / blockDim.x;
    const int i0 = threadIdx.x * chunk, i1 = imin(V, i0 + chunk);
    double own = 0;
    int lastKept = -1;
    for (int i = i0; i < i1; i++) {
      const double w = weight(z, i, mx, it);
      if (KEPT(w, i)) {
        own += w;
        if (w > 0 || filtered) lastKept = i;
      }
    }
    const double keptMass = block_sum(own, dscratch);
    const u64* d = draws + 3 * (long long)r;
    const double target = uniform_draw(seed, d[0], d[1], d[2]) * keptMass;
    // Exclusive prefix of the per-thread sums, and the last kept id overall.
    __shared__ double prefix[1024];
    __shared__ int lastIds[1024];
    __shared__ int chosen;
    prefix[threadIdx.x] = own;
    lastIds[threadIdx.x] = lastKept;
    __syncthreads();
    if (threadIdx.x == 0) {
      double run = 0;
      int last = bi;
      for (int t = 0; t < (int)blockDim.x; t++) {
        const double s = prefix[t];
        prefix[t] = run;
        run += s;
        if (lastIds[t] >= 0) last = lastIds[t];
      }
      chosen = last;  // rounding left target at or above the kept mass
    }
    __syncthreads();
    double cum = prefix[threadIdx.x];
    int mine = -1;
    if (cum + own > target) {
      for (int i = i0; i < i1; i++) {
        const double w = weight(z, i, mx, it);
        if (!KEPT(w, i)) continue;
        cum += w;
        if (cum > target) {
          mine = i;
          break;
        }
      }
    }
    // The lowest id among threads that found the crossing wins.
    __syncthreads();
    if (mine >= 0) atomicMin(&chosen, mine);
    __syncthreads();
    tok = chosen;
  }
  if (threadIdx.x == 0) {
    tokens[r] = tok;
    logprobs[r] = (float)(((double)z[tok] - (double)mx) * it - lse);
  }
}
