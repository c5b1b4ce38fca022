// Package cuda implements kernels.Backend with CUDA C kernels (the .cu files
// of this directory) and cuBLAS, reaching the device only through the small
// Driver interface. Two drivers exist: Emu, in this package, runs the same
// .cu sources on the CPU (one fiber per CUDA thread) so that the backend is
// tested end to end without a GPU; kernels/cuda/cudrv (build tag cuda) is
// the real one, over the CUDA driver API.
package cuda

import "fmt"

// DevPtr is a device address. It is an integer, never a Go pointer: the
// garbage collector must not see device memory.
type DevPtr uint64

// Dim3 is a grid or block shape.
type Dim3 struct{ X, Y, Z int }

// D1 is a one-dimensional shape.
func D1(x int) Dim3 { return Dim3{x, 1, 1} }

// Driver is everything the backend needs from a device.
type Driver interface {
	// Name describes the device, e.g. "emulator" or "NVIDIA H100 (sm_90)".
	Name() string
	Alloc(bytes int) (DevPtr, error)
	Free(p DevPtr) error
	CopyHtoD(dst DevPtr, src []byte) error
	CopyDtoH(dst []byte, src DevPtr) error
	CopyDtoD(dst, src DevPtr, bytes int) error
	// Memset zeroes bytes starting at dst.
	Memset(dst DevPtr, bytes int) error
	// Launch runs the kernel named name (an extern "C" __global__ function
	// of the .cu files) over grid×block threads with shared bytes of
	// dynamic shared memory. args holds one 8-byte slot per parameter,
	// built with ArgPtr, ArgInt, ArgF32 and ArgF64.
	Launch(name string, grid, block Dim3, shared int, args []uint64) error
	// Sgemm is cuBLAS's column-major C = alpha·op(A)·op(B) + beta·C, with C
	// m×n.
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a DevPtr, lda int, b DevPtr, ldb int, beta float32, c DevPtr, ldc int) error
	// GemmBF16 is Sgemm with bf16 A and B (fp32 C, fp32 accumulation),
	// cuBLAS's GemmEx.
	GemmBF16(transA, transB bool, m, n, k int, alpha float32, a DevPtr, lda int, b DevPtr, ldb int, beta float32, c DevPtr, ldc int) error
	// Sync waits for all queued work and reports its first error.
	Sync() error
	Close() error
}

// TF32Driver is a Driver whose Sgemm can round its operands to TF32
// (10-bit mantissa, as tensor cores read fp32 inputs) for speed.
type TF32Driver interface {
	Driver
	SetTF32(on bool) error
}

// DeviceError is the panic value of the backend when the driver fails: a
// kernel fault, a deadlock found by the emulator, or out-of-memory.
type DeviceError struct {
	Op  string
	Err error
}

func (e *DeviceError) Error() string { return fmt.Sprintf("cuda: %s: %v", e.Op, e.Err) }
func (e *DeviceError) Unwrap() error { return e.Err }
