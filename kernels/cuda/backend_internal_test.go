package cuda

import (
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
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := e.Live(); n != 0 {
		t.Errorf("%d device allocations left after Close", n)
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
		"attn_decode":   {0},
		"policy_loss":   {0, 1, 2},
		"sample_rows":   {0, 1},
		"cast_f32_bf16": {0},
	} {
		if got := tab[name]; !slices.Equal(got, want) {
			t.Errorf("kernel %s writes arguments %v, want %v", name, got, want)
		}
	}
}
