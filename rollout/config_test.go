package rollout

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/internal/option"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidateNamesKey(t *testing.T) {
	cases := []struct {
		key string
		mut func(*Config)
	}{
		{"group_size", func(c *Config) { c.GroupSize = 0 }},
		{"max_new_tokens", func(c *Config) { c.MaxNewTokens = 0 }},
		{"temperature", func(c *Config) { c.Temperature = -0.5 }},
		{"top_k", func(c *Config) { c.TopK = -2 }},
		{"top_p", func(c *Config) { c.TopP = 0 }},
		{"top_p", func(c *Config) { c.TopP = 1.5 }},
		{"min_p", func(c *Config) { c.MinP = -0.1 }},
		{"repetition_penalty", func(c *Config) { c.RepetitionPenalty = 0 }},
		{"kv_cache_mb", func(c *Config) { c.KVCacheMB = 0 }},
		{"block_size", func(c *Config) { c.BlockSize = 0 }},
		{"max_batch", func(c *Config) { c.MaxBatch = -1 }},
		{"stop.1", func(c *Config) { c.Stop = []string{"x", ""} }},
		{"stop_token_ids.0", func(c *Config) { c.StopTokenIDs = []int{-3} }},
		{"tree_branch_at", func(c *Config) { c.TreeDepths, c.TreeBranchAt = []int{2}, "entropie" }},
		{"tree_entropy_threshold", func(c *Config) { c.TreeDepths, c.TreeEntropyMin = []int{2}, 0 }},
		{"abort_horizon", func(c *Config) { c.AbortHorizon, c.AbortMarkers = c.MaxNewTokens, []string{"x"} }},
		{"abort_horizon", func(c *Config) { c.AbortHorizon, c.AbortMarkers, c.TreeDepths = 2, []string{"x"}, []int{1} }},
		{"abort_markers", func(c *Config) { c.AbortHorizon = 2 }},
		{"abort_markers.1", func(c *Config) { c.AbortHorizon, c.AbortMarkers = 2, []string{"x", ""} }},
		{"abort_keep_prob", func(c *Config) { c.AbortHorizon, c.AbortMarkers, c.AbortKeepProb = 2, []string{"x"}, 0 }},
		{"abort_keep_prob", func(c *Config) { c.AbortHorizon, c.AbortMarkers, c.AbortKeepProb = 2, []string{"x"}, 1.5 }},
		{"tree_entropy_threshold", func(c *Config) { c.TreeDepths, c.TreeEntropyMin = []int{2}, math.Inf(1) }},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.mut(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "rollout."+tc.key) {
			t.Errorf("%s: got error %v, want one naming rollout.%s", tc.key, err, tc.key)
		}
	}
}

// TestConfigYAMLKeys pins the YAML key of every option, since run configs
// and --set overrides name them; StopTokenIDs and Seed are set by the
// trainer, not by a config.
func TestConfigYAMLKeys(t *testing.T) {
	want := []string{"batch_size", "group_size", "max_new_tokens", "temperature", "top_p", "top_k", "min_p",
		"repetition_penalty", "include_stop_str", "kv_cache_mb", "block_size", "max_batch", "batch_invariant", "stop",
		"tree_depths", "tree_branch", "tree_branch_at", "tree_entropy_threshold", "abort_horizon", "abort_markers", "abort_keep_prob"}
	var got []string
	for _, f := range option.Fields(reflect.TypeOf(Config{})) {
		got = append(got, f.Key)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	if !(Config{Sampling: Sampling{Temperature: 0}}).Sampling.Greedy() {
		t.Fatal("temperature 0 must mean greedy")
	}
}
