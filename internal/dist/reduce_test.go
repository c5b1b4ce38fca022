package dist

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// runGroup runs f on every rank of an in-process group and waits.
func runGroup(t *testing.T, n int, f func(c Comm)) {
	t.Helper()
	var wg sync.WaitGroup
	for _, c := range NewGroup(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(c)
		}()
	}
	wg.Wait()
}

// rankData is rank r's deterministic input.
func rankData[T Number](r, n int, gen func(*rand.Rand) T) []T {
	rng := rand.New(rand.NewPCG(uint64(r), uint64(n)))
	v := make([]T, n)
	for i := range v {
		v[i] = gen(rng)
	}
	return v
}

// leftFold is the sum in rank order, computed here independently.
func leftFold[T Number](inputs [][]T) []T {
	out := append([]T(nil), inputs[0]...)
	for _, in := range inputs[1:] {
		for i := range out {
			out[i] = out[i] + in[i]
		}
	}
	return out
}

func checkAllReduce[T Number](t *testing.T, name string, gen func(*rand.Rand) T, equal func(a, b T) bool) {
	// 64 KiB / (8 bytes * 3 ranks) = 2730 values: sizes on both sides of
	// the gather/scatter switch, sizes not divisible by the rank count,
	// and fewer values than ranks.
	for _, ranks := range []int{1, 2, 3, 4} {
		for _, size := range []int{0, 1, 2, 3, 5, 1000, 2730, 2731, 8191, 100003} {
			inputs := make([][]T, ranks)
			for r := range inputs {
				inputs[r] = rankData(r, size, gen)
			}
			want := leftFold(inputs)
			got := make([][]T, ranks)
			runGroup(t, ranks, func(c Comm) {
				buf := append([]T(nil), inputs[c.Rank()]...)
				var s Scratch
				if err := AllReduceSum(c, buf, &s); err != nil {
					t.Errorf("%s ranks=%d size=%d: %v", name, ranks, size, err)
				}
				got[c.Rank()] = buf
			})
			for r := range got {
				for i := range want {
					if !equal(got[r][i], want[i]) {
						t.Fatalf("%s ranks=%d size=%d: rank %d value %d = %v, rank-order sum %v",
							name, ranks, size, r, i, got[r][i], want[i])
					}
				}
			}
		}
	}
}

func bitsEqual32(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }
func bitsEqual64(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

// The sum is the rank-order left fold, bit for bit, on every rank: the
// float32 inputs span many magnitudes so that another order would round
// differently.
func TestAllReduceSumRankOrder(t *testing.T) {
	checkAllReduce(t, "float32", func(r *rand.Rand) float32 {
		return float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(8)-4)))
	}, bitsEqual32)
	checkAllReduce(t, "float64", func(r *rand.Rand) float64 {
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(16)-8))
	}, bitsEqual64)
	checkAllReduce(t, "int64", func(r *rand.Rand) int64 { return r.Int64N(1<<40) - 1<<39 }, func(a, b int64) bool { return a == b })
}

// The order matters: with these values, another order gives other bits.
func TestAllReduceSumOrderIsObservable(t *testing.T) {
	in := [][]float32{{1e8}, {1}, {-1e8}, {1}}
	want := leftFold(in) // ((1e8+1)-1e8)+1 = 1 in float32 (1e8+1 rounds to 1e8)
	if want[0] != 1 {
		t.Fatalf("left fold %v, want 1", want[0])
	}
	runGroup(t, 4, func(c Comm) {
		buf := append([]float32(nil), in[c.Rank()]...)
		if err := AllReduceSum(c, buf, nil); err != nil {
			t.Error(err)
		}
		if buf[0] != 1 {
			t.Errorf("rank %d: sum %v, rank-order sum 1 (pairwise would give 2)", c.Rank(), buf[0])
		}
	})
}

