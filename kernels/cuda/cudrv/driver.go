//go:build cuda

package cudrv

import (
	"fmt"
	"runtime"
	"sort"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/rltrain/rltrain/kernels/cuda"
)

// Driver implements cuda.Driver on one GPU. Each call makes the driver's
// context current on the calling OS thread (goroutines move between
// threads); work runs on the default stream, which orders kernels, copies
// and cuBLAS calls.
type Driver struct {
	dev   cu.Device
	ctx   cu.CUContext
	name  string
	arch  string
	mods  []cu.Module
	funcs map[string]cu.Function
	blas  *cublas
}

// Devices returns the number of CUDA devices.
func Devices() (int, error) { return cu.NumDevices() }

// Open creates a context on device ordinal, loads the PTX for its
// architecture and cuBLAS.
func Open(ordinal int) (*Driver, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("count CUDA devices: %w", err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("CUDA device %d requested, %d present", ordinal, n)
	}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, fmt.Errorf("CUDA device %d: %w", ordinal, err)
	}
	name, err := dev.Name()
	if err != nil {
		return nil, fmt.Errorf("CUDA device %d name: %w", ordinal, err)
	}
	major, minor, err := dev.ComputeCapability()
	if err != nil {
		return nil, fmt.Errorf("%s compute capability: %w", name, err)
	}
	arch, err := cuda.PTXArch(major, minor)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ctx, err := dev.MakeContext(cu.SchedAuto)
	if err != nil {
		return nil, fmt.Errorf("%s: create context: %w", name, err)
	}
	d := &Driver{dev: dev, ctx: ctx, name: fmt.Sprintf("%s (sm_%d%d, PTX %s)", name, major, minor, arch), arch: arch, funcs: map[string]cu.Function{}}
	if err := d.load(); err != nil {
		_ = d.Close()
		return nil, err
	}
	if d.blas, err = newCuBLAS(); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Driver) load() error {
	mods, err := cuda.PTX(d.arch)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ptx := mods[n]
		m, err := cu.LoadData(string(ptx))
		if err != nil {
			return fmt.Errorf("load PTX module %s for %s: %w", n, d.arch, err)
		}
		d.mods = append(d.mods, m)
		for _, k := range cuda.PTXEntries(ptx) {
			f, err := m.Function(k)
			if err != nil {
				return fmt.Errorf("PTX module %s: kernel %s: %w", n, k, err)
			}
			d.funcs[k] = f
		}
	}
	return nil
}

// bind makes the context current on this OS thread; callers unlock.
func (d *Driver) bind() error {
	runtime.LockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("set CUDA context: %w", err)
	}
	return nil
}

// Name implements cuda.Driver.
func (d *Driver) Name() string { return d.name }

// Alloc implements cuda.Driver.
func (d *Driver) Alloc(bytes int) (cuda.DevPtr, error) {
	if err := d.bind(); err != nil {
		return 0, err
	}
	defer runtime.UnlockOSThread()
	p, err := cu.MemAlloc(int64(max(bytes, 1)))
	if err != nil {
		free, total, _ := cu.MemInfo()
		return 0, fmt.Errorf("allocate %d bytes on %s (%d of %d bytes free): %w", bytes, d.name, free, total, err)
	}
	return cuda.DevPtr(p), nil
}

// Free implements cuda.Driver.
func (d *Driver) Free(p cuda.DevPtr) error {
	if err := d.bind(); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	return cu.MemFree(cu.DevicePtr(p))
}

// CopyHtoD implements cuda.Driver.
func (d *Driver) CopyHtoD(dst cuda.DevPtr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	if err := d.bind(); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	return cu.MemcpyHtoD(cu.DevicePtr(dst), unsafe.Pointer(&src[0]), int64(len(src)))
}

// CopyDtoH implements cuda.Driver.
func (d *Driver) CopyDtoH(dst []byte, src cuda.DevPtr) error {
	if len(dst) == 0 {
		return nil
	}
	if err := d.bind(); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	return cu.MemcpyDtoH(unsafe.Pointer(&dst[0]), cu.DevicePtr(src), int64(len(dst)))
}

