package rollout

import "github.com/rltrain/rltrain/internal/rng"

// The sampler's randomness is counter based (internal/rng): a draw is a
// hash of its coordinates, the same on every backend.

// Uniform returns a float64 in [0, 1) with 53 random bits of the draw at
// (seed, prompt, sample, step).
func Uniform(seed, prompt, sample, step uint64) float64 {
	return rng.Uniform(seed, prompt, sample, step)
}