func TestGatherAndBroadcast(t *testing.T) {
	runGroup(t, 3, func(c Comm) {
		msg := bytes.Repeat([]byte{byte('a' + c.Rank())}, c.Rank()*5)
		all, err := AllGatherBytes(c, msg)
		if err != nil {
			t.Error(err)
			return
		}
		for r, m := range all {
			if want := bytes.Repeat([]byte{byte('a' + r)}, r*5); !bytes.Equal(m, want) {
				t.Errorf("rank %d: gathered %q from rank %d, want %q", c.Rank(), m, r, want)
			}
		}
		var mine []byte
		if c.Rank() == 1 {
			mine = []byte("from one")
		}
		got, err := BcastBytes(c, mine, 1)
		if err != nil || string(got) != "from one" {
			t.Errorf("rank %d: broadcast %q, %v", c.Rank(), got, err)
		}
		vals, err := AllGather(c, []float64{float64(c.Rank()), -1})
		if err != nil || len(vals) != 6 || vals[4] != 2 || vals[5] != -1 {
			t.Errorf("rank %d: gathered %v, %v", c.Rank(), vals, err)
		}
	})
}

func TestCheckSameNamesRanks(t *testing.T) {
	runGroup(t, 4, func(c Comm) {
		w := []float32{1, 2, 3}
		if err := CheckSame(c, "weights", Float32Bytes(w)); err != nil {
			t.Errorf("rank %d: equal weights reported: %v", c.Rank(), err)
		}
		if c.Rank() == 1 || c.Rank() == 3 {
			w[2] = math.Nextafter32(3, 4)
		}
		err := CheckSame(c, "weights", Float32Bytes(w))
		if err == nil || !strings.Contains(err.Error(), "ranks [1 3] differ") {
			t.Errorf("rank %d: one-ulp difference on ranks 1 and 3: %v", c.Rank(), err)
		}
	})
}

func TestLocalComm(t *testing.T) {
	buf := []float32{1, 2}
	if err := AllReduceSum(Local, buf, nil); err != nil || buf[0] != 1 || buf[1] != 2 {
		t.Fatalf("one-process sum changed the buffer: %v %v", buf, err)
	}
	if err := Local.Bcast([]byte{1}, 1); err == nil {
		t.Fatal("broadcast from rank 1 of 1 accepted")
	}
	if err := CheckSame(Local, "x", []byte{1}); err != nil {
		t.Fatal(err)
	}
}

func TestDetect(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	cases := []struct {
		name    string
		env     func(string) string
		by      string
		lib     string
		wantErr string
	}{
		{"alone", env(), "", "", ""},
		{"mpirun", env("OMPI_COMM_WORLD_SIZE", "2"), "Open MPI", "libmpi.so.40", ""},
		{"srun pmix", env("PMIX_RANK", "0", "SLURM_STEP_NUM_TASKS", "4"), "PMIx", "libmpi.so.40", ""},
		{"hydra", env("PMI_RANK", "1", "PMI_SIZE", "2"), "PMI", "libmpi.so.12", ""},
		{"override", env("PMI_RANK", "1", LibraryEnv, "/opt/mpi/lib/libmpi.so"), "PMI", "/opt/mpi/lib/libmpi.so", ""},
		{"srun without plugin", env("SLURM_STEP_NUM_TASKS", "4", "SLURM_PROCID", "2"), "", "", "--mpi=pmix"},
		{"srun one task", env("SLURM_STEP_NUM_TASKS", "1"), "", "", ""},
	}
	for _, tc := range cases {
		l, err := detect(tc.env)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !strings.HasPrefix(l.by, tc.by) || (tc.by == "") != (l.by == "") {
			t.Errorf("%s: launcher %q, want %q", tc.name, l.by, tc.by)
		}
		if tc.lib != "" && (len(l.libs) == 0 || l.libs[0] != tc.lib) {
			t.Errorf("%s: libraries %v, want %s first", tc.name, l.libs, tc.lib)
		}
	}
	// SLURM_LOCALID counts only for the srun step of this size.
	if r, ok := envLocalRank(env("SLURM_LOCALID", "3", "SLURM_STEP_NUM_TASKS", "8"), 8); !ok || r != 3 {
		t.Errorf("srun local rank %d %v, want 3", r, ok)
	}
	if _, ok := envLocalRank(env("SLURM_LOCALID", "0"), 8); ok {
		t.Error("SLURM_LOCALID of the batch step taken as the local rank under mpirun")
	}
	if r, ok := envLocalRank(env("OMPI_COMM_WORLD_LOCAL_RANK", "1", "LOCAL_RANK", "5"), 2); !ok || r != 1 {
		t.Errorf("mpirun local rank %d %v, want 1", r, ok)
	}
}
