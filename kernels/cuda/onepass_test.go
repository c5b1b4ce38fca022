package cuda_test

import (
	"testing"

	"github.com/rltrain/rltrain/internal/cudatest"
)

// TestOnePassMatchesCPU runs the one-pass output layer and policy loss on
// the emulated driver against the CPU backend.
func TestOnePassMatchesCPU(t *testing.T) { cudatest.OnePass(t, emu) }
