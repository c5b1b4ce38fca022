package dist

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// Buckets started one after another (as a backward pass finishes layers)
// give the rank-order sum of the whole buffer on every rank.
func TestReducerBuckets(t *testing.T) {
	const n = 50000
	gen := func(g *rand.Rand) float32 { return float32(g.NormFloat64()) }
	inputs := [][]float32{rankData(0, n, gen), rankData(1, n, gen), rankData(2, n, gen)}
	want := leftFold(inputs)
	runGroup(t, 3, func(c Comm) {
		buf := append([]float32(nil), inputs[c.Rank()]...)
		r := NewReducer(c)
		defer r.Close()
		r.Computing(true)
		// Last layer first, in uneven buckets.
		for hi := n; hi > 0; {
			lo := max(hi-7919, 0)
			r.Start(buf[lo:hi])
			hi = lo
		}
		r.Computing(false)
		if err := r.Wait(); err != nil {
			t.Error(err)
			return
		}
		for i := range want {
			if math.Float32bits(buf[i]) != math.Float32bits(want[i]) {
				t.Errorf("rank %d: value %d = %v, want %v", c.Rank(), i, buf[i], want[i])
				return
			}
		}
		st := r.Stats(true)
		if st.Buckets != 7 || st.Bytes != n*4 || st.Overlapped > st.Busy {
			t.Errorf("rank %d: stats %+v", c.Rank(), st)
		}
	})
}

func TestOverlap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	cases := []struct {
		s, e, ws, we int
		open         bool
		want         int
	}{
		{10, 20, 0, 30, false, 10}, // inside
		{10, 20, 15, 30, false, 5}, // starts before the window
		{10, 20, 0, 12, false, 2},  // window ends first
		{10, 20, 25, 30, false, 0}, // after
		{10, 20, 0, 0, true, 10},   // window still open
	}
	for _, c := range cases {
		w := [2]time.Time{at(c.ws), at(c.we)}
		if c.open {
			w[1] = time.Time{}
		}
		if got := overlap(at(c.s), at(c.e), w); got != time.Duration(c.want)*time.Millisecond {
			t.Errorf("overlap(%d..%d, %d..%d open=%v) = %v, want %d ms", c.s, c.e, c.ws, c.we, c.open, got, c.want)
		}
	}
	if overlap(at(1), at(2), [2]time.Time{}) != 0 {
		t.Error("no window, yet overlap")
	}
}
