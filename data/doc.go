// Package data supplies the prompts an RL run trains on: JSONL prompt
// datasets, deterministic train/eval splits, a resumable seeded sampler, and
// built-in synthetic tasks (arithmetic, countdown) that are generated on the
// fly. A task's verifier (Task.Score, the eval accuracy) is the reward
// package's verifier for it (Task.Reward names it), so a run is evaluated by
// the function it is trained on.
//
// Everything random in this package is driven by SplitMix64 (see rng.go), an
// algorithm fixed here so that a seed names the same prompt sequence on every
// machine and every Go release; no global random state is used.
package data
