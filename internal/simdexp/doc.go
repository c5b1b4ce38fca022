// Package simdexp is the 16-lane float32 exponential shared by the CPU
// kernels (kernels/cpu) and the sampler (rollout). It exists only in
// builds with GOEXPERIMENT=simd on amd64; callers keep a scalar path for
// other builds and machines without AVX-512.
package simdexp
