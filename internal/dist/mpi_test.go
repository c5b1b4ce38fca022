package dist

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests in this file start this test binary under mpirun with two
// ranks; the ranks run TestMPIWorker with the scenario named in
// workerEnv.
const workerEnv = "RLTRAIN_DIST_TEST_WORKER"

// mpirunArgs returns the command that starts n ranks of this test binary
// running scenario, or skips when mpirun is missing.
func mpirun(t *testing.T, n int, scenario string, extraEnv ...string) *exec.Cmd {
	t.Helper()
	path, err := Mpirun()
	if err != nil {
		t.Skip(err.Error() + "; the MPI tests need it")
	}
	cmd := exec.Command(path, MpirunFlags(n, os.Args[0], "-test.run=^TestMPIWorker$", "-test.count=1")...)
	cmd.Env = append(os.Environ(), workerEnv+"="+scenario)
	cmd.Env = append(cmd.Env, extraEnv...)
	return cmd
}

// hydra returns the command that starts n ranks under MPICH's launcher,
// or skips when MPICH is not installed.
func hydra(t *testing.T, n int, scenario string) *exec.Cmd {
	t.Helper()
	path, err := exec.LookPath("mpiexec.hydra")
	if err != nil {
		t.Skip("mpiexec.hydra not found: install MPICH (make setup installs Debian's mpich) to test its ABI")
	}
	cmd := exec.Command(path, "-n", fmt.Sprint(n), os.Args[0], "-test.run=^TestMPIWorker$", "-test.count=1")
	cmd.Env = append(os.Environ(), workerEnv+"="+scenario, "RLTRAIN_DIST_TEST_IMPL=MPICH")
	return cmd
}