// CopyDtoD implements cuda.Driver.
func (d *Driver) CopyDtoD(dst, src cuda.DevPtr, bytes int) error {
	if bytes == 0 {
		return nil
	}
	if err := d.bind(); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	return cu.MemcpyDtoD(cu.DevicePtr(dst), cu.DevicePtr(src), int64(bytes))
}

// Memset implements cuda.Driver.
func (d *Driver) Memset(dst cuda.DevPtr, bytes int) error {
	if bytes == 0 {
		return nil
	}
	if err := d.bind(); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	return cu.MemsetD8(cu.DevicePtr(dst), 0, int64(bytes))
}

// Launch implements cuda.Driver. cu's Launch reads 8 bytes through each
// parameter pointer, which is exactly one slot of args.
func (d *Driver) Launch(name string, grid, block cuda.Dim3, shared int, args []uint64) error {
	f, ok := d.funcs[name]
	if !ok {
		return fmt.Errorf("no kernel named %s in the %s PTX", name, d.arch)
	}
	params := make([]unsafe.Pointer, len(args))
	for i := range args {
		params[i] = unsafe.Pointer(&args[i])
	}
	if err := d.bind(); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	if err := f.Launch(grid.X, max(grid.Y, 1), max(grid.Z, 1), block.X, max(block.Y, 1), max(block.Z, 1), shared, cu.Stream{}, params); err != nil {
		return fmt.Errorf("launch %s grid %v block %v: %w", name, grid, block, err)
	}
	return nil
}

// Sgemm implements cuda.Driver with cuBLAS.
func (d *Driver) Sgemm(transA, transB bool, m, n, k int, alpha float32, a cuda.DevPtr, lda int, b cuda.DevPtr, ldb int, beta float32, c cuda.DevPtr, ldc int) error {
	if m == 0 || n == 0 {
		return nil
	}
	if err := d.bind(); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	return d.blas.sgemm(transA, transB, m, n, k, alpha, uint64(a), lda, uint64(b), ldb, beta, uint64(c), ldc)
}

// GemmBF16 implements cuda.Driver with cublasGemmEx.
func (d *Driver) GemmBF16(transA, transB bool, m, n, k int, alpha float32, a cuda.DevPtr, lda int, b cuda.DevPtr, ldb int, beta float32, c cuda.DevPtr, ldc int) error {
	if m == 0 || n == 0 {
		return nil
	}
	if err := d.bind(); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	return d.blas.gemmBF16(transA, transB, m, n, k, alpha, uint64(a), lda, uint64(b), ldb, beta, uint64(c), ldc)
}

// SetTF32 implements cuda.TF32Driver: cuBLAS's TF32 tensor-op math for
// Sgemm (or full fp32 again).
func (d *Driver) SetTF32(on bool) error {
	if err := d.bind(); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	return d.blas.setTF32(on)
}

// Sync implements cuda.Driver.
func (d *Driver) Sync() error {
	if err := d.bind(); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	return cu.Synchronize()
}

// MemInfo reports free and total device memory in bytes.
func (d *Driver) MemInfo() (free, total int64, err error) {
	if err := d.bind(); err != nil {
		return 0, 0, err
	}
	defer runtime.UnlockOSThread()
	return cu.MemInfo()
}

// Close implements cuda.Driver.
func (d *Driver) Close() error {
	if err := d.bind(); err != nil {
		return err
	}
	defer runtime.UnlockOSThread()
	var first error
	if d.blas != nil {
		first = d.blas.close()
		d.blas = nil
	}
	for _, m := range d.mods {
		if err := m.Unload(); err != nil && first == nil {
			first = err
		}
	}
	d.mods = nil
	if err := d.ctx.Destroy(); err != nil && first == nil {
		first = err
	}
	return first
}

var _ cuda.Driver = (*Driver)(nil)
