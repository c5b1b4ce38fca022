// Package rng is the sampler's counter-based random stream: a draw is a
// hash of its coordinates (seed, prompt, sample, step), not the next state
// of a generator, so any draw can be computed on its own, in any order, on
// any device. rollout's CPU sampler and kernels/cuda's device sampler
// (sample.cu computes the same function) draw from it, so a completion's
// tokens do not depend on the backend.
package rng

// mix64 is the SplitMix64 finaliser (Stafford's variant 13), a bijection
// of uint64 with full avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// golden is 2^64/φ, SplitMix64's increment; adding a different multiple of
// it to each coordinate keeps draws such as (p, s) and (s, p) apart.
const (
	golden  uint64 = 0x9e3779b97f4a7c15
	golden2        = 0x3c6ef372fe94f82a // 2·golden mod 2^64
	golden3        = 0xdaa66d2c7ddf743f // 3·golden mod 2^64
	golden4        = 0x78dde6e5fd29f054 // 4·golden mod 2^64
)

// Draw returns the 64 random bits at (seed, prompt, sample, step): each
// coordinate is absorbed in turn through mix64.
func Draw(seed, prompt, sample, step uint64) uint64 {
	h := mix64(seed + golden)
	h = mix64(h ^ (prompt + golden2))
	h = mix64(h ^ (sample + golden3))
	return mix64(h ^ (step + golden4))
}

// Uniform returns a float64 in [0, 1) with 53 random bits from Draw.
func Uniform(seed, prompt, sample, step uint64) float64 {
	return float64(Draw(seed, prompt, sample, step)>>11) * 0x1p-53
}
