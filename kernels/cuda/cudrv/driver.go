package cudrv

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "api.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// Error is a failed driver call.
type Error struct {
	Call string
	Code int
}

// Error names the call and the driver's code, e.g. "cuMemAlloc_v2:
// CUDA_ERROR_OUT_OF_MEMORY (2): out of memory".
func (e *Error) Error() string {
	name, desc := "", ""
	if p := C.rl_cu_error_name(C.int(e.Code)); p != nil {
		name = C.GoString(p)
	}
	if p := C.rl_cu_error_string(C.int(e.Code)); p != nil {
		desc = C.GoString(p)
	}
	switch {
	case name == "":
		return fmt.Sprintf("%s: CUresult %d", e.Call, e.Code)
	case desc == "":
		return fmt.Sprintf("%s: %s (%d)", e.Call, name, e.Code)
	}
	return fmt.Sprintf("%s: %s (%d): %s", e.Call, name, e.Code, desc)
}

// Driver error codes this package's callers look at (cuda.h).
const (
	ErrorOutOfMemory = 2
	ErrorNoDevice    = 100
)

// OutOfMemory reports whether err is a driver out-of-memory error.
func OutOfMemory(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == ErrorOutOfMemory
}

func check(call string, r C.int) error {
	if r == 0 {
		return nil
	}
	return &Error{Call: call, Code: int(r)}
}

var (
	loadOnce sync.Once
	loadErr  error
)

// Load opens the driver library and initialises it, once per process. Its
// error says why no GPU can be used: the library is missing (no NVIDIA
// driver), lacks a function, or cuInit failed (e.g. no device).
func Load() error {
	loadOnce.Do(func() {
		var buf [512]C.char
		r := C.rl_cu_load(&buf[0], C.size_t(len(buf)))
		switch {
		case r == -1:
			loadErr = fmt.Errorf("no NVIDIA driver: %s", C.GoString(&buf[0]))
		case r != 0:
			loadErr = fmt.Errorf("NVIDIA driver: %w", check("cuInit", r))
		}
	})
	return loadErr
}

// DriverVersion is the CUDA version the driver supports, as 1000·major +
// 10·minor (12040 is CUDA 12.4).
func DriverVersion() (int, error) {
	if err := Load(); err != nil {
		return 0, err
	}
	var v C.int
	return int(v), check("cuDriverGetVersion", C.rl_cu_driver_version(&v))
}

// DeviceCount is the number of visible GPUs.
func DeviceCount() (int, error) {
	if err := Load(); err != nil {
		return 0, err
	}
	var n C.int
	return int(n), check("cuDeviceGetCount", C.rl_cu_device_count(&n))
}

// Device is a GPU.
type Device struct {
	h       C.int
	Ordinal int
}

// GetDevice returns the GPU of an ordinal.
func GetDevice(ordinal int) (Device, error) {
	n, err := DeviceCount()
	if err != nil {
		return Device{}, err
	}
	if ordinal < 0 || ordinal >= n {
		return Device{}, fmt.Errorf("CUDA device %d requested, %d present", ordinal, n)
	}
	var h C.int
	if err := check("cuDeviceGet", C.rl_cu_device_get(&h, C.int(ordinal))); err != nil {
		return Device{}, err
	}
	return Device{h: h, Ordinal: ordinal}, nil
}

// Name is the device's marketing name.
func (d Device) Name() (string, error) {
	var buf [256]C.char
	if err := check("cuDeviceGetName", C.rl_cu_device_name(&buf[0], C.int(len(buf)), d.h)); err != nil {
		return "", err
	}
	return C.GoString(&buf[0]), nil
}

// Device attributes (CUdevice_attribute).
const (
	AttrMaxSharedPerBlock = 8
	AttrCCMajor           = 75
	AttrCCMinor           = 76
	AttrMultiprocessors   = 16
)

// Attribute reads a device attribute.
func (d Device) Attribute(attr int) (int, error) {
	var v C.int
	err := check("cuDeviceGetAttribute", C.rl_cu_device_attribute(&v, C.int(attr), d.h))
	return int(v), err
}

// ComputeCapability is the device's major.minor architecture version.
func (d Device) ComputeCapability() (major, minor int, err error) {
	if major, err = d.Attribute(AttrCCMajor); err != nil {
		return 0, 0, err
	}
	minor, err = d.Attribute(AttrCCMinor)
	return major, minor, err
}

// Context is a CUDA context on one device. Its methods may be called from
// any goroutine: each makes the context current on its OS thread first.
// Work runs on the default stream, which orders kernels, copies and cuBLAS
// calls.
type Context struct {
	h C.uintptr_t
}

// NewContext creates a context on d.
func NewContext(d Device) (*Context, error) {
	var h C.uintptr_t
	if err := check("cuCtxCreate_v2", C.rl_cu_ctx_create(&h, d.h)); err != nil {
		return nil, err
	}
	return &Context{h: h}, nil
}

// Destroy releases the context and everything allocated in it.
func (c *Context) Destroy() error {
	return check("cuCtxDestroy_v2", C.rl_cu_ctx_destroy(c.h))
}

// Sync waits for all queued work and returns the first error it hit
// (kernel faults surface here or at the next synchronous call).
func (c *Context) Sync() error {
	return check("cuCtxSynchronize", C.rl_cu_ctx_synchronize(c.h))
}

