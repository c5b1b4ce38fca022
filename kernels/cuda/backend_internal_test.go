package cuda

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestTemporariesAreReusedAndFreed(t *testing.T) {
	e := NewEmu()
	b := New(e)
	p := b.temp(12)
	b.release(p)
	if q := b.temp(12); q != p {
		t.Errorf("a released temporary of the same size was not reused")
	} else {
		b.release(q)
	}
	r := b.temp(16)
	b.release(r)
	x := b.Alloc(100)
	b.Free(x)
	b.logitScratch(1000)
	// bf16 GEMMs leave a cached weight copy (w is uploaded: parameters;
	// it stays allocated) and scratch for the activation; Close frees
	// them too.
	if err := b.SetPrecision(PrecisionBF16); err != nil {
		t.Fatal(err)
	}
	w, a, c := b.Alloc(12), b.Alloc(8), b.Alloc(6)
	b.Upload(w, make([]float32, 12))
	b.Scale(a, 1)
	b.Gemm(false, true, 2, 3, 4, 1, a, 4, w, 4, 0, c, 3)
	if hits, converts, bytes := b.BF16CacheStats(); hits != 0 || converts != 2 || bytes != 24 {
		t.Errorf("bf16 cache after one GEMM: %d hits, %d conversions, %d bytes; want 0, 2, 24", hits, converts, bytes)
	}
	b.Free(a)
	b.Free(c)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := e.Live(); n != 1 {
		t.Errorf("%d device allocations left after Close, want 1 (w)", n)
	}
	defer func() {
		if recover() == nil {
			t.Error("releasing a non-temporary did not panic")
		}
	}()
	b2 := New(NewEmu())
	b2.release(dev(b2.Alloc(4)))
}

// Every kernel the backend can launch has its writable arguments read from
// its signature; a kernel missing from the table would have every pointer
// argument stamped as written (correct, but it defeats the bf16 cache).
func TestKernelWritesCoverEveryKernel(t *testing.T) {
	tab := kernelWrites()
	for _, name := range EmuKernels() {
		if strings.HasPrefix(name, "selftest_") {
			continue
		}
		if _, ok := tab[name]; !ok {
			t.Errorf("kernel %s: writable arguments not found in the .cu sources", name)
		}
	}
	for name, want := range map[string][]int{
		"adamw":         {0, 2, 3},
		"attn_fwd":      {0, 1},
		"attn_bwd_dkv":  {0},
		"attn_decode":   {0, 1},
		"policy_loss":   {0, 1, 2},
		"sample_rows":   {0, 1},
		"cast_f32_bf16": {0},
	} {
		if got := tab[name]; !slices.Equal(got, want) {
			t.Errorf("kernel %s writes arguments %v, want %v", name, got, want)
		}
	}
}

// A reused id table is still checked against the buffer it indexes: the
// same slots are refused by a smaller cache pool.
func TestCachedTablesStillCheckIDs(t *testing.T) {
	b := New(NewEmu())
	defer b.Close()
	src := b.Alloc(8)
	big, small := b.Alloc(4*4), b.Alloc(2*4)
	slots := []int32{3, 1}
	b.CacheWrite(big, 4, src, 4, 0, slots)
	b.CacheWrite(big, 4, src, 4, 0, slots) // reused table
	panics := func(f func()) (p bool) {
		defer func() { p = recover() != nil }()
		f()
		return false
	}
	if !panics(func() { b.CacheWrite(small, 4, src, 4, 0, slots) }) {
		t.Error("slot 3 of a 2-row pool was accepted")
	}
	if !panics(func() { b.CacheWrite(big, 4, src, 4, 0, []int32{3, 4}) }) {
		t.Error("slot 4 of a 4-row pool was accepted")
	}
}

// faultyDriver is the emulator with a failing launch, as a GPU kernel
// fault (sticky on a real device) would make it.
type faultyDriver struct{ *Emu }

func (faultyDriver) Launch(string, Dim3, Dim3, int, []uint64) error {
	return errors.New("an illegal memory access was encountered")
}

// TestDeviceErrorThenCleanup: a device error panics with *DeviceError;
// freeing and closing afterwards (cleanup on the way out) neither panics
// nor reaches the driver, whose every call would fail the same way.
func TestDeviceErrorThenCleanup(t *testing.T) {
	emu := NewEmu()
	b := New(faultyDriver{emu})
	x := b.Alloc(16)
	func() {
		defer func() {
			if _, ok := recover().(*DeviceError); !ok {
				t.Fatal("a failing launch did not panic with *DeviceError")
			}
		}()
		b.Scale(x, 2)
	}()
	live := emu.Live()
	b.Free(x)
	if emu.Live() != live {
		t.Error("Free after a device error reached the driver")
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close after a device error: %v", err)
	}
}
