package rollout

import (
	"fmt"
	"math"

	"github.com/rltrain/rltrain/internal/option"
)

// Config is the sampling and scheduling part of the `rollout` section of a
// run config; each option is declared here once (see package
// internal/option for the tags). Start from DefaultConfig.
type Config struct {
	// BatchSize is the number of prompts of an RL step. Generate takes any
	// number; the engine uses it only for the default MaxBatch.
	BatchSize int `yaml:"batch_size" default:"8" doc:"Prompts per RL step."`
	GroupSize int `yaml:"group_size" default:"8" doc:"Completions sampled per prompt (TRL num_generations)."`
	// MaxNewTokens is also bounded by the model's positions.
	MaxNewTokens   int `yaml:"max_new_tokens" default:"256" doc:"Longest completion in tokens; longer ones are truncated."`
	Sampling       `yaml:",inline"`
	IncludeStopStr bool `yaml:"include_stop_str" default:"false" doc:"Keep a matched stop string at the end of the completion text."`
	KVCacheMB      int  `yaml:"kv_cache_mb" default:"256" resume:"harmless" doc:"KV cache budget in MiB, preallocated; when full, fewer completions are decoded at once."`
	BlockSize      int  `yaml:"block_size" default:"16" resume:"harmless" doc:"Positions per KV cache block (prompt blocks are shared by a group)."`
	MaxBatch       int  `yaml:"max_batch" default:"0" resume:"harmless" doc:"Most completions decoded together; 0 means batch_size x group_size (at least 64)."`
	// BatchInvariant decodes in fixed chunks of InvariantRows rows, padding
	// the last chunk with throw-away sequences, so that every decode GEMM
	// has the same shape whatever the number of running completions. BLAS
	// libraries pick kernels (and so float summation orders) by shape, so
	// without it a completion's logits can change in the last bits with
	// max_batch, the KV budget or the other prompts of the batch, and a
	// sampled token can then flip (rarely). With it, completions are
	// bit-identical across those. It costs the padding rows and smaller
	// GEMMs, except on a backend whose decoding steps are row-invariant
	// by construction (the CPU backend with AVX-512, up to 64 rows per
	// step), which decodes in chunks of that many rows without padding.
	BatchInvariant bool     `yaml:"batch_invariant" default:"false" doc:"Pad decode batches so completions do not depend on max_batch, the KV budget or threads (about a third slower)."`
	Stop           []string `yaml:"stop" doc:"Extra stop strings besides the end-of-sequence token."`
	// TreeDepths and TreeBranch make tree rollouts (generation.fork).
	TreeDepths []int `yaml:"tree_depths" doc:"Tree rollouts: completion lengths in tokens at which every running completion forks into tree_branch completions that share its tokens and KV cache blocks; empty samples every completion independently."`
	TreeBranch int   `yaml:"tree_branch" default:"2" doc:"Tree rollouts: completions one forks into at each of tree_depths; group_size must be a multiple of tree_branch^len(tree_depths)."`
	// TreeBranchAt entropy moves each branch point to the first uncertain
	// token of its window (generation.branchAtEntropy).
	TreeBranchAt   string  `yaml:"tree_branch_at" default:"depth" enum:"depth,entropy" doc:"Tree rollouts: depth forks at exactly tree_depths; entropy forks level l at the first token after tree_depths[l-1] whose sampling distribution has at least tree_entropy_threshold nats of entropy, at tree_depths[l] at the latest (samples on the host)."`
	TreeEntropyMin float64 `yaml:"tree_entropy_threshold" default:"1.0" doc:"Tree rollouts with tree_branch_at: entropy: the entropy in nats, of the temperature-scaled next-token distribution, at which a completion forks early."`
	// AbortHorizon, AbortMarkers and AbortKeepProb are DUET's marker-gated
	// abort (generation.abortAt).
	AbortHorizon  int      `yaml:"abort_horizon" default:"0" doc:"Marker-gated abort: a completion whose text holds none of abort_markers after this many tokens is aborted (left out of the update) with probability 1 - abort_keep_prob, or else continued with its advantage weighted 1/abort_keep_prob; 0 disables."`
	AbortMarkers  []string `yaml:"abort_markers" doc:"Marker-gated abort: texts that show a completion is reaching its answer (\\boxed{, ####, Answer:)."`
	AbortKeepProb float64  `yaml:"abort_keep_prob" default:"0.05" doc:"Marker-gated abort: the probability that a completion without a marker at abort_horizon is continued (and importance-weighted) instead of aborted."`

	// StopTokenIDs are extra token ids that end a completion like EOS (the
	// model's own EOS ids always do). Not a config option: the trainer
	// sets the tokenizer's.
	StopTokenIDs []int `yaml:"-"`
	// Seed selects the random streams (the trainer sets train.seed).
	Seed uint64 `yaml:"-"`
}

