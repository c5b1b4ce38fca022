// A stand-in cuBLAS (built as libcublas.so.12, and as .13 or .11 when
// asked): the functions rltrain's binding calls, over OpenBLAS's
// column-major sgemm on the stand-in driver's device memory (host memory).
//
// It follows cuBLAS's documented contract:
//   - a handle needs a current context (cublasCreate: NOT_INITIALIZED
//     without one) and is used in that context;
//   - cublas<t>gemm and cublasGemmEx check their arguments as documented:
//     INVALID_VALUE when m, n or k < 0, an op is not N, T or C,
//     lda < max(1, rows of op(A)), ldb < max(1, rows of op(B)),
//     ldc < max(1, m), or alpha or beta is NULL; m = 0 or n = 0 returns at
//     once; beta = 0 means C need not hold valid values on input;
//   - cublasGemmEx accepts only the type combinations of its table for the
//     compute type (NOT_SUPPORTED otherwise) and a valid algorithm;
//   - cublasSetMathMode takes CUBLAS_DEFAULT_MATH, TENSOR_OP, PEDANTIC or
//     TF32_TENSOR_OP, optionally | DISALLOW_REDUCED_PRECISION_REDUCTION;
//     TF32 mode on a device of compute capability ≥ 8.0 rounds fp32
//     operands to TF32 (to nearest, ties to even), as the tensor cores read
//     them; below 8.0 it changes nothing;
//   - an operand outside device memory is a fault of the GEMM kernel:
//     sticky in the context, reported by the next driver call.
// Environment: STANDIN_CUBLAS_FAIL_AT=N (the Nth GEMM returns
// CUBLAS_STATUS_EXECUTION_FAILED), STANDIN_CUBLAS_CREATE_FAIL=<major>
// (cublasCreate of that library version fails with NOT_INITIALIZED, as a
// cuBLAS newer than the driver does).
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <vector>

#include "standin.h"

#ifndef STANDIN_CUBLAS_MAJOR
#define STANDIN_CUBLAS_MAJOR 12
#endif

namespace {

typedef int cublasStatus_t;
enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
};
// cudaDataType_t and cublasComputeType_t values used in the type table.
enum { R_32F = 0, R_16F = 2, R_16BF = 14 };
enum {
  COMPUTE_32F = 68,
  COMPUTE_32F_PEDANTIC = 69,
  COMPUTE_32F_FAST_16F = 74,
  COMPUTE_32F_FAST_16BF = 75,
  COMPUTE_32F_FAST_TF32 = 77,
};

struct Handle {
  uintptr_t ctx;
  int math = 0;
};

std::mutex mu;
std::set<Handle*> handles;
long gemm_calls;

