//go:build cuda

package cudrv

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>

// The few cuBLAS entry points we use, declared here so that no cuBLAS
// header is needed at build time.
typedef void* rl_cublas_handle;
typedef int (*rl_create_fn)(rl_cublas_handle*);
typedef int (*rl_destroy_fn)(rl_cublas_handle);
typedef int (*rl_sgemm_fn)(rl_cublas_handle, int, int, int, int, int, const float*, const float*, int,
                           const float*, int, const float*, float*, int);

static void* rl_lib;
static rl_create_fn rl_create;
static rl_destroy_fn rl_destroy;
static rl_sgemm_fn rl_sgemm;
typedef int (*rl_gemmex_fn)(rl_cublas_handle, int, int, int, int, int, const void*, const void*, int, int,
                            const void*, int, int, const void*, void*, int, int, int, int);
static rl_gemmex_fn rl_gemmex;
typedef int (*rl_mathmode_fn)(rl_cublas_handle, int);
static rl_mathmode_fn rl_mathmode;

// rl_cublas_open loads cuBLAS; it returns the library name or NULL.
static const char* rl_cublas_open(void) {
	static const char* names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"};
	for (int i = 0; i < 4; i++) {
		void* h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (!h) continue;
		rl_create = (rl_create_fn)dlsym(h, "cublasCreate_v2");
		rl_destroy = (rl_destroy_fn)dlsym(h, "cublasDestroy_v2");
		rl_sgemm = (rl_sgemm_fn)dlsym(h, "cublasSgemm_v2");
		rl_gemmex = (rl_gemmex_fn)dlsym(h, "cublasGemmEx");
		rl_mathmode = (rl_mathmode_fn)dlsym(h, "cublasSetMathMode");
		if (rl_create && rl_destroy && rl_sgemm && rl_gemmex && rl_mathmode) {
			rl_lib = h;
			return names[i];
		}
		dlclose(h);
	}
	return NULL;
}

static int rl_cublas_create(uintptr_t* out) {
	rl_cublas_handle h = 0;
	int st = rl_create(&h);
	*out = (uintptr_t)h;
	return st;
}

static int rl_cublas_destroy(uintptr_t h) { return rl_destroy((rl_cublas_handle)h); }

// Device pointers arrive as integers: they are not Go pointers.
static int rl_cublas_sgemm(uintptr_t h, int ta, int tb, int m, int n, int k, float alpha, uint64_t a, int lda,
                           uint64_t b, int ldb, float beta, uint64_t c, int ldc) {
	return rl_sgemm((rl_cublas_handle)h, ta, tb, m, n, k, &alpha, (const float*)a, lda, (const float*)b, ldb, &beta,
	                (float*)c, ldc);
}

// cublasGemmEx with bf16 A and B (CUDA_R_16BF = 14), fp32 C (CUDA_R_32F =
// 0), CUBLAS_COMPUTE_32F (68) and CUBLAS_GEMM_DEFAULT (-1).
static int rl_cublas_gemm_bf16(uintptr_t h, int ta, int tb, int m, int n, int k, float alpha, uint64_t a, int lda,
                               uint64_t b, int ldb, float beta, uint64_t c, int ldc) {
	return rl_gemmex((rl_cublas_handle)h, ta, tb, m, n, k, &alpha, (const void*)a, 14, lda, (const void*)b, 14, ldb,
	                 &beta, (void*)c, 0, ldc, 68, -1);
}

// cublasSetMathMode: CUBLAS_TF32_TENSOR_OP_MATH (3) lets sgemm round its
// operands to TF32 and use tensor cores; CUBLAS_DEFAULT_MATH (0) is full
// fp32.
static int rl_cublas_tf32(uintptr_t h, int on) { return rl_mathmode((rl_cublas_handle)h, on ? 3 : 0); }
*/
import "C"

import (
	"fmt"
	"sync"
)

var (
	blasOnce sync.Once
	blasName string
	blasErr  error
)

// loadCuBLAS opens the newest cuBLAS it finds, once per process.
func loadCuBLAS() (string, error) {
	blasOnce.Do(func() {
		n := C.rl_cublas_open()
		if n == nil {
			blasErr = fmt.Errorf("cuBLAS not found: install libcublas (libcublas.so.13, .12 or .11) and make it visible to the dynamic loader")
			return
		}
		blasName = C.GoString(n)
	})
	return blasName, blasErr
}

type cublas struct{ h C.uintptr_t }

func newCuBLAS() (*cublas, error) {
	if _, err := loadCuBLAS(); err != nil {
		return nil, err
	}
	var h C.uintptr_t
	if st := C.rl_cublas_create(&h); st != 0 {
		return nil, fmt.Errorf("cublasCreate: status %d", int(st))
	}
	return &cublas{h: h}, nil
}

func (b *cublas) close() error {
	if st := C.rl_cublas_destroy(b.h); st != 0 {
		return fmt.Errorf("cublasDestroy: status %d", int(st))
	}
	return nil
}

func op(t bool) C.int {
	if t {
		return 1 // CUBLAS_OP_T
	}
	return 0 // CUBLAS_OP_N
}

func (b *cublas) sgemm(transA, transB bool, m, n, k int, alpha float32, a uint64, lda int, bb uint64, ldb int, beta float32, c uint64, ldc int) error {
	st := C.rl_cublas_sgemm(b.h, op(transA), op(transB), C.int(m), C.int(n), C.int(k), C.float(alpha), C.uint64_t(a), C.int(lda),
		C.uint64_t(bb), C.int(ldb), C.float(beta), C.uint64_t(c), C.int(ldc))
	if st != 0 {
		return fmt.Errorf("cublasSgemm %dx%dx%d: status %d", m, n, k, int(st))
	}
	return nil
}

func (b *cublas) setTF32(on bool) error {
	v := C.int(0)
	if on {
		v = 1
	}
	if st := C.rl_cublas_tf32(b.h, v); st != 0 {
		return fmt.Errorf("cublasSetMathMode: status %d", int(st))
	}
	return nil
}

func (b *cublas) gemmBF16(transA, transB bool, m, n, k int, alpha float32, a uint64, lda int, bb uint64, ldb int, beta float32, c uint64, ldc int) error {
	st := C.rl_cublas_gemm_bf16(b.h, op(transA), op(transB), C.int(m), C.int(n), C.int(k), C.float(alpha), C.uint64_t(a), C.int(lda),
		C.uint64_t(bb), C.int(ldb), C.float(beta), C.uint64_t(c), C.int(ldc))
	if st != 0 {
		return fmt.Errorf("cublasGemmEx bf16 %dx%dx%d: status %d", m, n, k, int(st))
	}
	return nil
}
