package cuda

import (
	"fmt"
	"os"
	"sort"

	"github.com/rltrain/rltrain/kernels/cuda/cudrv"
)

// GPU is the Driver of a real NVIDIA GPU: the driver API and cuBLAS
// through kernels/cuda/cudrv, loaded at run time, with the embedded PTX
// JIT-compiled by the driver when the device is opened.
type GPU struct {
	dev   cudrv.Device
	ctx   *cudrv.Context
	blas  *cudrv.BLAS
	info  DeviceInfo
	mods  []*cudrv.Module
	funcs map[string]cudrv.Function
}

// DeviceInfo describes an opened GPU and the libraries serving it.
type DeviceInfo struct {
	Ordinal      int
	Name         string
	Major, Minor int    // compute capability
	Driver       int    // CUDA version the driver supports, 1000·major + 10·minor
	PTX          string // the PTX target loaded, e.g. "sm_75"
	TotalBytes   int64
	BLAS         string // e.g. "libcublas.so.12 12.4.5"
}

func (i DeviceInfo) String() string {
	return fmt.Sprintf("GPU %d: %s, compute capability %d.%d, %.1f GiB; driver CUDA %s; %s; kernels: PTX %s",
		i.Ordinal, i.Name, i.Major, i.Minor, float64(i.TotalBytes)/(1<<30), cudaVersion(i.Driver), i.BLAS, i.PTX)
}

func cudaVersion(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

// OpenGPU creates a context on GPU ordinal, JIT-compiles the kernels and
// creates a cuBLAS handle. Without an NVIDIA driver or device the error
// says so; nothing else in the process is affected.
func OpenGPU(ordinal int) (*GPU, error) { return openGPU(ordinal, true) }

// openGPU is OpenGPU; without kernels it skips the PTX JIT (a description
// of the device needs a context and cuBLAS, not the kernels).
func openGPU(ordinal int, kernels bool) (*GPU, error) {
	if err := cudrv.Load(); err != nil {
		return nil, err
	}
	dev, err := cudrv.GetDevice(ordinal)
	if err != nil {
		return nil, err
	}
	g := &GPU{dev: dev, funcs: map[string]cudrv.Function{}}
	i := &g.info
	i.Ordinal = ordinal
	if i.Name, err = dev.Name(); err != nil {
		return nil, fmt.Errorf("CUDA device %d: %w", ordinal, err)
	}
	if i.Major, i.Minor, err = dev.ComputeCapability(); err != nil {
		return nil, fmt.Errorf("%s: %w", i.Name, err)
	}
	if i.PTX, err = PTXArch(i.Major, i.Minor); err != nil {
		return nil, fmt.Errorf("%s: %w", i.Name, err)
	}
	if i.Driver, err = cudrv.DriverVersion(); err != nil {
		return nil, err
	}
	if g.ctx, err = cudrv.NewContext(dev); err != nil {
		return nil, fmt.Errorf("%s: create context: %w", i.Name, err)
	}
	if _, i.TotalBytes, err = g.ctx.MemInfo(); err != nil {
		_ = g.Close()
		return nil, fmt.Errorf("%s: %w", i.Name, err)
	}
	if kernels {
		if err := g.load(); err != nil {
			_ = g.Close()
			return nil, fmt.Errorf("%s: %w", i.Name, err)
		}
	}
	if g.blas, err = cudrv.NewBLAS(g.ctx); err != nil {
		_ = g.Close()
		return nil, fmt.Errorf("%s: %w", i.Name, err)
	}
	i.BLAS = g.blas.Library + " " + g.blas.VersionString()
	return g, nil
}

// load JIT-compiles every embedded PTX module and looks up its kernels.
func (g *GPU) load() error {
	mods, err := PTX(g.info.PTX)
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
		m, err := g.ctx.LoadModule(ptx)
		if err != nil {
			return fmt.Errorf("load PTX module %s (%s): %w", n, g.info.PTX, err)
		}
		g.mods = append(g.mods, m)
		for _, k := range PTXEntries(ptx) {
			f, err := m.Function(k)
			if err != nil {
				return fmt.Errorf("PTX module %s: %w", n, err)
			}
			g.funcs[k] = f
		}
	}
	return nil
}

// Info describes the device.
func (g *GPU) Info() DeviceInfo { return g.info }

// DeviceInfo describes the GPU the backend runs on (false on the
// emulator).
func (b *Backend) DeviceInfo() (DeviceInfo, bool) {
	if g, ok := b.drv.(*trackingDriver).Driver.(*GPU); ok {
		return g.Info(), true
	}
	return DeviceInfo{}, false
}

// OnDevice runs f with the backend's device context current on the calling
// OS thread, as libraries working on the current context (NCCL) need; on
// the emulator it just runs f.
func (b *Backend) OnDevice(f func() error) error {
	if g, ok := b.drv.(*trackingDriver).Driver.(*GPU); ok {
		return g.WithContext(f)
	}
	return f()
}

// ComputeCapability implements the optional capability check of
// SetPrecision and SetTF32.
func (g *GPU) ComputeCapability() (major, minor int) { return g.info.Major, g.info.Minor }

// Name implements Driver.
func (g *GPU) Name() string {
	return fmt.Sprintf("%s, sm_%d%d", g.info.Name, g.info.Major, g.info.Minor)
}

// Alloc implements Driver.
func (g *GPU) Alloc(bytes int) (DevPtr, error) {
	p, err := g.ctx.Alloc(max(bytes, 1))
	if err != nil {
		if free, total, e := g.ctx.MemInfo(); e == nil {
			return 0, fmt.Errorf("allocate %d bytes on %s (%d of %d MiB free): %w", bytes, g.info.Name, free>>20, total>>20, err)
		}
		return 0, fmt.Errorf("allocate %d bytes on %s: %w", bytes, g.info.Name, err)
	}
	return DevPtr(p), nil
}

