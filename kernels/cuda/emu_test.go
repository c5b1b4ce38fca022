package cuda

import (
	"math"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// emuBuf allocates a device buffer on e holding v.
func emuBuf(t *testing.T, e *Emu, v []float32) DevPtr {
	t.Helper()
	p, err := e.Alloc(4 * max(1, len(v)))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.CopyHtoD(p, bytesOf(v)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Free(p) })
	return p
}

func emuRead(t *testing.T, e *Emu, p DevPtr, n int) []float32 {
	t.Helper()
	v := make([]float32, n)
	if err := e.CopyDtoH(bytesOf(v), p); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEmuBlockReduce(t *testing.T) {
	e := NewEmu()
	for _, tc := range []struct{ n, threads int }{{1, 32}, {100, 64}, {1000, 256}, {4097, 1024}} {
		x := make([]float32, tc.n)
		for i := range x {
			x[i] = float32(i%7) - 2.5
		}
		blocks := (tc.n + tc.threads - 1) / tc.threads
		out := emuBuf(t, e, make([]float32, blocks))
		if err := e.Launch("selftest_reduce", D1(blocks), D1(tc.threads), 0, []uint64{ArgPtr(out), ArgPtr(emuBuf(t, e, x)), ArgInt(tc.n)}); err != nil {
			t.Fatal(err)
		}
		got := emuRead(t, e, out, blocks)
		for b := 0; b < blocks; b++ {
			var want float64
			for i := b * tc.threads; i < min(tc.n, (b+1)*tc.threads); i++ {
				want += float64(x[i])
			}
			if math.Abs(float64(got[b])-want) > 1e-3 {
				t.Errorf("n=%d threads=%d block %d: sum %v, want %v", tc.n, tc.threads, b, got[b], want)
			}
		}
	}
}

// A missing __syncthreads makes each thread read its neighbour's shared
// element before the neighbour wrote it: under the fiber schedule every
// thread runs to its first barrier in turn, so the result is wrong (the
// race detector reports it too; see scripts/cuda/sanitize.sh).
func TestEmuMissingBarrierChangesResult(t *testing.T) {
	e := NewEmu()
	n := 256
	x := make([]float32, n)
	for i := range x {
		x[i] = 1
	}
	out := emuBuf(t, e, make([]float32, 1))
	// Poison the shared tile from a previous correct launch with other data.
	if err := e.Launch("selftest_missing_barrier", D1(1), D1(n), 0, []uint64{ArgPtr(out), ArgPtr(emuBuf(t, e, make([]float32, n))), ArgInt(n)}); err != nil {
		t.Fatal(err)
	}
	if err := e.Launch("selftest_missing_barrier", D1(1), D1(n), 0, []uint64{ArgPtr(out), ArgPtr(emuBuf(t, e, x)), ArgInt(n)}); err != nil {
		t.Fatal(err)
	}
	if got := emuRead(t, e, out, 1)[0]; got == float32(n) {
		t.Errorf("sum without a barrier is %v, the correct value: the missing barrier went unnoticed", got)
	}
}

// TestEmuShuffleIsNotAFence runs a kernel that orders a shared-memory
// write and a neighbour lane's read only by a shuffle. The fiber schedule
// happens to give the intended values; scripts/cuda/sanitize.sh runs it
// under the race detector, which must report the race.
func TestEmuShuffleIsNotAFence(t *testing.T) {
	e := NewEmu()
	x := make([]float32, 32)
	for i := range x {
		x[i] = float32(i)
	}
	out := emuBuf(t, e, make([]float32, 32))
	if err := e.Launch("selftest_shuffle_not_fence", D1(1), D1(32), 0, []uint64{ArgPtr(out), ArgPtr(emuBuf(t, e, x))}); err != nil {
		t.Fatal(err)
	}
	got := emuRead(t, e, out, 32)
	for i := range got {
		if want := float32((i+1)%32 + (i ^ 1)); got[i] != want {
			t.Errorf("lane %d: %v, want %v", i, got[i], want)
		}
	}
}

func TestEmuShuffles(t *testing.T) {
	e := NewEmu()
	cases := []struct {
		mask  uint32
		width int
	}{{0xffffffff, 32}, {0xffffffff, 8}, {0x0000ffff, 32}, {0x5555ffff, 16}}
	for _, tc := range cases {
		out := emuBuf(t, e, make([]float32, 64*7))
		if err := e.Launch("selftest_shuffles", D1(1), D1(64), 0, []uint64{ArgPtr(out), uint64(tc.mask), ArgInt(tc.width)}); err != nil {
			t.Fatal(err)
		}
		got := emuRead(t, e, out, 64*7)
		in := func(l int) bool { return tc.mask>>(l%32)&1 == 1 }
		for tid := 0; tid < 64; tid++ {
			l := tid % 32
			if !in(l) {
				continue
			}
			warp := tid / 32 * 32
			seg := l / tc.width * tc.width
			val := func(src int, own bool) float64 {
				if own {
					return float64(tid)
				}
				if !in(src) {
					return math.NaN()
				}
				return float64(warp + src)
			}
			var ballot uint32
			anyv, allv := 0.0, 1.0
			for j := 0; j < 32; j++ {
				if in(j) && j%3 == 0 {
					ballot |= 1 << j
				}
				if in(j) && j == 5 {
					anyv = 1
				}
			}
			want := []float64{
				val(seg+3%tc.width, false),
				val(l-2, l-seg < 2),
				val(l+2, l-seg+2 >= tc.width),
				val(l^1, false),
				float64(float32(ballot)), allv, anyv,
			}
			for k, w := range want {
				g := float64(got[tid*7+k])
				if math.IsNaN(w) != math.IsNaN(g) || (!math.IsNaN(w) && g != w) {
					t.Errorf("mask %#x width %d thread %d result %d: got %v, want %v", tc.mask, tc.width, tid, k, g, w)
				}
			}
		}
	}
}

func TestEmuReportsUndefinedBehaviour(t *testing.T) {
	e := NewEmu()
	out := emuBuf(t, e, make([]float32, 64*7))
	cases := []struct {
		kernel  string
		threads int
		args    []uint64
		want    string
	}{
		{"selftest_divergent_barrier", 64, []uint64{ArgPtr(out)}, "deadlock"},
		{"selftest_exit_before_barrier", 64, []uint64{ArgPtr(out), ArgInt(40)}, "exited threads"},
		{"selftest_divergent_shuffle", 64, []uint64{ArgPtr(out)}, "deadlock"},
		{"selftest_shuffles", 48, []uint64{ArgPtr(out), uint64(0xffffffff), ArgInt(32)}, "does not exist"},
		{"selftest_shuffles", 64, []uint64{ArgPtr(out), uint64(0xffffffff), ArgInt(12)}, "not a power of two"},
		{"no_such_kernel", 64, nil, "no kernel named"},
		{"selftest_reduce", 64, []uint64{ArgPtr(out)}, "takes 3 arguments"},
	}
	for _, tc := range cases {
		err := e.Launch(tc.kernel, D1(2), D1(tc.threads), 0, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.kernel, err, tc.want)
		}
	}
	// The emulator keeps working after an aborted launch.
	TestEmuBlockReduce(t)
}

