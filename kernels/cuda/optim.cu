// Policy-loss, reduction and optimizer kernels (see kernels.Optim).
#include "cuda_compat.cuh"

// adamw follows torch.optim.AdamW's single-tensor path; the scalars are
// formed on the host exactly as kernels/cpu does.
extern "C" __global__ void adamw(float* p, const float* g, float* m, float* v, int n, float decay, float beta1,
                                 float oneMinusB1, float beta2, float oneMinusB2, float negStep, float bc2Sqrt,
                                 float eps) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const float gi = g[i];
    const float pi = p[i] * decay;
    const float mi = m[i] * beta1 + oneMinusB1 * gi;
    const float vi = v[i] * beta2 + oneMinusB2 * gi * gi;
    const float denom = sqrtf(vi) / bc2Sqrt + eps;
    p[i] = pi + negStep * (mi / denom);
    m[i] = mi;
    v[i] = vi;
  }
}

// sum_squares writes, per block, Σx² over its chunk of `chunk` floats in
// double; the host adds the partials in block order, so the result does not
// depend on the launch shape.
extern "C" __global__ void sum_squares(double* partial, const float* x, int n, int chunk) {
  __shared__ double scratch[32];
  const long long lo = (long long)blockIdx.x * chunk;
  const long long hi = lo + chunk < n ? lo + chunk : n;
  double s = 0;
  for (long long i = lo + threadIdx.x; i < hi; i += blockDim.x) s += (double)x[i] * x[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// segment_sums: one block per segment.
extern "C" __global__ void segment_sums(double* out, const float* x, const float* mask, const int* offsets) {
  __shared__ double scratch[32];
  const int i = blockIdx.x;
  double s = 0;
  for (int t = offsets[i] + threadIdx.x; t < offsets[i + 1]; t += blockDim.x) s += (double)mask[t] * x[t];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) out[i] = s;
}

// segment_broadcast: one block per segment; dst is zeroed beforehand.
extern "C" __global__ void segment_broadcast(float* dst, const float* mask, const int* offsets, const float* coef) {
  const int i = blockIdx.x;
  for (int t = offsets[i] + threadIdx.x; t < offsets[i + 1]; t += blockDim.x) dst[t] = coef[i] * mask[t];
}

// Order of the per-sequence statistics written by policy_loss.
enum {
  ST_PG, ST_KLLOSS, ST_ENTLOSS, ST_TOKENS, ST_SEQ, ST_CLIPLOW, ST_CLIPHIGH, ST_DUAL,
  ST_KL, ST_PPOKL, ST_ENTROPY, ST_RATIO, ST_TIS, ST_COUNT
};

#define MAX_LOG_RATIO 20.0

__device__ __forceinline__ void kl_est(int est, double x, double* kl, double* dkl) {
  if (est == 1) {  // k2
    *kl = 0.5 * x * x;
    *dkl = -x;
  } else if (est == 2) {  // k3, clamped
    if (x > 20 || x < -20) {
      x = x > 20 ? 20 : -20;
      const double k = exp(x) - x - 1;
      *kl = k < 10 ? k : 10;
      *dkl = 0;
      return;
    }
    const double k = exp(x) - x - 1;
    if (k > 10) {
      *kl = 10;
      *dkl = 0;
      return;
    }
    *kl = k;
    *dkl = -(exp(x) - 1);
  } else {  // k1
    *kl = -x;
    *dkl = 1;
  }
}

// clipped_surrogate: a token's pg = max(-A*rho, -A*clip(rho, 1-eL, 1+eH)),
// capped at -c*A for A < 0 when c > 1 (dual clip); *dpg is its derivative
// with respect to log rho. Returns whether the dual cap applied.
__device__ __forceinline__ bool clipped_surrogate(double A, double rho, double eL, double eH, double c, double* pg,
                                                  double* dpg) {
  const double unclipped = -A * rho;
  const double cr = rho > 1 + eH ? 1 + eH : rho;
  const double clipped = -A * (cr < 1 - eL ? 1 - eL : cr);
  *pg = unclipped;
  *dpg = -A * rho;
  if (clipped > unclipped) {
    *pg = clipped;
    *dpg = 0;
  }
  if (c > 1 && A < 0 && *pg > -c * A) {
    *pg = -c * A;
    *dpg = 0;
    return true;
  }
  return false;
}

__device__ __forceinline__ double tis_weight(float old, float roll, float cap) {
  const double d = (double)old - roll;
  const double isw = exp(d < MAX_LOG_RATIO ? d : MAX_LOG_RATIO);
  return isw < cap ? isw : cap;
}

// policy_loss: one block per sequence. dlogp and dent are zeroed
// beforehand; optional inputs are null. stats receives ST_COUNT doubles per
// sequence. Only tokens in [rlo, rhi) are read and written; the weights
// still use whole sequences, and a sequence counts in ST_SEQ in the call
// whose range holds its first token. isLevel 1 (GSPO) and 2 (GSPO-token)
// use the sequence's ratio exp(seqLR[i]) (1 when seqLR is null) for every
// token; see kernels.ISLevel.
extern "C" __global__ void policy_loss(double* stats, float* dlogp, float* dent, const float* logp,
                                       const float* old, const float* roll, const float* ref, const float* adv,
                                       const float* mask, const float* ent, const float* seqLR, int isLevel,
                                       const int* offsets, const int* truncated, float epsLow, float epsHigh,
                                       float clipC, float beta, int klEst, float entCoef, float tisCap, int agg,
                                       double normTokens, int normSeqs, int normMaxLen, int rlo, int rhi) {
  __shared__ double scratch[32];
  const int i = blockIdx.x;
  const int lo = offsets[i], hi = offsets[i + 1];
  double* st = stats + (long long)i * ST_COUNT;
  double seqTokens = 0;
  for (int t = lo + threadIdx.x; t < hi; t += blockDim.x) seqTokens += mask[t];
  seqTokens = block_sum(seqTokens, scratch);
  const bool skip = seqTokens == 0 || (truncated && truncated[i]);
  double acc[ST_COUNT];
  for (int k = 0; k < ST_COUNT; k++) acc[k] = 0;
  double w = 0;
  if (agg == 0) {
    w = normTokens > 0 ? 1 / normTokens : 0;
  } else if (agg == 1) {
    w = seqTokens * normSeqs > 0 ? 1 / (seqTokens * normSeqs) : 0;
  } else if (agg == 2) {
    w = normSeqs > 0 ? 1.0 / normSeqs : 0;
  } else {
    w = (double)normSeqs * normMaxLen > 0 ? 1 / ((double)normSeqs * normMaxLen) : 0;
  }
  // Sequence levels: one ratio for the whole sequence; GSPO's gradient is
  // the same for every token: (1/|o|) * sum_u m_u*isw_u*dpg_u over the whole
  // sequence, times the aggregation weight.
  double seqRho = 1, seqGrad = 0;
  bool seqIn = true;
  if (isLevel != 0) {
    double lr = seqLR ? seqLR[i] : 0;
    seqIn = fabs(lr) <= MAX_LOG_RATIO;
    lr = lr > MAX_LOG_RATIO ? MAX_LOG_RATIO : lr < -MAX_LOG_RATIO ? -MAX_LOG_RATIO : lr;
    seqRho = exp(lr);
  }
  if (isLevel == 1 && !skip) {
    double g = 0;
    for (int u = lo + threadIdx.x; seqIn && u < hi; u += blockDim.x) {
      if (mask[u] == 0) continue;
      double pg, dpg;
      clipped_surrogate(adv[u], seqRho, epsLow, epsHigh, clipC, &pg, &dpg);
      if (roll) dpg *= tis_weight(old[u], roll[u], tisCap);
      g += (double)mask[u] * dpg;
    }
    seqGrad = block_sum(g, scratch) / seqTokens;
  }
  const int tlo = lo > rlo ? lo : rlo, thi = hi < rhi ? hi : rhi;
  for (int t = tlo + threadIdx.x; !skip && t < thi; t += blockDim.x) {
    const float m32 = mask[t];
    if (m32 == 0) continue;
    const double m = m32, wt = w * m;
    const double l = logp[t], A = adv[t];
    const double eL = epsLow, eH = epsHigh;
    double rho = seqRho;
    bool lrIn = seqIn;
    if (isLevel == 0) {
      double lr = l - old[t];
      lrIn = fabs(lr) <= MAX_LOG_RATIO;
      lr = lr > MAX_LOG_RATIO ? MAX_LOG_RATIO : lr < -MAX_LOG_RATIO ? -MAX_LOG_RATIO : lr;
      rho = exp(lr);
    }
    double pg, dpg;
    if (clipped_surrogate(A, rho, eL, eH, clipC, &pg, &dpg)) acc[ST_DUAL] += m;
    if (A < 0 && rho < 1 - eL) acc[ST_CLIPLOW] += m;
    if (A > 0 && rho > 1 + eH) acc[ST_CLIPHIGH] += m;
    if (!lrIn) dpg = 0;
    if (roll) {
      const double isw = tis_weight(old[t], roll[t], tisCap);
      if (isw >= tisCap) acc[ST_TIS] += m;
      pg *= isw;
      dpg *= isw;
    }
    if (isLevel == 1) dpg = seqGrad;
    double kl = 0, dkl = 0;
    if (ref) {
      kl_est(klEst, (double)ref[t] - l, &kl, &dkl);
      acc[ST_KL] += m * kl;
    }
    double gsum = wt * dpg;
    acc[ST_PG] += wt * pg;
    if (beta != 0) {
      gsum += wt * beta * dkl;
      acc[ST_KLLOSS] += wt * beta * kl;
    }
    dlogp[t] = (float)gsum;
    if (ent) {
      const double h = ent[t];
      acc[ST_ENTROPY] += m * h;
      acc[ST_ENTLOSS] -= wt * entCoef * h;
      if (dent) dent[t] = (float)(-wt * entCoef);
    }
    acc[ST_TOKENS] += m;
    acc[ST_PPOKL] += m * ((double)old[t] - l);
    acc[ST_RATIO] += m * rho;
  }
  for (int k = 0; k < ST_COUNT; k++) {
    const double v = block_sum(acc[k], scratch);
    if (threadIdx.x == 0) st[k] = v;
  }
  if (threadIdx.x == 0) st[ST_SEQ] = !skip && lo >= rlo && lo < rhi ? 1 : 0;
}
