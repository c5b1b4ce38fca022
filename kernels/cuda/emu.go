package cuda

/*
#cgo CXXFLAGS: -std=c++20 -O2
#cgo LDFLAGS: -lopenblas -lstdc++
#include <stdlib.h>
#include <string.h>
#include "emu_bridge.h"
*/
import "C"

import (
	"embed"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/rltrain/rltrain/kernels"
)

// Sources holds the kernel sources. Embedding them also makes Go's build
// cache hash them, so an edited kernel is never tested stale: cgo compiles
// them through emu_kernels.cc, which the cache would otherwise not look
// into.
//
//go:embed *.cu *.cuh
var Sources embed.FS

// Emu is the emulated Driver: device memory is host memory and kernels run
// on the CPU through the C++ emulator (emu.h).
type Emu struct {
	mu     sync.Mutex
	allocs map[DevPtr]int
	tf32   bool
}

// NewEmu returns an emulated device.
func NewEmu() *Emu { return &Emu{allocs: map[DevPtr]int{}} }

// SetEmuWorkers sets how many host threads run blocks; 0 means one per core.
func SetEmuWorkers(n int) { C.emu_set_workers(C.int(n)) }

// EmuKernels lists the kernels the emulator can launch.
func EmuKernels() []string {
	n := int(C.emu_kernel_names(nil, 0))
	names := make([]*C.char, n)
	C.emu_kernel_names(&names[0], C.int(n))
	out := make([]string, n)
	for i, p := range names {
		out[i] = C.GoString(p)
	}
	return out
}

// Name implements Driver.
func (e *Emu) Name() string { return "emulator" }

// Alloc implements Driver. Memory is 256-byte aligned like cudaMalloc's
// and exactly as long as asked, so that an address sanitizer build catches
// a kernel reading one element past the end. Like cuMemAlloc it is not
// zeroed: it is filled with 0xff bytes (NaN as float, -1 as int), so code
// that reads memory it never wrote fails its tests.
func (e *Emu) Alloc(bytes int) (DevPtr, error) {
	n := max(bytes, 1)
	var p unsafe.Pointer
	if rc := C.posix_memalign(&p, 256, C.size_t(n)); rc != 0 || p == nil {
		return 0, fmt.Errorf("emu: out of memory allocating %d bytes", bytes)
	}
	C.memset(p, 0xff, C.size_t(n))
	d := DevPtr(uintptr(p))
	e.mu.Lock()
	e.allocs[d] = n
	e.mu.Unlock()
	return d, nil
}

// Free implements Driver.
func (e *Emu) Free(p DevPtr) error {
	e.mu.Lock()
	_, ok := e.allocs[p]
	delete(e.allocs, p)
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("emu: free of %#x, which was not allocated", uint64(p))
	}
	C.free(hostPtr(p))
	return nil
}

// Live reports the number of outstanding allocations, for leak tests.
func (e *Emu) Live() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.allocs)
}

// check verifies that [p, p+bytes) lies inside one allocation.
func (e *Emu) check(p DevPtr, bytes int) error {
	if bytes == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for base, n := range e.allocs {
		if p >= base && uint64(p)+uint64(bytes) <= uint64(base)+uint64(n) {
			return nil
		}
	}
	return fmt.Errorf("emu: %d bytes at %#x are outside every allocation", bytes, uint64(p))
}

// hostPtr turns an emulated device address back into a host pointer. The
// memory comes from C's allocator and is never moved, so the conversion is
// sound; reading the integer's bits as a pointer keeps vet's unsafeptr
// check, meant for Go memory, out of it.
func hostPtr(p DevPtr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&p))
}

// CopyHtoD implements Driver.
func (e *Emu) CopyHtoD(dst DevPtr, src []byte) error {
	if err := e.check(dst, len(src)); err != nil {
		return err
	}
	if len(src) > 0 {
		C.memcpy(hostPtr(dst), unsafe.Pointer(&src[0]), C.size_t(len(src)))
	}
	return nil
}

// CopyDtoH implements Driver.
func (e *Emu) CopyDtoH(dst []byte, src DevPtr) error {
	if err := e.check(src, len(dst)); err != nil {
		return err
	}
	if len(dst) > 0 {
		C.memcpy(unsafe.Pointer(&dst[0]), hostPtr(src), C.size_t(len(dst)))
	}
	return nil
}