// use checks a handle and that its context is current and healthy; a
// sticky device error makes every call fail, as the kernels cannot run.
cublasStatus_t use(Handle* h) {
  std::lock_guard<std::mutex> lk(mu);
  if (!h || !handles.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (standin_current_ctx() != h->ctx) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (standin_sticky()) return CUBLAS_STATUS_EXECUTION_FAILED;
  return CUBLAS_STATUS_SUCCESS;
}

bool valid_op(int op) { return op == 0 || op == 1 || op == 2; }

// args checks the documented gemm argument rules.
cublasStatus_t args(int ta, int tb, int m, int n, int k, const void* alpha, int lda, int ldb, const void* beta,
                    int ldc) {
  if (!valid_op(ta) || !valid_op(tb) || m < 0 || n < 0 || k < 0 || !alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  int rows_a = ta == 0 ? m : k, rows_b = tb == 0 ? k : n;
  if (lda < std::max(1, rows_a) || ldb < std::max(1, rows_b) || ldc < std::max(1, m)) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

// span is the bytes a column-major rows×cols matrix with leading
// dimension ld occupies.
size_t span(int rows, int cols, int ld, size_t elem) {
  if (rows == 0 || cols == 0) return 0;
  return (size_t(cols - 1) * size_t(ld) + size_t(rows)) * elem;
}

// operands_ok reports a fault (sticky) when an operand is not device
// memory: the GEMM kernel would read or write outside any allocation.
bool operands_ok(const char* fn, int ta, int tb, int m, int n, int k, const void* a, int lda, size_t ea, const void* b,
                 int ldb, size_t eb, const void* c, int ldc, size_t ec) {
  int ra = ta == 0 ? m : k, ca = ta == 0 ? k : m;
  int rb = tb == 0 ? k : n, cb = tb == 0 ? n : k;
  bool ok = standin_in_allocation(uint64_t(c), span(m, n, ldc, ec));
  if (k > 0) {
    ok = ok && standin_in_allocation(uint64_t(a), span(ra, ca, lda, ea));
    ok = ok && standin_in_allocation(uint64_t(b), span(rb, cb, ldb, eb));
  }
  if (!ok) {
    char what[256];
    snprintf(what, sizeof what, "%s %dx%dx%d: an operand lies outside device memory", fn, m, n, k);
    standin_fault(700, what);  // CUDA_ERROR_ILLEGAL_ADDRESS
  }
  return ok;
}

// load widens a column-major operand to fp32 (a dense rows×cols copy).
std::vector<float> load(const void* p, int type, int rows, int cols, int ld, bool tf32) {
  std::vector<float> out(size_t(rows) * size_t(cols));
  for (int j = 0; j < cols; j++)
    for (int i = 0; i < rows; i++) {
      size_t at = size_t(j) * size_t(ld) + size_t(i);
      uint32_t u;
      if (type == R_16BF) {
        u = uint32_t(static_cast<const uint16_t*>(p)[at]) << 16;
      } else {
        memcpy(&u, static_cast<const float*>(p) + at, 4);
        if (tf32 && (u & 0x7f800000u) != 0x7f800000u) u = (u + 0xfffu + ((u >> 13) & 1u)) & ~0x1fffu;
      }
      memcpy(&out[size_t(j) * size_t(rows) + size_t(i)], &u, 4);
    }
  return out;
}

// gemm computes C = alpha·op(A)·op(B) + beta·C in fp32 on fp32 C.
void gemm(int ta, int tb, int m, int n, int k, float alpha, const void* a, int atype, int lda, const void* b,
          int btype, int ldb, float beta, float* c, int ldc, bool tf32) {
  if (beta == 0)  // C is output only: whatever it held (NaN too) is ignored
    for (int j = 0; j < n; j++) memset(c + size_t(j) * size_t(ldc), 0, size_t(m) * 4);
  if (k == 0) {
    if (beta != 0)
      for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) c[size_t(j) * size_t(ldc) + size_t(i)] *= beta;
    return;
  }
  int ra = ta == 0 ? m : k, ca = ta == 0 ? k : m;
  int rb = tb == 0 ? k : n, cb = tb == 0 ? n : k;
  std::vector<float> A = load(a, atype, ra, ca, lda, tf32), B = load(b, btype, rb, cb, ldb, tf32);
  cblas_sgemm(CblasColMajor, ta == 0 ? CblasNoTrans : CblasTrans, tb == 0 ? CblasNoTrans : CblasTrans, m, n, k, alpha,
              A.data(), std::max(1, ra), B.data(), std::max(1, rb), beta, c, ldc);
}

bool injected_failure() {
  bool fail = standin::countdown("STANDIN_CUBLAS_FAIL_AT", &gemm_calls);
  if (getenv("STANDIN_TRACE")) standin::note("gemm #%ld", gemm_calls);
  if (!fail) return false;
  standin::note("GEMM #%ld: injected CUBLAS_STATUS_EXECUTION_FAILED (STANDIN_CUBLAS_FAIL_AT)", gemm_calls);
  return true;
}

}  // namespace

STANDIN_API cublasStatus_t cublasCreate_v2(Handle** out) {
  RECORD();
  if (!out) return CUBLAS_STATUS_INVALID_VALUE;
  if (standin::env_long("STANDIN_CUBLAS_CREATE_FAIL", 0) == STANDIN_CUBLAS_MAJOR) {
    standin::note("libcublas.so.%d: injected cublasCreate failure (STANDIN_CUBLAS_CREATE_FAIL)", STANDIN_CUBLAS_MAJOR);
    return CUBLAS_STATUS_NOT_INITIALIZED;
  }
  uintptr_t ctx = standin_current_ctx();
  if (!ctx) return CUBLAS_STATUS_NOT_INITIALIZED;
  Handle* h = new Handle{ctx};
  std::lock_guard<std::mutex> lk(mu);
  handles.insert(h);
  *out = h;
  return CUBLAS_STATUS_SUCCESS;
}

STANDIN_API cublasStatus_t cublasDestroy_v2(Handle* h) {
  RECORD();
  std::lock_guard<std::mutex> lk(mu);
  if (!h || !handles.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  handles.erase(h);
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}

STANDIN_API cublasStatus_t cublasGetVersion_v2(Handle* h, int* v) {
  RECORD();
  {
    std::lock_guard<std::mutex> lk(mu);
    if (!h || !handles.count(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
  }
  if (!v) return CUBLAS_STATUS_INVALID_VALUE;
  *v = STANDIN_CUBLAS_MAJOR * 10000 + 0 * 100 + 0;
  return CUBLAS_STATUS_SUCCESS;
}

STANDIN_API cublasStatus_t cublasSetMathMode(Handle* h, int mode) {
  RECORD();
  if (cublasStatus_t s = use(h)) return s;
  int base = mode & ~16;
  if (base < 0 || base > 3) return CUBLAS_STATUS_INVALID_VALUE;
  h->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

STANDIN_API cublasStatus_t cublasSgemm_v2(Handle* h, int ta, int tb, int m, int n, int k, const float* alpha,
                                          const float* a, int lda, const float* b, int ldb, const float* beta, float* c,
                                          int ldc) {
  RECORD();
  if (cublasStatus_t s = use(h)) return s;
  if (cublasStatus_t s = args(ta, tb, m, n, k, alpha, lda, ldb, beta, ldc)) return s;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (injected_failure()) return CUBLAS_STATUS_EXECUTION_FAILED;
  if (!operands_ok(__func__, ta, tb, m, n, k, a, lda, 4, b, ldb, 4, c, ldc, 4)) return CUBLAS_STATUS_SUCCESS;
  bool tf32 = (h->math & ~16) == 3 && standin_current_cc() >= 80;
  gemm(ta, tb, m, n, k, *alpha, a, R_32F, lda, b, R_32F, ldb, *beta, c, ldc, tf32);
  return CUBLAS_STATUS_SUCCESS;
}

STANDIN_API cublasStatus_t cublasGemmEx(Handle* h, int ta, int tb, int m, int n, int k, const void* alpha,
                                        const void* a, int atype, int lda, const void* b, int btype, int ldb,
                                        const void* beta, void* c, int ctype, int ldc, int compute, int algo) {
  RECORD();
  if (cublasStatus_t s = use(h)) return s;
  if (cublasStatus_t s = args(ta, tb, m, n, k, alpha, lda, ldb, beta, ldc)) return s;
  // CUBLAS_GEMM_DEFAULT (-1), ALGO0..23, DEFAULT_TENSOR_OP (99), ALGO0..15_TENSOR_OP.
  if (!(algo == -1 || (algo >= 0 && algo <= 23) || (algo >= 99 && algo <= 115))) return CUBLAS_STATUS_INVALID_VALUE;
  // The fp32-compute rows of cublasGemmEx's type table: A and B alike;
  // C fp32, or C of A's half type. Only the combinations rltrain uses are
  // computed here; the other valid ones are reported as not modelled.
  bool fp32_compute = compute == COMPUTE_32F || compute == COMPUTE_32F_PEDANTIC || compute == COMPUTE_32F_FAST_16F ||
                      compute == COMPUTE_32F_FAST_16BF || compute == COMPUTE_32F_FAST_TF32;
  bool valid = fp32_compute && atype == btype &&
               ((atype == R_32F && ctype == R_32F) || ((atype == R_16BF || atype == R_16F) && (ctype == R_32F || ctype == atype)));
  if (!valid) return CUBLAS_STATUS_NOT_SUPPORTED;
  bool modelled = (compute == COMPUTE_32F || compute == COMPUTE_32F_PEDANTIC || compute == COMPUTE_32F_FAST_TF32) &&
                  ctype == R_32F && (atype == R_32F || atype == R_16BF);
  if (!modelled) {
    standin::note("cublasGemmEx: types A %d B %d C %d compute %d are valid but not modelled by the stand-in", atype,
                  btype, ctype, compute);
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (injected_failure()) return CUBLAS_STATUS_EXECUTION_FAILED;
  size_t e = atype == R_16BF ? 2 : 4;
  if (!operands_ok(__func__, ta, tb, m, n, k, a, lda, e, b, ldb, e, c, ldc, 4)) return CUBLAS_STATUS_SUCCESS;
  bool tf32 = atype == R_32F && standin_current_cc() >= 80 &&
              (compute == COMPUTE_32F_FAST_TF32 || (compute == COMPUTE_32F && (h->math & ~16) == 3));
  gemm(ta, tb, m, n, k, *static_cast<const float*>(alpha), a, atype, lda, b, btype, ldb,
       *static_cast<const float*>(beta), static_cast<float*>(c), ldc, tf32);
  return CUBLAS_STATUS_SUCCESS;
}
