// bfloat16 storage: conversions and the optimizer step that keeps fp32
// master weights and writes their bf16 copy. Conversions are plain bit
// operations (round to nearest even), so they behave identically under the
// emulator and on every GPU architecture.
#include "cuda_compat.cuh"

typedef unsigned short bf16_t;

__device__ __forceinline__ bf16_t f32_to_bf16(float f) {
  const unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16_t)((u >> 16) | 0x40);  // NaN stays a quiet NaN
  return (bf16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float bf16_to_f32(bf16_t h) { return __uint_as_float((unsigned)h << 16); }

extern "C" __global__ void cast_f32_bf16(bf16_t* dst, const float* src, int n) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    dst[i] = f32_to_bf16(src[i]);
}

extern "C" __global__ void cast_bf16_f32(float* dst, const bf16_t* src, int n) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    dst[i] = bf16_to_f32(src[i]);
}

// adamw_bf16 is adamw (optim.cu) that also writes the bf16 copy of the
// updated fp32 master weights.
extern "C" __global__ void adamw_bf16(float* p, bf16_t* p16, const float* g, float* m, float* v, int n, float decay,
                                      float beta1, float oneMinusB1, float beta2, float oneMinusB2, float negStep,
                                      float bc2Sqrt, float eps) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const float gi = g[i];
    const float pi = p[i] * decay;
    const float mi = m[i] * beta1 + oneMinusB1 * gi;
    const float vi = v[i] * beta2 + oneMinusB2 * gi * gi;
    const float denom = sqrtf(vi) / bc2Sqrt + eps;
    const float np = pi + negStep * (mi / denom);
    p[i] = np;
    p16[i] = f32_to_bf16(np);
    m[i] = mi;
    v[i] = vi;
  }
}