// Do runs f with c current on the calling OS thread, for libraries that
// work on the current context (NCCL): f's cgo calls stay on that thread.
func (c *Context) Do(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := check("cuCtxSetCurrent", C.rl_cu_ctx_set_current(c.h)); err != nil {
		return err
	}
	return f()
}

// Alloc allocates device memory (not zeroed).
func (c *Context) Alloc(bytes int) (uint64, error) {
	var p C.uint64_t
	err := check("cuMemAlloc_v2", C.rl_cu_mem_alloc(c.h, &p, C.size_t(bytes)))
	return uint64(p), err
}

// Free releases device memory.
func (c *Context) Free(p uint64) error {
	return check("cuMemFree_v2", C.rl_cu_mem_free(c.h, C.uint64_t(p)))
}

// MemInfo reports free and total device memory in bytes.
func (c *Context) MemInfo() (free, total int64, err error) {
	var f, t C.size_t
	err = check("cuMemGetInfo_v2", C.rl_cu_mem_info(c.h, &f, &t))
	return int64(f), int64(t), err
}

// CopyHtoD copies src to device address dst.
func (c *Context) CopyHtoD(dst uint64, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return check("cuMemcpyHtoD_v2", C.rl_cu_htod(c.h, C.uint64_t(dst), unsafe.Pointer(&src[0]), C.size_t(len(src))))
}

// CopyDtoH copies len(dst) bytes from device address src.
func (c *Context) CopyDtoH(dst []byte, src uint64) error {
	if len(dst) == 0 {
		return nil
	}
	return check("cuMemcpyDtoH_v2", C.rl_cu_dtoh(c.h, unsafe.Pointer(&dst[0]), C.uint64_t(src), C.size_t(len(dst))))
}

// CopyDtoD copies bytes between device addresses.
func (c *Context) CopyDtoD(dst, src uint64, bytes int) error {
	return check("cuMemcpyDtoD_v2", C.rl_cu_dtod(c.h, C.uint64_t(dst), C.uint64_t(src), C.size_t(bytes)))
}

// Memset zeroes bytes at dst.
func (c *Context) Memset(dst uint64, bytes int) error {
	return check("cuMemsetD8_v2", C.rl_cu_memset(c.h, C.uint64_t(dst), C.size_t(bytes)))
}

// Module is loaded PTX (or a cubin).
type Module struct {
	c *Context
	h C.uintptr_t
}

// LoadModule loads a NUL-terminated PTX image; the driver JIT-compiles it
// for the device. A failure carries the JIT's error log.
func (c *Context) LoadModule(image []byte) (*Module, error) {
	if len(image) == 0 || image[len(image)-1] != 0 {
		return nil, errors.New("cuModuleLoadDataEx: the PTX image must end with a NUL byte")
	}
	const logLen = 16 << 10
	errLog := (*C.char)(C.malloc(logLen))
	infoLog := (*C.char)(C.malloc(logLen))
	defer C.free(unsafe.Pointer(errLog))
	defer C.free(unsafe.Pointer(infoLog))
	var h C.uintptr_t
	r := C.rl_cu_module_load(c.h, &h, (*C.char)(unsafe.Pointer(&image[0])), errLog, logLen, infoLog, logLen)
	if err := check("cuModuleLoadDataEx", r); err != nil {
		if log := strings.TrimSpace(C.GoString(errLog)); log != "" {
			return nil, fmt.Errorf("%w; JIT log:\n%s", err, log)
		}
		return nil, err
	}
	return &Module{c: c, h: h}, nil
}

// Unload releases the module.
func (m *Module) Unload() error {
	return check("cuModuleUnload", C.rl_cu_module_unload(m.c.h, m.h))
}

// Function is a kernel of a loaded module.
type Function struct{ h C.uintptr_t }

// Function looks up a kernel by its (extern "C") name.
func (m *Module) Function(name string) (Function, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var h C.uintptr_t
	if err := check("cuModuleGetFunction "+name, C.rl_cu_module_function(m.c.h, &h, m.h, cname)); err != nil {
		return Function{}, err
	}
	return Function{h: h}, nil
}

// MaxParams is the most kernel parameters Launch passes.
const MaxParams = 64

// Launch queues f over grid×block threads with shared bytes of dynamic
// shared memory on the default stream. args holds one 8-byte slot per
// kernel parameter; the driver reads each parameter's declared size from
// the start of its slot (the low bytes on little-endian machines).
func (c *Context) Launch(f Function, grid, block [3]int, shared int, args []uint64) error {
	if len(args) > MaxParams {
		return fmt.Errorf("cuLaunchKernel: %d parameters, at most %d", len(args), MaxParams)
	}
	var argp *C.uint64_t
	if len(args) > 0 {
		argp = (*C.uint64_t)(unsafe.Pointer(&args[0]))
	}
	return check("cuLaunchKernel", C.rl_cu_launch(c.h, f.h,
		C.uint(grid[0]), C.uint(grid[1]), C.uint(grid[2]), C.uint(block[0]), C.uint(block[1]), C.uint(block[2]),
		C.uint(shared), argp, C.int(len(args))))
}
