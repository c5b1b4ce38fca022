// Row kernels of the fused output layer. The host computes a chunk of
// logits z = invTemp·h·Wᵀ with one GEMM; these kernels reduce each row with
// an online log-sum-exp (forward) or turn it into dlogits in place
// (backward), so [tokens × vocab] never exists at once.
#include "cuda_compat.cuh"

// logprob_rows: one block per row of the chunk z[m, vocab] starting at
// global row row0. Per thread an online (max, Σe, Σe·z) in double, then
// merged across the block. entropy may be null.
extern "C" __global__ void logprob_rows(float* logp, float* entropy, float* lse, const float* z,
                                        const int* targets, int vocab, int row0) {
  __shared__ double scratch[32];
  const int r = blockIdx.x, i = row0 + r;
  const float* row = z + (long long)r * vocab;
  float m = -INFINITY;
  double s = 0, t = 0;
  for (int k = threadIdx.x; k < vocab; k += blockDim.x) {
    const float x = row[k];
    if (x > m) {
      const double c = exp((double)m - (double)x);
      s *= c;
      t *= c;
      m = x;
    }
    const double e = expf(x - m);
    s += e;
    t += e * x;
  }
  const double M = block_max((double)m, scratch);
  const double c = m == -INFINITY ? 0.0 : exp((double)m - M);
  const double S = block_sum(s * c, scratch);
  const double Tz = block_sum(t * c, scratch);
  if (threadIdx.x != 0) return;
  const double l = M + log(S);
  lse[i] = (float)l;
  const int tg = targets[i];
  logp[i] = tg >= 0 ? row[tg] - (float)l : 0.0f;
  if (entropy) entropy[i] = (float)(l - Tz / S);
}

// logprob_grad_rows overwrites the chunk z with dL/dz·invTemp:
// (−g·p − gh·p·(z − lse + H) + g·onehot)·invTemp, one block per row.
// dEntropy and entropy may be null.
extern "C" __global__ void logprob_grad_rows(float* z, const float* lse, const float* dlogp, const float* dEntropy,
                                             const float* entropy, const int* targets, int vocab, int row0,
                                             float invTemp) {
  const int r = blockIdx.x, i = row0 + r;
  float* row = z + (long long)r * vocab;
  const float l = lse[i];
  const int tg = targets[i];
  const float gl = tg >= 0 ? dlogp[i] : 0.0f;
  const float gh = dEntropy ? dEntropy[i] : 0.0f;
  const float H = dEntropy ? entropy[i] : 0.0f;
  for (int k = threadIdx.x; k < vocab; k += blockDim.x) {
    const float x = row[k];
    const float p = expf(x - l);
    float d = gh == 0.0f ? -gl * p * invTemp : (-gl * p - gh * p * (x - l + H)) * invTemp;
    if (k == tg) d += gl * invTemp;
    row[k] = d;
  }
}
