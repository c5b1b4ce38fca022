package rollout

import (
	"fmt"
	"math"
)

// Config holds the sampling and scheduling options of the `rollout`
// section of a run config. Start from DefaultConfig: decoding YAML into it
// overrides only the keys present.
type Config struct {
	// GroupSize is the number of completions per prompt (TRL's
	// num_generations). Default 8.
	GroupSize int `yaml:"group_size"`
	// MaxNewTokens bounds each completion's length. Default 256.
	MaxNewTokens int `yaml:"max_new_tokens"`
	// Temperature divides the logits before sampling; 0 means greedy
	// (argmax, lowest id on ties), as in vLLM. Default 1.
	Temperature float64 `yaml:"temperature"`
	// TopK keeps the k most likely tokens; 0 or -1 disables it. Default 0.
	TopK int `yaml:"top_k"`
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches top_p (nucleus sampling); 1 disables it. Default 1.
	TopP float64 `yaml:"top_p"`
	// MinP keeps tokens whose probability is at least min_p times the
	// most likely token's; 0 disables it. Default 0.
	MinP float64 `yaml:"min_p"`
	// RepetitionPenalty (CTRL/Hugging Face style) divides positive logits
	// and multiplies negative ones of every token already in the prompt
	// or the completion; 1 disables it. Default 1.
	RepetitionPenalty float64 `yaml:"repetition_penalty"`
	// Stop lists strings that end a completion when they appear in its
	// decoded text. Default none.
	Stop []string `yaml:"stop"`
	// IncludeStopStr keeps the matched stop string at the end of the text.
	// Default false.
	IncludeStopStr bool `yaml:"include_stop_str"`
	// StopTokenIDs are extra token ids that end a completion like EOS (the
	// model's own EOS ids always do). Default none.
	StopTokenIDs []int `yaml:"stop_token_ids"`
	// Seed selects the random streams. Default 0.
	Seed uint64 `yaml:"seed"`
	// KVCacheMB is the KV cache budget in MiB, preallocated. Default 256.
	KVCacheMB int `yaml:"kv_cache_mb"`
	// BlockSize is the number of positions per cache block. Default 16.
	BlockSize int `yaml:"block_size"`
	// MaxBatch bounds the number of completions decoded together.
	// Default 64.
	MaxBatch int `yaml:"max_batch"`
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
	// Default false.
	BatchInvariant bool `yaml:"batch_invariant"`
}

// InvariantRows is the chunk size of batch-invariant decoding.
const InvariantRows = 16

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		GroupSize:         8,
		MaxNewTokens:      256,
		Temperature:       1,
		TopP:              1,
		RepetitionPenalty: 1,
		KVCacheMB:         256,
		BlockSize:         16,
		MaxBatch:          64,
	}
}

// Validate reports the first invalid option, naming its YAML key.
func (c Config) Validate() error {
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case c.GroupSize < 1:
		return fmt.Errorf("rollout.group_size must be at least 1, got %d", c.GroupSize)
	case c.MaxNewTokens < 1:
		return fmt.Errorf("rollout.max_new_tokens must be at least 1, got %d", c.MaxNewTokens)
	case !finite(c.Temperature) || c.Temperature < 0:
		return fmt.Errorf("rollout.temperature must be ≥ 0 (0: greedy), got %g", c.Temperature)
	case c.TopK < -1:
		return fmt.Errorf("rollout.top_k must be ≥ 0 (0 or -1: off), got %d", c.TopK)
	case !finite(c.TopP) || c.TopP <= 0 || c.TopP > 1:
		return fmt.Errorf("rollout.top_p must be in (0, 1], got %g", c.TopP)
	case !finite(c.MinP) || c.MinP < 0 || c.MinP > 1:
		return fmt.Errorf("rollout.min_p must be in [0, 1], got %g", c.MinP)
	case !finite(c.RepetitionPenalty) || c.RepetitionPenalty <= 0:
		return fmt.Errorf("rollout.repetition_penalty must be positive (1: off), got %g", c.RepetitionPenalty)
	case c.KVCacheMB < 1:
		return fmt.Errorf("rollout.kv_cache_mb must be at least 1, got %d", c.KVCacheMB)
	case c.BlockSize < 1:
		return fmt.Errorf("rollout.block_size must be at least 1, got %d", c.BlockSize)
	case c.MaxBatch < 1:
		return fmt.Errorf("rollout.max_batch must be at least 1, got %d", c.MaxBatch)
	}
	for i, s := range c.Stop {
		if s == "" {
			return fmt.Errorf("rollout.stop[%d] is empty", i)
		}
	}
	for i, id := range c.StopTokenIDs {
		if id < 0 {
			return fmt.Errorf("rollout.stop_token_ids[%d] = %d is negative", i, id)
		}
	}
	return nil
}

// Sampling returns the per-token sampling parameters of c.
func (c Config) Sampling() Sampling {
	return Sampling{Temperature: c.Temperature, TopK: c.TopK, TopP: c.TopP, MinP: c.MinP, RepetitionPenalty: c.RepetitionPenalty}
}
