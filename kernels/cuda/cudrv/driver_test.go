//go:build cuda

package cudrv_test

import (
	"testing"

	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/kernels/cuda/cudatest"
	"github.com/rltrain/rltrain/kernels/cuda/cudrv"
)

// open returns a driver on device 0, skipping the test when none is
// present. (Without an NVIDIA driver at all, gorgonia.org/cu ends the
// process during init; scripts/gpu-ci.sh checks for a GPU first.)
func open(t *testing.T) func() (cuda.Driver, error) {
	n, err := cudrv.Devices()
	if err != nil || n == 0 {
		t.Skipf("no CUDA device (count %d, %v)", n, err)
	}
	return func() (cuda.Driver, error) { return cudrv.Open(0) }
}

func TestKernelsMatchCPU(t *testing.T) { cudatest.Kernels(t, open(t)) }

func TestModelMatchesCPU(t *testing.T) { cudatest.Model(t, open(t)) }

func TestDriverBasics(t *testing.T) {
	newDrv := open(t)
	d, err := newDrv()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t.Logf("device: %s", d.Name())
	if err := d.Launch("no_such_kernel", cuda.D1(1), cuda.D1(1), 0, nil); err == nil {
		t.Error("launching an unknown kernel succeeded")
	}
	p, err := d.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	src := []byte("0123456789abcdef0123456789abcdef")
	if err := d.CopyHtoD(p, src); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(src))
	if err := d.CopyDtoH(got, p); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(src) {
		t.Errorf("round trip %q, want %q", got, src)
	}
	if err := d.Free(p); err != nil {
		t.Fatal(err)
	}
}
