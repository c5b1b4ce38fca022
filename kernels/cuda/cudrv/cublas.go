package cudrv

/*
#include <stdlib.h>
#include "api.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// BLASLibraries are the cuBLAS libraries tried, newest first.
var BLASLibraries = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}

// BLASError is a failed cuBLAS call.
type BLASError struct {
	Call   string
	Status int
}

var blasStatus = map[int]string{
	0: "CUBLAS_STATUS_SUCCESS", 1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED",
	7: "CUBLAS_STATUS_INVALID_VALUE", 8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED", 14: "CUBLAS_STATUS_INTERNAL_ERROR", 15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

func (e *BLASError) Error() string {
	if n, ok := blasStatus[e.Status]; ok {
		return fmt.Sprintf("%s: %s (%d)", e.Call, n, e.Status)
	}
	return fmt.Sprintf("%s: cublasStatus %d", e.Call, e.Status)
}

// rlCtxError is api.c's offset for a context that could not be made
// current before a cuBLAS call.
const rlCtxError = 100000

func blasCheck(call string, r C.int) error {
	switch {
	case r == 0:
		return nil
	case r >= rlCtxError:
		return &Error{Call: "cuCtxSetCurrent (before " + call + ")", Code: int(r) - rlCtxError}
	}
	return &BLASError{Call: call, Status: int(r)}
}

// cuBLAS enums (cublas_api.h, library_types.h).
const (
	opN = 0
	opT = 1

	// DataFloat and DataBF16 are cudaDataType_t's CUDA_R_32F and
	// CUDA_R_16BF.
	DataFloat = 0
	DataBF16  = 14
	// Compute32F is CUBLAS_COMPUTE_32F: fp32 accumulation, no reduced-
	// precision inputs beyond the operands' own type.
	Compute32F = 68
	// GemmDefault is CUBLAS_GEMM_DEFAULT.
	GemmDefault = -1

	// MathDefault and MathTF32 are cublasMath_t values: full fp32, or
	// TF32 tensor cores for fp32 GEMMs.
	MathDefault = 0
	MathTF32    = 3
)

var (
	blasMu     sync.Mutex
	blasLoaded = map[string]C.int{} // library name → api.c table index
)

// BLAS is a cuBLAS handle bound to a context.
type BLAS struct {
	c       *Context
	lib     C.int
	h       C.uintptr_t
	Library string // the file it came from, e.g. "libcublas.so.12"
	Version int    // cublasGetVersion: 10000·major + 100·minor + patch
}

// NewBLAS creates a cuBLAS handle in c, trying BLASLibraries in order: a
// library that is missing, lacks a function, or whose cublasCreate fails
// (a cuBLAS newer than the driver, say) is skipped for the next. The error
// lists why each was rejected.
func NewBLAS(c *Context) (*BLAS, error) {
	blasMu.Lock()
	defer blasMu.Unlock()
	var why []string
	for _, name := range BLASLibraries {
		lib, ok := blasLoaded[name]
		if !ok {
			var buf [512]C.char
			cname := C.CString(name)
			r := C.rl_blas_load(cname, &lib, &buf[0], C.size_t(len(buf)))
			C.free(unsafe.Pointer(cname))
			if r != 0 {
				why = append(why, C.GoString(&buf[0]))
				continue
			}
			blasLoaded[name] = lib
		}
		var h C.uintptr_t
		if err := blasCheck("cublasCreate_v2", C.rl_blas_create(c.h, lib, &h)); err != nil {
			why = append(why, name+": "+err.Error())
			continue
		}
		b := &BLAS{c: c, lib: lib, h: h, Library: name}
		var v C.int
		if err := blasCheck("cublasGetVersion_v2", C.rl_blas_version(c.h, lib, h, &v)); err != nil {
			_ = b.Destroy()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		b.Version = int(v)
		return b, nil
	}
	return nil, errors.New("no usable cuBLAS (install libcublas of CUDA 11, 12 or 13 where the dynamic loader finds it): " + strings.Join(why, "; "))
}

// VersionString formats Version as major.minor.patch.
func (b *BLAS) VersionString() string {
	return fmt.Sprintf("%d.%d.%d", b.Version/10000, b.Version/100%100, b.Version%100)
}

// Destroy releases the handle.
func (b *BLAS) Destroy() error {
	return blasCheck("cublasDestroy_v2", C.rl_blas_destroy(b.c.h, b.lib, b.h))
}

// SetMathMode sets cublasMath_t (MathDefault or MathTF32).
func (b *BLAS) SetMathMode(mode int) error {
	return blasCheck("cublasSetMathMode", C.rl_blas_math_mode(b.c.h, b.lib, b.h, C.int(mode)))
}

func op(t bool) C.int {
	if t {
		return opT
	}
	return opN
}

// Sgemm is cublasSgemm: column-major C = alpha·op(A)·op(B) + beta·C, with
// C m×n and device pointers a, b, c.
func (b *BLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, a uint64, lda int, bm uint64, ldb int, beta float32, c uint64, ldc int) error {
	r := C.rl_blas_sgemm(b.c.h, b.lib, b.h, op(transA), op(transB), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.uint64_t(a), C.int(lda), C.uint64_t(bm), C.int(ldb), C.float(beta), C.uint64_t(c), C.int(ldc))
	if err := blasCheck("cublasSgemm_v2", r); err != nil {
		return fmt.Errorf("%w (m=%d n=%d k=%d)", err, m, n, k)
	}
	return nil
}

// GemmEx is cublasGemmEx with fp32 scalars: A and B of type abType, C of
// cType, the given compute type and CUBLAS_GEMM_DEFAULT.
func (b *BLAS) GemmEx(transA, transB bool, m, n, k int, alpha float32, a uint64, abType, lda int, bm uint64, ldb int, beta float32, c uint64, cType, ldc, compute int) error {
	r := C.rl_blas_gemm_ex(b.c.h, b.lib, b.h, op(transA), op(transB), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.uint64_t(a), C.int(abType), C.int(lda), C.uint64_t(bm), C.int(abType), C.int(ldb), C.float(beta),
		C.uint64_t(c), C.int(cType), C.int(ldc), C.int(compute), GemmDefault)
	if err := blasCheck("cublasGemmEx", r); err != nil {
		return fmt.Errorf("%w (m=%d n=%d k=%d)", err, m, n, k)
	}
	return nil
}
