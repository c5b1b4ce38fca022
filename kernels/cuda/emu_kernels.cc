// The emulator's translation unit for the kernels: the same .cu files nvcc
// compiles to PTX, compiled here for the host, plus the table the launcher
// looks kernels up in.
#include <cblas.h>

#include <cstring>

#include "cuda_compat.cuh"
#include "emu_bridge.h"

#include "attention.cu"
#include "bf16.cu"
#include "dense.cu"
#include "logprobs.cu"
#include "optim.cu"
#include "sample.cu"
#include "emu_selftest.cuh"

namespace emu {

#define K(f) make_kernel(#f, f)

static const Kernel kernels[] = {
    K(add_bias), K(bias_backward_partial), K(col_finish), K(copy2d), K(add), K(scale), K(rmsnorm_heads), K(rmsnorm_heads_backward_dx),
    K(rmsnorm_heads_backward_dw_partial), K(rope), K(swiglu), K(swiglu_backward), K(embed), K(embed_backward),
    K(cache_write), K(attn_fwd), K(attn_bwd_dq), K(attn_bwd_dkv), K(attn_decode), K(attn_decode_combine), K(logprob_rows),
    K(logprob_grad_rows), K(adamw), K(sum_squares), K(segment_sums), K(segment_broadcast), K(policy_loss), K(cast_f32_bf16), K(cast_bf16_f32), K(adamw_bf16), K(sample_rows),
    // Emulator self-tests.
    K(selftest_reduce), K(selftest_missing_barrier), K(selftest_shuffle_not_fence), K(selftest_shuffles), K(selftest_divergent_barrier),
    K(selftest_exit_before_barrier), K(selftest_divergent_shuffle), K(selftest_atomics), K(selftest_dyn_shared), K(selftest_out_of_bounds),
};

#undef K

const Kernel* find_kernel(const char* name) {
  for (const Kernel& k : kernels)
    if (std::strcmp(k.name, name) == 0) return &k;
  return nullptr;
}

}  // namespace emu

extern "C" {

int emu_kernel_names(const char** names, int max) {
  int n = 0;
  for (const emu::Kernel& k : emu::kernels) {
    if (n < max) names[n] = k.name;
    n++;
  }
  return n;
}

// emu_gemm_bf16 is cublasGemmEx with bf16 A and B, fp32 C and fp32
// accumulation: the operands are widened exactly (a bf16 is the high half of
// a float) and multiplied in fp32.
void emu_gemm_bf16(int transa, int transb, int m, int n, int k, float alpha, uint64_t a, int lda, uint64_t b,
                   int ldb, float beta, uint64_t c, int ldc) {
  const int ar = transa ? k : m, ac = transa ? m : k;
  const int br = transb ? n : k, bc = transb ? k : n;
  auto widen = [](uint64_t p, int rows, int cols, int ld) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
    float* f = new float[size_t(ld) * (cols > 0 ? cols : 1)];
    for (int j = 0; j < cols; j++)
      for (int i = 0; i < rows; i++) {
        uint32_t u = uint32_t(h[size_t(j) * ld + i]) << 16;
        std::memcpy(&f[size_t(j) * ld + i], &u, 4);
      }
    return f;
  };
  float* A = k > 0 ? widen(a, ar, ac, lda) : nullptr;
  float* B = k > 0 ? widen(b, br, bc, ldb) : nullptr;
  emu_sgemm(transa, transb, m, n, k, alpha, reinterpret_cast<uint64_t>(A), lda, reinterpret_cast<uint64_t>(B), ldb,
            beta, c, ldc);
  delete[] A;
  delete[] B;
}

// emu_gemm_tf32 rounds copies of A and B to TF32 (the low 13 mantissa bits
// cleared, to nearest with ties to even; NaN and infinities kept) and
// multiplies them in fp32.
void emu_gemm_tf32(int transa, int transb, int m, int n, int k, float alpha, uint64_t a, int lda, uint64_t b,
                   int ldb, float beta, uint64_t c, int ldc) {
  const int ar = transa ? k : m, ac = transa ? m : k;
  const int br = transb ? n : k, bc = transb ? k : n;
  auto to_tf32 = [](uint64_t p, int rows, int cols, int ld) {
    const uint32_t* x = reinterpret_cast<const uint32_t*>(p);
    float* f = new float[size_t(ld) * (cols > 0 ? cols : 1)];
    for (int j = 0; j < cols; j++)
      for (int i = 0; i < rows; i++) {
        uint32_t u = x[size_t(j) * ld + i];
        if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0xfffu + ((u >> 13) & 1u)) & ~0x1fffu;
        std::memcpy(&f[size_t(j) * ld + i], &u, 4);
      }
    return f;
  };
  float* A = k > 0 ? to_tf32(a, ar, ac, lda) : nullptr;
  float* B = k > 0 ? to_tf32(b, br, bc, ldb) : nullptr;
  emu_sgemm(transa, transb, m, n, k, alpha, reinterpret_cast<uint64_t>(A), lda, reinterpret_cast<uint64_t>(B), ldb,
            beta, c, ldc);
  delete[] A;
  delete[] B;
}

void emu_sgemm(int transa, int transb, int m, int n, int k, float alpha, uint64_t a, int lda, uint64_t b, int ldb,
               float beta, uint64_t c, int ldc) {
  float* C = reinterpret_cast<float*>(c);
  if (k == 0) {
    for (int j = 0; j < n; j++)
      for (int i = 0; i < m; i++) C[(long long)j * ldc + i] = beta == 0 ? 0.0f : beta * C[(long long)j * ldc + i];
    return;
  }
  cblas_sgemm(CblasColMajor, transa ? CblasTrans : CblasNoTrans, transb ? CblasTrans : CblasNoTrans, m, n, k, alpha,
              reinterpret_cast<const float*>(a), lda, reinterpret_cast<const float*>(b), ldb, beta, C, ldc);
}

}  // extern "C"
