package cuda

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// ErrNotCompiled is returned by Open for a GPU when the binary was built
// without the cuda build tag.
var ErrNotCompiled = errors.New("this rltrain binary was built without CUDA support: on a machine with the CUDA toolkit, rebuild with `go build -tags cuda ./cmd/rltrain`")

var (
	openMu  sync.Mutex
	openGPU func(ordinal int) (Driver, error)
)

// RegisterGPU installs the real driver's constructor; kernels/cuda/cudrv
// calls it from its init, so importing cudrv (build tag cuda) is what
// enables GPUs.
func RegisterGPU(open func(ordinal int) (Driver, error)) {
	openMu.Lock()
	defer openMu.Unlock()
	openGPU = open
}

// GPUCompiled reports whether a real driver is linked in.
func GPUCompiled() bool {
	openMu.Lock()
	defer openMu.Unlock()
	return openGPU != nil
}

// Open returns a CUDA backend for a device spec: "" or "0" (first GPU), a
// GPU ordinal, or "emu" for the CPU emulator (slow; for tests and for
// checking a configuration without a GPU).
func Open(spec string) (*Backend, error) {
	if spec == "emu" {
		return New(NewEmu()), nil
	}
	ordinal := 0
	if spec != "" {
		n, err := strconv.Atoi(spec)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("cuda device %q: want a GPU ordinal (0, 1, ...) or \"emu\"", spec)
		}
		ordinal = n
	}
	openMu.Lock()
	open := openGPU
	openMu.Unlock()
	if open == nil {
		return nil, ErrNotCompiled
	}
	drv, err := open(ordinal)
	if err != nil {
		return nil, fmt.Errorf("open CUDA device %d: %w", ordinal, err)
	}
	return New(drv), nil
}