// InvariantRows is the chunk size of batch-invariant decoding.
const InvariantRows = 16

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config { return option.Defaults[Config]() }

// Validate reports every invalid option, naming its key.
func (c Config) Validate() error { return option.Validate("rollout", c) }

// Check implements option.Section.
func (c Config) Check(ck *option.Checker) {
	ck.AtLeast("batch_size", c.BatchSize, 1)
	ck.AtLeast("group_size", c.GroupSize, 1)
	ck.AtLeast("max_new_tokens", c.MaxNewTokens, 1)
	ck.NonNegative("temperature", c.Temperature)
	if !(c.TopP > 0 && c.TopP <= 1) {
		ck.Bad("top_p", "must be in (0, 1], got %v", c.TopP)
	}
	ck.AtLeast("top_k", c.TopK, -1)
	ck.Within("min_p", c.MinP, 0, 1, false)
	if !(c.RepetitionPenalty > 0) || math.IsInf(c.RepetitionPenalty, 0) {
		ck.Bad("repetition_penalty", "must be > 0 (1 disables it), got %g", c.RepetitionPenalty)
	}
	ck.AtLeast("kv_cache_mb", c.KVCacheMB, 1)
	ck.AtLeast("block_size", c.BlockSize, 1)
	ck.AtLeast("max_batch", c.MaxBatch, 0)
	for i, s := range c.Stop {
		if s == "" {
			ck.Bad(fmt.Sprintf("stop.%d", i), "empty stop string")
		}
	}
	if len(c.TreeDepths) > 0 {
		ck.AtLeast("tree_branch", c.TreeBranch, 2)
		for i, d := range c.TreeDepths {
			if d < 1 || (i > 0 && d <= c.TreeDepths[i-1]) || d >= c.MaxNewTokens {
				ck.Bad(fmt.Sprintf("tree_depths.%d", i), "depths must increase from 1 and stay below max_new_tokens (%d), got %v", c.MaxNewTokens, c.TreeDepths)
				break
			}
		}
		if !(c.TreeEntropyMin > 0) || math.IsInf(c.TreeEntropyMin, 0) {
			ck.Bad("tree_entropy_threshold", "must be a positive number of nats, got %g", c.TreeEntropyMin)
		}
		if c.TreeBranch >= 2 && c.GroupSize%c.TreeLeaves() != 0 {
			ck.Bad("group_size", "tree rollouts need a multiple of tree_branch^len(tree_depths) = %d, got %d", c.TreeLeaves(), c.GroupSize)
		}
	}
	if c.AbortHorizon != 0 {
		if c.AbortHorizon < 1 || c.AbortHorizon >= c.MaxNewTokens {
			ck.Bad("abort_horizon", "must be 0 (off) or from 1 to below max_new_tokens (%d), got %d", c.MaxNewTokens, c.AbortHorizon)
		}
		if len(c.AbortMarkers) == 0 {
			ck.Bad("abort_markers", "abort_horizon needs at least one marker")
		}
		for i, s := range c.AbortMarkers {
			if s == "" {
				ck.Bad(fmt.Sprintf("abort_markers.%d", i), "empty marker")
			}
		}
		if !(c.AbortKeepProb > 0 && c.AbortKeepProb <= 1) {
			ck.Bad("abort_keep_prob", "must be in (0, 1], got %g", c.AbortKeepProb)
		}
		if len(c.TreeDepths) > 0 {
			ck.Bad("abort_horizon", "marker-gated abort and tree rollouts (tree_depths) cannot be combined")
		}
	}
	for i, id := range c.StopTokenIDs {
		if id < 0 {
			ck.Bad(fmt.Sprintf("stop_token_ids.%d", i), "%d is negative", id)
		}
	}
}

// TreeLeaves is the number of completions one tree-rollout root grows
// into: tree_branch^len(tree_depths) (1 without a tree).
func (c Config) TreeLeaves() int {
	n := 1
	for range c.TreeDepths {
		n *= max(c.TreeBranch, 1)
	}
	return n
}

// BatchLimit is the most completions decoded together: MaxBatch, or when
// that is 0, batch_size x group_size but at least 64.
func (c Config) BatchLimit() int {
	if c.MaxBatch > 0 {
		return c.MaxBatch
	}
	return max(64, c.BatchSize*c.GroupSize)
}
