// The C side of the binding: the NVIDIA driver API (libcuda.so.1) and cuBLAS
// (libcublas.so.13, .12 or .11) loaded with dlopen, so that nothing of CUDA
// is needed to build rltrain and a machine without a GPU runs it too.
//
// Every type and constant is declared here from NVIDIA's documented ABI
// (cuda.h, cublas_api.h, library_types.h of CUDA 11.8 to 13): handles are
// pointers, CUdevice an int, CUdeviceptr an unsigned long long, CUresult and
// cublasStatus_t ints. The functions are the ABI-stable versioned entry
// points (cuCtxCreate_v2, cuMemAlloc_v2, ...) that every driver since CUDA
// 11 exports, whatever the macros of a newer cuda.h map the plain names to.
//
// Each wrapper that needs a context takes it and makes it current on the
// calling thread first: a cgo call runs on one OS thread from start to end,
// so the Go side never has to lock goroutines to threads.
#ifndef RLTRAIN_CUDRV_API_H
#define RLTRAIN_CUDRV_API_H

#include <stddef.h>
#include <stdint.h>

// rl_cu_load opens libcuda.so.1, resolves every function and calls cuInit.
// It returns 0, a CUresult from cuInit, or -1 with a message in err.
int rl_cu_load(char* err, size_t errlen);

// rl_cu_error_name is cuGetErrorName (NULL when the code is unknown).
const char* rl_cu_error_name(int code);
const char* rl_cu_error_string(int code);

int rl_cu_driver_version(int* v);
int rl_cu_device_count(int* n);
int rl_cu_device_get(int* dev, int ordinal);
int rl_cu_device_name(char* name, int len, int dev);
int rl_cu_device_attribute(int* v, int attr, int dev);

int rl_cu_ctx_create(uintptr_t* ctx, int dev);
int rl_cu_ctx_destroy(uintptr_t ctx);
int rl_cu_ctx_synchronize(uintptr_t ctx);
int rl_cu_ctx_set_current(uintptr_t ctx);

int rl_cu_mem_alloc(uintptr_t ctx, uint64_t* p, size_t bytes);
int rl_cu_mem_free(uintptr_t ctx, uint64_t p);
int rl_cu_mem_info(uintptr_t ctx, size_t* free_bytes, size_t* total);
int rl_cu_htod(uintptr_t ctx, uint64_t dst, const void* src, size_t bytes);
int rl_cu_dtoh(uintptr_t ctx, void* dst, uint64_t src, size_t bytes);
int rl_cu_dtod(uintptr_t ctx, uint64_t dst, uint64_t src, size_t bytes);
int rl_cu_memset(uintptr_t ctx, uint64_t dst, size_t bytes);

// rl_cu_module_load is cuModuleLoadDataEx with the JIT's error and info
// logs captured into the two buffers.
int rl_cu_module_load(uintptr_t ctx, uintptr_t* mod, const char* image, char* errlog, size_t errlen, char* infolog,
                      size_t infolen);
int rl_cu_module_unload(uintptr_t ctx, uintptr_t mod);
int rl_cu_module_function(uintptr_t ctx, uintptr_t* fn, uintptr_t mod, const char* name);

// rl_cu_launch passes args as kernelParams: one pointer per argument, to an
// 8-byte slot the driver reads the parameter's declared size from.
int rl_cu_launch(uintptr_t ctx, uintptr_t fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                 unsigned bz, unsigned shared, uint64_t* args, int nargs);

// rl_blas_load opens the cuBLAS library called name and resolves its
// functions into table *lib; 0, or -1 with a message in err. Several
// libraries can be open at once (one whose cublasCreate failed stays
// loaded while the next is tried).
int rl_blas_load(const char* name, int* lib, char* err, size_t errlen);
int rl_blas_create(uintptr_t ctx, int lib, uintptr_t* h);
int rl_blas_destroy(uintptr_t ctx, int lib, uintptr_t h);
int rl_blas_version(uintptr_t ctx, int lib, uintptr_t h, int* v);
int rl_blas_math_mode(uintptr_t ctx, int lib, uintptr_t h, int mode);
int rl_blas_sgemm(uintptr_t ctx, int lib, uintptr_t h, int ta, int tb, int m, int n, int k, float alpha,
                  uint64_t a, int lda, uint64_t b, int ldb, float beta, uint64_t c, int ldc);
// rl_blas_gemm_ex is cublasGemmEx with fp32 alpha and beta.
int rl_blas_gemm_ex(uintptr_t ctx, int lib, uintptr_t h, int ta, int tb, int m, int n, int k, float alpha,
                    uint64_t a, int atype, int lda, uint64_t b, int btype, int ldb, float beta, uint64_t c, int ctype,
                    int ldc, int compute, int algo);

#endif
