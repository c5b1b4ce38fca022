package cuda

import (
	"fmt"
	"strconv"
)

// Open returns a CUDA backend for a device spec: "" or "0" (the first
// GPU), a GPU ordinal, or "emu" for the CPU emulator (slow; for tests and
// for checking a configuration without a GPU). Without an NVIDIA driver or
// GPU, a GPU spec is an error that says what was missing.
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
	g, err := OpenGPU(ordinal)
	if err != nil {
		return nil, noGPU(ordinal, err)
	}
	return New(g), nil
}
