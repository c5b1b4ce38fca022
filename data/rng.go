package data

import "math/bits"

// rng is SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom
// number generators", OOPSLA 2014): the state advances by the golden-ratio
// increment and each output is the state passed through a fixed 64-bit mixer.
// It is small, fast, passes BigCrush, and — the point here — its output for a
// seed is defined by this file alone, so datasets, splits and shuffles are
// reproducible forever.
type rng struct{ state uint64 }

const golden = 0x9e3779b97f4a7c15

// mix64 is SplitMix64's output function (a variant of MurmurHash3's fmix64).
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func newRNG(seed uint64) *rng { return &rng{state: seed} }

// Uint64 returns the next 64 random bits.
func (r *rng) Uint64() uint64 {
	r.state += golden
	return mix64(r.state)
}

// Intn returns a uniform integer in [0, n) using Lemire's multiply-and-reject
// method, which has no modulo bias. n must be positive.
func (r *rng) Intn(n int) int {
	if n <= 0 {
		panic("data: Intn with non-positive bound") // programming error, not user input
	}
	bound := uint64(n)
	hi, lo := bits.Mul64(r.Uint64(), bound)
	if lo < bound {
		threshold := -bound % bound
		for lo < threshold {
			hi, lo = bits.Mul64(r.Uint64(), bound)
		}
	}
	return int(hi)
}

// IntRange returns a uniform integer in [lo, hi].
func (r *rng) IntRange(lo, hi int) int { return lo + r.Intn(hi-lo+1) }

// Perm returns a uniformly random permutation of [0, n) (Fisher–Yates).
func (r *rng) Perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := r.Intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// deriveSeed hashes a list of integers (a user seed, a purpose tag, an epoch
// or an example index) into one well-mixed seed, so that independent streams
// never share state: stream (seed, tag, i) is unrelated to (seed, tag, i+1)
// or to (seed, other tag, i).
func deriveSeed(parts ...uint64) uint64 {
	h := uint64(0x243f6a8885a308d3) // digits of pi: any fixed odd constant works
	for _, p := range parts {
		h = mix64(h ^ mix64(p+golden))
		h += golden
	}
	return mix64(h)
}

// Purpose tags for deriveSeed; changing a value changes every derived stream.
const (
	tagEpochPerm uint64 = 1 + iota
	tagSplit
	tagTaskTrain
	tagTaskEval
)
