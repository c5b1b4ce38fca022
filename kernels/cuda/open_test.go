package cuda

import (
	"os"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	be, err := Open("emu")
	if err != nil || be.Name() != "cuda (emulator)" {
		t.Fatalf("Open(emu) = %v, %v", be, err)
	}
	if _, err := Open("gpu7"); err == nil {
		t.Error("Open accepted a malformed device spec")
	}
}

// TestOpenWithoutGPU: where no NVIDIA driver is installed (CI), opening a
// GPU is an error that says so and names the alternatives.
func TestOpenWithoutGPU(t *testing.T) {
	if os.Getenv("LD_LIBRARY_PATH") != "" {
		t.Skip("LD_LIBRARY_PATH is set: a driver (or the stand-in) may be visible")
	}
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Skip("this machine has an NVIDIA device")
	}
	be, err := Open("0")
	if err == nil {
		be.Close()
		t.Skip("a CUDA driver is installed")
	}
	for _, want := range []string{"CUDA device 0", "backend cpu", "cuda-emu"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open(0) without a GPU: %q does not mention %q", err, want)
		}
	}
}
