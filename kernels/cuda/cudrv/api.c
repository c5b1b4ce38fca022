// See api.h.
#include "api.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

// ---- the driver API ----------------------------------------------------

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef void* CUcontext;
typedef void* CUmodule;
typedef void* CUfunction;
typedef void* CUstream;

// CUjit_option values (cuda.h).
enum {
  RL_JIT_INFO_LOG_BUFFER = 3,
  RL_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4,
  RL_JIT_ERROR_LOG_BUFFER = 5,
  RL_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
  RL_JIT_LOG_VERBOSE = 12,
};

static struct {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDriverGetVersion)(int*);
  CUresult (*cuDeviceGetCount)(int*);
  CUresult (*cuDeviceGet)(CUdevice*, int);
  CUresult (*cuDeviceGetName)(char*, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int*, int, CUdevice);
  CUresult (*cuCtxCreate_v2)(CUcontext*, unsigned, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuCtxSynchronize)(void);
  CUresult (*cuCtxDestroy_v2)(CUcontext);
  CUresult (*cuModuleLoadDataEx)(CUmodule*, const void*, unsigned, int*, void**);
  CUresult (*cuModuleGetFunction)(CUfunction*, CUmodule, const char*);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuMemAlloc_v2)(CUdeviceptr*, size_t);
  CUresult (*cuMemFree_v2)(CUdeviceptr);
  CUresult (*cuMemGetInfo_v2)(size_t*, size_t*);
  CUresult (*cuMemcpyHtoD_v2)(CUdeviceptr, const void*, size_t);
  CUresult (*cuMemcpyDtoH_v2)(void*, CUdeviceptr, size_t);
  CUresult (*cuMemcpyDtoD_v2)(CUdeviceptr, CUdeviceptr, size_t);
  CUresult (*cuMemsetD8_v2)(CUdeviceptr, unsigned char, size_t);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             CUstream, void**, void**);
  CUresult (*cuGetErrorName)(CUresult, const char**);
  CUresult (*cuGetErrorString)(CUresult, const char**);
} cu;

