package dist

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// buildStandinNCCL compiles the stand-in libnccl.so.2 into a temporary
// directory with the script make gpu-standin uses.
func buildStandinNCCL(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mpicc"); err != nil {
		t.Skip("mpicc not found: install OpenMPI (make setup) to build the stand-in NCCL")
	}
	dir := t.TempDir()
	script, err := filepath.Abs("../../scripts/standin-nccl.sh")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("build the stand-in NCCL: %v\n%s", err, out)
	}
	return filepath.Join(dir, "libnccl.so.2")
}

// The binding's whole call sequence against the stand-in NCCL with two
// ranks: rank 0's id broadcast over MPI, ncclCommInitRank, all-reduces in
// place and out of place for each data type, a group, an error from the
// library, ncclCommDestroy.
func TestNCCLStandin(t *testing.T) {
	lib := buildStandinNCCL(t)
	traceBase := filepath.Join(t.TempDir(), "trace")
	out, err, _ := runMPI(t, "nccl", NCCLLibraryEnv+"="+lib, "RLTRAIN_NCCL_STANDIN_TRACE="+traceBase)
	if err != nil {
		t.Fatalf("two ranks with the stand-in NCCL: %v\n%s", err, out)
	}
	for r := 0; r < 2; r++ {
		if want := fmt.Sprintf("rank %d: NCCL 2.21.5 (%s) ok", r, lib); !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
		raw, err := os.ReadFile(fmt.Sprintf("%s.%d", traceBase, r))
		if err != nil {
			t.Fatal(err)
		}
		calls := strings.Split(strings.TrimSpace(string(raw)), "\n")
		want := []string{"ncclGetVersion"}
		if r == 0 {
			want = append(want, "ncclGetUniqueId")
		}
		want = append(want,
			fmt.Sprintf("ncclCommInitRank nranks=2 rank=%d", r),
			"ncclAllReduce count=1000 datatype=7 op=0 inplace=1 stream=(nil)",
			"ncclAllReduce count=333 datatype=8 op=0 inplace=0 stream=(nil)",
			"ncclAllReduce count=5 datatype=4 op=0 inplace=1 stream=(nil)",
			"ncclGroupStart",
			"ncclAllReduce count=600 datatype=7 op=0 inplace=1 stream=(nil)",
			"ncclAllReduce count=400 datatype=7 op=0 inplace=1 stream=(nil)",
			"ncclGroupEnd",
			"ncclAllReduce count=4 datatype=7 op=0 inplace=1 stream=(nil)",
			"ncclCommDestroy")
		if strings.Join(calls, "\n") != strings.Join(want, "\n") {
			t.Errorf("rank %d called\n%s\nwant\n%s", r, strings.Join(calls, "\n"), strings.Join(want, "\n"))
		}
	}
}

func workerNCCL(t *testing.T, c Comm) {
	r := c.Rank()
	n, err := OpenNCCL(c)
	if err != nil {
		t.Fatal(err)
	}
	gen32 := func(g *rand.Rand) float32 { return float32(g.NormFloat64()) }
	addr := func(p unsafe.Pointer) uintptr { return uintptr(p) }
	in32 := [][]float32{rankData(0, 1000, gen32), rankData(1, 1000, gen32)}
	want32 := leftFold(in32)
	f32 := append([]float32(nil), in32[r]...)
	if err := n.AllReduceSum(addr(unsafe.Pointer(&f32[0])), addr(unsafe.Pointer(&f32[0])), len(f32), Float32, 0); err != nil {
		t.Fatal(err)
	}
	for i := range f32 {
		if f32[i] != want32[i] {
			t.Fatalf("rank %d: float32 sum[%d] = %v, want %v", r, i, f32[i], want32[i])
		}
	}
	src := make([]float64, 333)
	for i := range src {
		src[i] = float64(i) * float64(r+1)
	}
	dst := make([]float64, 333)
	if err := n.AllReduceSum(addr(unsafe.Pointer(&src[0])), addr(unsafe.Pointer(&dst[0])), len(src), Float64, 0); err != nil {
		t.Fatal(err)
	}
	if dst[10] != 30 || src[10] != float64(10*(r+1)) {
		t.Errorf("rank %d: out-of-place float64 sum %v (source %v), want 30 (source unchanged)", r, dst[10], src[10])
	}
	i64 := []int64{1, 2, 3, 4, int64(r) << 40}
	if err := n.AllReduceSum(addr(unsafe.Pointer(&i64[0])), addr(unsafe.Pointer(&i64[0])), len(i64), Int64, 0); err != nil {
		t.Fatal(err)
	}
	if i64[3] != 8 || i64[4] != 1<<40 {
		t.Errorf("rank %d: int64 sum %v", r, i64)
	}
	// Two buckets of one buffer, launched as a group.
	g := make([]float32, 1000)
	for i := range g {
		g[i] = float32(r + 1)
	}
	err = n.Group(func() error {
		if err := n.AllReduceSum(addr(unsafe.Pointer(&g[0])), addr(unsafe.Pointer(&g[0])), 600, Float32, 0); err != nil {
			return err
		}
		return n.AllReduceSum(addr(unsafe.Pointer(&g[600])), addr(unsafe.Pointer(&g[600])), 400, Float32, 0)
	})
	if err != nil || g[0] != 3 || g[999] != 3 {
		t.Errorf("rank %d: grouped buckets %v %v %v", r, g[0], g[999], err)
	}
	// NULL buffers: the library's error, with its message.
	err = n.AllReduceSum(0, 0, 4, Float32, 0)
	if err == nil || !strings.Contains(err.Error(), "invalid argument") || !strings.Contains(err.Error(), "ncclResult_t 4") {
		t.Errorf("rank %d: NULL buffers gave %v", r, err)
	}
	if err := n.AllReduceSum(0, 0, 4, DType(6), 0); err == nil || !strings.Contains(err.Error(), "unsupported data type") {
		t.Errorf("rank %d: half precision gave %v", r, err)
	}
	if err := n.AsyncError(); err != nil {
		t.Error(err)
	}
	desc := n.String()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.AllReduceSum(addr(unsafe.Pointer(&g[0])), addr(unsafe.Pointer(&g[0])), 1, Float32, 0); err == nil {
		t.Errorf("rank %d: all-reduce after Close accepted", r)
	}
	runtime.KeepAlive(f32)
	runtime.KeepAlive(src)
	runtime.KeepAlive(dst)
	runtime.KeepAlive(i64)
	runtime.KeepAlive(g)
	fmt.Printf("rank %d: %s ok\n", r, desc)
}