func TestEmuAtomicsAcrossWorkers(t *testing.T) {
	SetEmuWorkers(4)
	defer SetEmuWorkers(0)
	e := NewEmu()
	out := emuBuf(t, e, make([]float32, 1))
	imax := emuBuf(t, e, make([]float32, 1))
	if err := e.Launch("selftest_atomics", D1(37), D1(96), 0, []uint64{ArgPtr(out), ArgPtr(imax)}); err != nil {
		t.Fatal(err)
	}
	if got := emuRead(t, e, out, 1)[0]; got != 37*96 {
		t.Errorf("atomicAdd total %v, want %d", got, 37*96)
	}
	var m int32
	if err := e.CopyDtoH(unsafe.Slice((*byte)(unsafe.Pointer(&m)), 4), imax); err != nil {
		t.Fatal(err)
	}
	if m != 37*96-1 {
		t.Errorf("atomicMax %d, want %d", m, 37*96-1)
	}
}

func TestEmuDynamicSharedIsPoisoned(t *testing.T) {
	e := NewEmu()
	out := emuBuf(t, e, make([]float32, 32))
	if err := e.Launch("selftest_dyn_shared", D1(1), D1(32), 32*4, []uint64{ArgPtr(out)}); err != nil {
		t.Fatal(err)
	}
	for i, v := range emuRead(t, e, out, 32) {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("uninitialised shared element %d reads %v, want NaN", i, v)
		}
	}
}

func TestEmuBoundsChecks(t *testing.T) {
	e := NewEmu()
	p, err := e.Alloc(16)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.CopyHtoD(p+8, make([]byte, 512)); err == nil {
		t.Error("copy past the end of an allocation was accepted")
	}
	if err := e.Free(p); err != nil {
		t.Fatal(err)
	}
	if err := e.Free(p); err == nil {
		t.Error("double free was accepted")
	}
}

// TestEmuPlantedOutOfBounds launches a kernel that reads past the end of
// its input. It runs only under scripts/cuda/sanitize.sh, which expects the
// address sanitizer to stop it.
func TestEmuPlantedOutOfBounds(t *testing.T) {
	if os.Getenv("RLTRAIN_EMU_PLANTED") != "oob" {
		t.Skip("planted bug for the address sanitizer; set RLTRAIN_EMU_PLANTED=oob")
	}
	e := NewEmu()
	n := 100
	out := emuBuf(t, e, make([]float32, n))
	if err := e.Launch("selftest_out_of_bounds", D1(1), D1(128), 0, []uint64{ArgPtr(out), ArgPtr(emuBuf(t, e, make([]float32, n))), ArgInt(n)}); err != nil {
		t.Fatal(err)
	}
	t.Error("the out-of-bounds read went unnoticed")
}