// runMPI runs scenario and returns its output, exit error and duration.
func runMPI(t *testing.T, scenario string, extraEnv ...string) (string, error, time.Duration) {
	t.Helper()
	cmd := mpirun(t, 2, scenario, extraEnv...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	return string(out), err, time.Since(start)
}

func TestMPICollectives(t *testing.T) {
	out, err, _ := runMPI(t, "collectives")
	if err != nil {
		t.Fatalf("two ranks under mpirun: %v\n%s", err, out)
	}
	for r := 0; r < 2; r++ {
		if want := fmt.Sprintf("rank %d of 2 ok", r); !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// The same collectives through MPICH's ABI (integer handles), started by
// its hydra launcher.
func TestMPICHCollectives(t *testing.T) {
	out, err := hydra(t, 2, "collectives").CombinedOutput()
	if err != nil {
		t.Fatalf("two ranks under mpiexec.hydra: %v\n%s", err, out)
	}
	for r := 0; r < 2; r++ {
		if want := fmt.Sprintf("rank %d of 2 ok", r); !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A hung rank under MPICH: the watchdog's MPI_Abort ends the job.
func TestMPICHHungRankEndsJob(t *testing.T) {
	start := time.Now()
	out, err := hydra(t, 2, "hang").CombinedOutput()
	took := time.Since(start)
	if err == nil || !strings.Contains(string(out), "another rank died or hangs") {
		t.Fatalf("a hung rank under MPICH: %v after %v\n%s", err, took, out)
	}
	if took > 100*time.Second {
		t.Errorf("job took %v to end with a 2 s collective timeout (bound 100 s, mpirun's start-up included)", took)
	}
	t.Logf("hung rank under MPICH: job ended in %v (%v)", took.Round(time.Millisecond), err)
}

// A rank that stops calling collectives (hangs) makes the other one abort
// the job once its collective has waited the timeout (2 s here).
func TestMPIHungRankEndsJob(t *testing.T) {
	out, err, took := runMPI(t, "hang")
	if err == nil {
		t.Fatalf("a hung rank: job exited 0 after %v\n%s", took, out)
	}
	if !strings.Contains(out, "another rank died or hangs") {
		t.Errorf("no watchdog message:\n%s", out)
	}
	if took > 100*time.Second {
		t.Errorf("job took %v to end with a 2 s collective timeout (bound 100 s, mpirun's start-up included)", took)
	}
	t.Logf("hung rank: job ended in %v (%v)", took.Round(time.Millisecond), err)
}

// A rank that dies (SIGKILL) while the other waits in a collective with a
// 10-minute timeout: the launcher ends the job, non-zero, well before.
func TestMPIKilledRankEndsJob(t *testing.T) {
	out, err, took := runMPI(t, "die")
	if err == nil {
		t.Fatalf("a killed rank: job exited 0 after %v\n%s", took, out)
	}
	if took > 100*time.Second {
		t.Errorf("job took %v to end after a rank was killed (bound 100 s, mpirun's start-up included)", took)
	}
	t.Logf("killed rank: job ended in %v (%v)", took.Round(time.Millisecond), err)
}

// TestMPIWorker is one rank of the scenarios above; on its own it skips.
func TestMPIWorker(t *testing.T) {
	scenario := os.Getenv(workerEnv)
	if scenario == "" {
		t.Skip("one rank of the MPI tests: started under mpirun by TestMPICollectives and the others")
	}
	timeout := 10 * time.Minute
	if scenario == "hang" {
		timeout = 2 * time.Second
	}
	c, err := Open(Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	if c.Size() != 2 {
		t.Fatalf("%s: %d ranks, want 2", c, c.Size())
	}
	switch scenario {
	case "collectives":
		workerCollectives(t, c)
	case "nccl":
		workerNCCL(t, c)
	case "hang":
		if c.Rank() == 1 {
			time.Sleep(120 * time.Second)
		}
		_ = c.Barrier()
		t.Fatal("the barrier returned although rank 1 never entered it")
	case "die":
		if err := c.Barrier(); err != nil {
			t.Fatal(err)
		}
		if c.Rank() == 1 {
			time.Sleep(200 * time.Millisecond)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		_ = c.Barrier()
		t.Fatal("the barrier returned although rank 1 was killed")
	default:
		t.Fatalf("unknown scenario %q", scenario)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func workerCollectives(t *testing.T, c Comm) {
	r := c.Rank()
	if c.LocalSize() != 2 || c.LocalRank() != r {
		t.Errorf("rank %d: local rank %d of %d, want %d of 2", r, c.LocalRank(), c.LocalSize(), r)
	}
	impl := os.Getenv("RLTRAIN_DIST_TEST_IMPL")
	if impl == "" {
		impl = "Open MPI"
	}
	if !strings.HasPrefix(c.String(), "MPI: "+impl) {
		t.Errorf("described as %q", c)
	}
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
	msg, err := BcastBytes(c, []byte(fmt.Sprintf("hello from %d", r)), 1)
	if err != nil || string(msg) != "hello from 1" {
		t.Errorf("rank %d: broadcast %q %v", r, msg, err)
	}
	// Sizes on both sides of the gather/scatter switch, and one large
	// enough (4M float32 = 16 MB) to be a real gradient buffer.
	for _, size := range []int{1, 3, 8192, 8193, 100003, 4 << 20} {
		inputs := make([][]float32, 2)
		for k := range inputs {
			inputs[k] = rankData(k, size, func(g *rand.Rand) float32 {
				return float32(g.NormFloat64() * math.Pow(10, float64(g.IntN(8)-4)))
			})
		}
		want := leftFold(inputs)
		buf := append([]float32(nil), inputs[r]...)
		if err := AllReduceSum(c, buf, nil); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Float32bits(buf[i]) != math.Float32bits(want[i]) {
				t.Fatalf("rank %d size %d: value %d = %v, rank-order sum %v", r, size, i, buf[i], want[i])
			}
		}
		if err := CheckSame(c, "reduced buffer", Float32Bytes(buf)); err != nil {
			t.Fatal(err)
		}
	}
	i64 := []int64{int64(r) + 1, 1 << 40}
	if err := AllReduceSum(c, i64, nil); err != nil || i64[0] != 3 || i64[1] != 2<<40 {
		t.Errorf("rank %d: int64 sum %v %v", r, i64, err)
	}
	f64 := []float64{0.1 * float64(r+1)}
	tenth, fifth := 0.1, 0.2
	if err := AllReduceSum(c, f64, nil); err != nil || f64[0] != tenth+fifth {
		t.Errorf("rank %d: float64 sum %v %v", r, f64, err)
	}
	w := []float32{1, 2}
	if r == 1 {
		w[1] = 2.5
	}
	if err := CheckSame(c, "weights", Float32Bytes(w)); err == nil || !strings.Contains(err.Error(), "ranks [1] differ") {
		t.Errorf("rank %d: differing weights: %v", r, err)
	}
	fmt.Printf("rank %d of 2 ok\n", r)
}
