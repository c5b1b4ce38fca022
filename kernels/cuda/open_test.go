package cuda

import (
	"errors"
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
	if !GPUCompiled() {
		if _, err := Open("0"); !errors.Is(err, ErrNotCompiled) {
			t.Errorf("Open(0) without a real driver: %v, want ErrNotCompiled", err)
		}
	}
}