#define SYM(lib, table, f)                                                                     \
  do {                                                                                         \
    *(void**)(&table.f) = dlsym(lib, #f);                                                      \
    if (!table.f) {                                                                            \
      snprintf(err, errlen, "%s has no function %s (the NVIDIA driver is older than CUDA 11?)", \
               libname, #f);                                                                   \
      return -1;                                                                               \
    }                                                                                          \
  } while (0)

int rl_cu_load(char* err, size_t errlen) {
  static const char libname[] = "libcuda.so.1";
  void* lib = dlopen(libname, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    snprintf(err, errlen, "%s", e ? e : "dlopen libcuda.so.1 failed");
    return -1;
  }
  SYM(lib, cu, cuInit);
  SYM(lib, cu, cuDriverGetVersion);
  SYM(lib, cu, cuDeviceGetCount);
  SYM(lib, cu, cuDeviceGet);
  SYM(lib, cu, cuDeviceGetName);
  SYM(lib, cu, cuDeviceGetAttribute);
  SYM(lib, cu, cuCtxCreate_v2);
  SYM(lib, cu, cuCtxSetCurrent);
  SYM(lib, cu, cuCtxSynchronize);
  SYM(lib, cu, cuCtxDestroy_v2);
  SYM(lib, cu, cuModuleLoadDataEx);
  SYM(lib, cu, cuModuleGetFunction);
  SYM(lib, cu, cuModuleUnload);
  SYM(lib, cu, cuMemAlloc_v2);
  SYM(lib, cu, cuMemFree_v2);
  SYM(lib, cu, cuMemGetInfo_v2);
  SYM(lib, cu, cuMemcpyHtoD_v2);
  SYM(lib, cu, cuMemcpyDtoH_v2);
  SYM(lib, cu, cuMemcpyDtoD_v2);
  SYM(lib, cu, cuMemsetD8_v2);
  SYM(lib, cu, cuLaunchKernel);
  SYM(lib, cu, cuGetErrorName);
  SYM(lib, cu, cuGetErrorString);
  return cu.cuInit(0);
}

const char* rl_cu_error_name(int code) {
  const char* s = NULL;
  if (cu.cuGetErrorName && cu.cuGetErrorName(code, &s) != 0) return NULL;
  return s;
}

const char* rl_cu_error_string(int code) {
  const char* s = NULL;
  if (cu.cuGetErrorString && cu.cuGetErrorString(code, &s) != 0) return NULL;
  return s;
}

int rl_cu_driver_version(int* v) { return cu.cuDriverGetVersion(v); }
int rl_cu_device_count(int* n) { return cu.cuDeviceGetCount(n); }
int rl_cu_device_get(int* dev, int ordinal) { return cu.cuDeviceGet(dev, ordinal); }
int rl_cu_device_name(char* name, int len, int dev) { return cu.cuDeviceGetName(name, len, dev); }
int rl_cu_device_attribute(int* v, int attr, int dev) { return cu.cuDeviceGetAttribute(v, attr, dev); }

int rl_cu_ctx_create(uintptr_t* ctx, int dev) {
  CUcontext c = NULL;
  // Flags 0: CU_CTX_SCHED_AUTO. cuCtxCreate also makes the context current.
  int r = cu.cuCtxCreate_v2(&c, 0, dev);
  *ctx = (uintptr_t)c;
  return r;
}

#define BIND(ctx)                                       \
  do {                                                  \
    int r_ = cu.cuCtxSetCurrent((CUcontext)(ctx));      \
    if (r_ != 0) return r_;                             \
  } while (0)

int rl_cu_ctx_destroy(uintptr_t ctx) { return cu.cuCtxDestroy_v2((CUcontext)ctx); }

int rl_cu_ctx_set_current(uintptr_t ctx) { return cu.cuCtxSetCurrent((CUcontext)ctx); }

int rl_cu_ctx_synchronize(uintptr_t ctx) {
  BIND(ctx);
  return cu.cuCtxSynchronize();
}

int rl_cu_mem_alloc(uintptr_t ctx, uint64_t* p, size_t bytes) {
  BIND(ctx);
  CUdeviceptr d = 0;
  int r = cu.cuMemAlloc_v2(&d, bytes);
  *p = d;
  return r;
}

int rl_cu_mem_free(uintptr_t ctx, uint64_t p) {
  BIND(ctx);
  return cu.cuMemFree_v2(p);
}

int rl_cu_mem_info(uintptr_t ctx, size_t* free_bytes, size_t* total) {
  BIND(ctx);
  return cu.cuMemGetInfo_v2(free_bytes, total);
}

int rl_cu_htod(uintptr_t ctx, uint64_t dst, const void* src, size_t bytes) {
  BIND(ctx);
  return cu.cuMemcpyHtoD_v2(dst, src, bytes);
}

int rl_cu_dtoh(uintptr_t ctx, void* dst, uint64_t src, size_t bytes) {
  BIND(ctx);
  return cu.cuMemcpyDtoH_v2(dst, src, bytes);
}

int rl_cu_dtod(uintptr_t ctx, uint64_t dst, uint64_t src, size_t bytes) {
  BIND(ctx);
  return cu.cuMemcpyDtoD_v2(dst, src, bytes);
}

int rl_cu_memset(uintptr_t ctx, uint64_t dst, size_t bytes) {
  BIND(ctx);
  return cu.cuMemsetD8_v2(dst, 0, bytes);
}

int rl_cu_module_load(uintptr_t ctx, uintptr_t* mod, const char* image, char* errlog, size_t errlen, char* infolog,
                      size_t infolen) {
  BIND(ctx);
  int opts[] = {RL_JIT_ERROR_LOG_BUFFER, RL_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, RL_JIT_INFO_LOG_BUFFER,
                RL_JIT_INFO_LOG_BUFFER_SIZE_BYTES, RL_JIT_LOG_VERBOSE};
  // Sizes and flags travel in the pointer-sized value slots themselves.
  void* vals[] = {errlog, (void*)(uintptr_t)errlen, infolog, (void*)(uintptr_t)infolen, (void*)(uintptr_t)1};
  errlog[0] = 0;
  infolog[0] = 0;
  CUmodule m = NULL;
  int r = cu.cuModuleLoadDataEx(&m, image, 5, opts, vals);
  *mod = (uintptr_t)m;
  return r;
}

int rl_cu_module_unload(uintptr_t ctx, uintptr_t mod) {
  BIND(ctx);
  return cu.cuModuleUnload((CUmodule)mod);
}

int rl_cu_module_function(uintptr_t ctx, uintptr_t* fn, uintptr_t mod, const char* name) {
  BIND(ctx);
  CUfunction f = NULL;
  int r = cu.cuModuleGetFunction(&f, (CUmodule)mod, name);
  *fn = (uintptr_t)f;
  return r;
}

int rl_cu_launch(uintptr_t ctx, uintptr_t fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                 unsigned bz, unsigned shared, uint64_t* args, int nargs) {
  BIND(ctx);
  void* params[64];
  if (nargs > 64) return 1;  // CUDA_ERROR_INVALID_VALUE: no kernel of ours has that many parameters
  for (int i = 0; i < nargs; i++) params[i] = &args[i];
  return cu.cuLaunchKernel((CUfunction)fn, gx, gy, gz, bx, by, bz, shared, NULL, params, NULL);
}

// ---- cuBLAS -------------------------------------------------------------

typedef int cublasStatus_t;
typedef void* cublasHandle_t;

typedef struct {
  cublasStatus_t (*cublasCreate_v2)(cublasHandle_t*);
  cublasStatus_t (*cublasDestroy_v2)(cublasHandle_t);
  cublasStatus_t (*cublasGetVersion_v2)(cublasHandle_t, int*);
  cublasStatus_t (*cublasSetMathMode)(cublasHandle_t, int);
  cublasStatus_t (*cublasSgemm_v2)(cublasHandle_t, int, int, int, int, int, const float*, const float*, int,
                                   const float*, int, const float*, float*, int);
  cublasStatus_t (*cublasGemmEx)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int, int,
                                 const void*, int, int, const void*, void*, int, int, int, int);
} blas_table;

#define MAX_BLAS 4
static blas_table blas[MAX_BLAS];
static int nblas;

int rl_blas_load(const char* libname, int* lib, char* err, size_t errlen) {
  if (nblas == MAX_BLAS) {
    snprintf(err, errlen, "too many cuBLAS libraries loaded");
    return -1;
  }
  void* h = dlopen(libname, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    snprintf(err, errlen, "%s", e ? e : "dlopen failed");
    return -1;
  }
  blas_table t;
  memset(&t, 0, sizeof t);
#define BSYM(f)                                                   \
  do {                                                            \
    *(void**)(&t.f) = dlsym(h, #f);                               \
    if (!t.f) {                                                   \
      snprintf(err, errlen, "%s has no function %s", libname, #f); \
      dlclose(h);                                                 \
      return -1;                                                  \
    }                                                             \
  } while (0)
  BSYM(cublasCreate_v2);
  BSYM(cublasDestroy_v2);
  BSYM(cublasGetVersion_v2);
  BSYM(cublasSetMathMode);
  BSYM(cublasSgemm_v2);
  BSYM(cublasGemmEx);
#undef BSYM
  blas[nblas] = t;
  *lib = nblas++;
  return 0;
}

// A cuBLAS call whose context cannot be made current reports the driver's
// error offset by RL_CTX_ERROR (api.go decodes it).
#define RL_CTX_ERROR 100000
#define BLAS_BIND(ctx)                                  \
  do {                                                  \
    int r_ = cu.cuCtxSetCurrent((CUcontext)(ctx));      \
    if (r_ != 0) return RL_CTX_ERROR + r_;              \
  } while (0)

int rl_blas_create(uintptr_t ctx, int lib, uintptr_t* h) {
  BLAS_BIND(ctx);
  cublasHandle_t x = NULL;
  int r = blas[lib].cublasCreate_v2(&x);
  *h = (uintptr_t)x;
  return r;
}

int rl_blas_destroy(uintptr_t ctx, int lib, uintptr_t h) {
  BLAS_BIND(ctx);
  return blas[lib].cublasDestroy_v2((cublasHandle_t)h);
}

int rl_blas_version(uintptr_t ctx, int lib, uintptr_t h, int* v) {
  BLAS_BIND(ctx);
  return blas[lib].cublasGetVersion_v2((cublasHandle_t)h, v);
}

int rl_blas_math_mode(uintptr_t ctx, int lib, uintptr_t h, int mode) {
  BLAS_BIND(ctx);
  return blas[lib].cublasSetMathMode((cublasHandle_t)h, mode);
}

// Device pointers arrive as integers: they are not Go pointers.
int rl_blas_sgemm(uintptr_t ctx, int lib, uintptr_t h, int ta, int tb, int m, int n, int k, float alpha, uint64_t a,
                  int lda, uint64_t b, int ldb, float beta, uint64_t c, int ldc) {
  BLAS_BIND(ctx);
  return blas[lib].cublasSgemm_v2((cublasHandle_t)h, ta, tb, m, n, k, &alpha, (const float*)a, lda, (const float*)b,
                                  ldb, &beta, (float*)c, ldc);
}

int rl_blas_gemm_ex(uintptr_t ctx, int lib, uintptr_t h, int ta, int tb, int m, int n, int k, float alpha,
                    uint64_t a, int atype, int lda, uint64_t b, int btype, int ldb, float beta, uint64_t c, int ctype,
                    int ldc, int compute, int algo) {
  BLAS_BIND(ctx);
  return blas[lib].cublasGemmEx((cublasHandle_t)h, ta, tb, m, n, k, &alpha, (const void*)a, atype, lda,
                                (const void*)b, btype, ldb, &beta, (void*)c, ctype, ldc, compute, algo);
}