// Free implements Driver.
func (g *GPU) Free(p DevPtr) error { return g.ctx.Free(uint64(p)) }

// CopyHtoD implements Driver.
func (g *GPU) CopyHtoD(dst DevPtr, src []byte) error { return g.ctx.CopyHtoD(uint64(dst), src) }

// CopyDtoH implements Driver.
func (g *GPU) CopyDtoH(dst []byte, src DevPtr) error { return g.ctx.CopyDtoH(dst, uint64(src)) }

// CopyDtoD implements Driver.
func (g *GPU) CopyDtoD(dst, src DevPtr, bytes int) error {
	if bytes == 0 {
		return nil
	}
	return g.ctx.CopyDtoD(uint64(dst), uint64(src), bytes)
}

// Memset implements Driver.
func (g *GPU) Memset(dst DevPtr, bytes int) error {
	if bytes == 0 {
		return nil
	}
	return g.ctx.Memset(uint64(dst), bytes)
}

// Launch implements Driver.
func (g *GPU) Launch(name string, grid, block Dim3, shared int, args []uint64) error {
	f, ok := g.funcs[name]
	if !ok {
		return fmt.Errorf("no kernel named %s in the %s PTX", name, g.info.PTX)
	}
	dims := [6]int{grid.X, max(grid.Y, 1), max(grid.Z, 1), block.X, max(block.Y, 1), max(block.Z, 1)}
	for _, d := range dims {
		if d < 0 || d > 1<<32-1 {
			return fmt.Errorf("launch %s: dimension %d out of range (grid %v block %v)", name, d, grid, block)
		}
	}
	err := g.ctx.Launch(f, [3]int(dims[:3]), [3]int(dims[3:]), shared, args)
	if err != nil {
		return fmt.Errorf("launch %s grid %v block %v shared %d: %w", name, grid, block, shared, err)
	}
	return nil
}

// Sgemm implements Driver with cuBLAS.
func (g *GPU) Sgemm(transA, transB bool, m, n, k int, alpha float32, a DevPtr, lda int, b DevPtr, ldb int, beta float32, c DevPtr, ldc int) error {
	if m == 0 || n == 0 {
		return nil
	}
	return g.blas.Sgemm(transA, transB, m, n, k, alpha, uint64(a), lda, uint64(b), ldb, beta, uint64(c), ldc)
}

// GemmBF16 implements Driver with cublasGemmEx: bf16 A and B, fp32 C,
// CUBLAS_COMPUTE_32F.
func (g *GPU) GemmBF16(transA, transB bool, m, n, k int, alpha float32, a DevPtr, lda int, b DevPtr, ldb int, beta float32, c DevPtr, ldc int) error {
	if m == 0 || n == 0 {
		return nil
	}
	return g.blas.GemmEx(transA, transB, m, n, k, alpha, uint64(a), cudrv.DataBF16, lda, uint64(b), ldb, beta, uint64(c), cudrv.DataFloat, ldc, cudrv.Compute32F)
}

// SetTF32 implements TF32Driver: cuBLAS's TF32 tensor-op math for Sgemm,
// or full fp32 again.
func (g *GPU) SetTF32(on bool) error {
	mode := cudrv.MathDefault
	if on {
		mode = cudrv.MathTF32
	}
	return g.blas.SetMathMode(mode)
}

// Sync implements Driver.
func (g *GPU) Sync() error { return g.ctx.Sync() }

// WithContext runs f with the GPU's context current on the calling OS
// thread, as NCCL's calls need.
func (g *GPU) WithContext(f func() error) error { return g.ctx.Do(f) }

// MemInfo reports free and total device memory in bytes.
func (g *GPU) MemInfo() (free, total int64, err error) { return g.ctx.MemInfo() }

// Close implements Driver: the cuBLAS handle, the modules and the context
// (which frees every allocation made in it).
func (g *GPU) Close() error {
	var errs []error
	if g.blas != nil {
		errs = append(errs, g.blas.Destroy())
		g.blas = nil
	}
	for _, m := range g.mods {
		errs = append(errs, m.Unload())
	}
	g.mods = nil
	if g.ctx != nil {
		errs = append(errs, g.ctx.Destroy())
		g.ctx = nil
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

var _ TF32Driver = (*GPU)(nil)

// Probe describes the GPUs this process can use, one line per device, or
// why it can use none. It creates a context and a cuBLAS handle on each
// (the kernels are JIT-compiled only when a backend opens the device).
func Probe() []string {
	n, err := cudrv.DeviceCount()
	if err != nil {
		return []string{err.Error()}
	}
	if n == 0 {
		return []string{"the NVIDIA driver lists no CUDA device" + visibleDevices()}
	}
	var out []string
	for i := range n {
		g, err := openGPU(i, false)
		if err != nil {
			out = append(out, fmt.Sprintf("GPU %d: %v", i, err))
			continue
		}
		out = append(out, g.Info().String())
		if err := g.Close(); err != nil {
			out = append(out, fmt.Sprintf("GPU %d: close: %v", i, err))
		}
	}
	return out
}

func visibleDevices() string {
	if v, ok := os.LookupEnv("CUDA_VISIBLE_DEVICES"); ok {
		return fmt.Sprintf(" (CUDA_VISIBLE_DEVICES=%q)", v)
	}
	return ""
}

// noGPU is Open's error when no device can be opened: what was found and
// what to use instead.
func noGPU(ordinal int, err error) error {
	return fmt.Errorf("CUDA device %d: %w (use backend cpu, or cuda-emu to run the CUDA kernels on the CPU emulator)", ordinal, err)
}