// CopyDtoD implements Driver.
func (e *Emu) CopyDtoD(dst, src DevPtr, bytes int) error {
	if err := errors.Join(e.check(dst, bytes), e.check(src, bytes)); err != nil {
		return err
	}
	if bytes > 0 {
		C.memmove(hostPtr(dst), hostPtr(src), C.size_t(bytes))
	}
	return nil
}

// Memset implements Driver.
func (e *Emu) Memset(dst DevPtr, bytes int) error {
	if err := e.check(dst, bytes); err != nil {
		return err
	}
	if bytes > 0 {
		C.memset(hostPtr(dst), 0, C.size_t(bytes))
	}
	return nil
}

// Launch implements Driver.
func (e *Emu) Launch(name string, grid, block Dim3, shared int, args []uint64) error {
	for _, d := range []int{grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z} {
		if d < 0 || d > 1<<31-1 {
			return fmt.Errorf("emu: launch %s: dimension %d out of range", name, d)
		}
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var errBuf [1024]C.char
	var argp *C.uint64_t
	if len(args) > 0 {
		argp = (*C.uint64_t)(unsafe.Pointer(&args[0]))
	}
	rc := C.emu_launch(cname, C.uint(grid.X), C.uint(max(grid.Y, 1)), C.uint(max(grid.Z, 1)),
		C.uint(block.X), C.uint(max(block.Y, 1)), C.uint(max(block.Z, 1)), C.size_t(shared),
		argp, C.int(len(args)), &errBuf[0], C.size_t(len(errBuf)))
	if rc != 0 {
		return errors.New(C.GoString(&errBuf[0]))
	}
	return nil
}

// Sgemm implements Driver with OpenBLAS's column-major sgemm, which has
// cuBLAS's semantics.
func (e *Emu) Sgemm(transA, transB bool, m, n, k int, alpha float32, a DevPtr, lda int, b DevPtr, ldb int, beta float32, c DevPtr, ldc int) error {
	if m == 0 || n == 0 {
		return nil
	}
	if err := e.checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, 4); err != nil {
		return fmt.Errorf("emu: sgemm: %w", err)
	}
	if e.tf32 {
		C.emu_gemm_tf32(cBool(transA), cBool(transB), C.int(m), C.int(n), C.int(k), C.float(alpha), C.uint64_t(a), C.int(lda),
			C.uint64_t(b), C.int(ldb), C.float(beta), C.uint64_t(c), C.int(ldc))
		return nil
	}
	C.emu_sgemm(cBool(transA), cBool(transB), C.int(m), C.int(n), C.int(k), C.float(alpha), C.uint64_t(a), C.int(lda),
		C.uint64_t(b), C.int(ldb), C.float(beta), C.uint64_t(c), C.int(ldc))
	return nil
}

// SetTF32 implements TF32Driver: Sgemm then rounds A and B to TF32 (to
// nearest, ties to even) and multiplies the rounded values in fp32, the
// numerics of cuBLAS's TF32 tensor-op math.
func (e *Emu) SetTF32(on bool) error {
	e.tf32 = on
	return nil
}

// GemmBF16 implements Driver: the bf16 operands are widened exactly and
// multiplied in fp32, as cuBLAS does with CUBLAS_COMPUTE_32F.
func (e *Emu) GemmBF16(transA, transB bool, m, n, k int, alpha float32, a DevPtr, lda int, b DevPtr, ldb int, beta float32, c DevPtr, ldc int) error {
	if m == 0 || n == 0 {
		return nil
	}
	if err := e.checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, 2); err != nil {
		return fmt.Errorf("emu: bf16 gemm: %w", err)
	}
	C.emu_gemm_bf16(cBool(transA), cBool(transB), C.int(m), C.int(n), C.int(k), C.float(alpha), C.uint64_t(a), C.int(lda),
		C.uint64_t(b), C.int(ldb), C.float(beta), C.uint64_t(c), C.int(ldc))
	return nil
}

// checkGemm verifies a column-major product's operands: A and B of
// inSize-byte elements, C of floats.
func (e *Emu) checkGemm(transA, transB bool, m, n, k int, a DevPtr, lda int, b DevPtr, ldb int, c DevPtr, ldc int, inSize int) error {
	spanB, spanA, spanC, err := kernels.GemmSpans(transB, transA, n, m, k, ldb, lda, ldc)
	if err != nil {
		return err
	}
	return errors.Join(e.check(a, spanA*inSize), e.check(b, spanB*inSize), e.check(c, spanC*4))
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Sync implements Driver; emulated launches are synchronous.
func (e *Emu) Sync() error { return nil }

// Close implements Driver.
func (e *Emu) Close() error { return nil }
