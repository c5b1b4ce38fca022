package rollout

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rltrain/rltrain/model"
)

// BenchOptions describes one throughput measurement.
type BenchOptions struct {
	Prompts   int // distinct prompts
	Group     int // completions per prompt
	PromptLen int
	NewTokens int // every completion runs to this length (EOS is ignored)
	// Temperature 0 measures greedy decoding, like PyTorch's argmax loop.
	Temperature float64
	KVCacheMB   int
	// BatchInvariant turns on batch-invariant decoding (16-row chunks).
	BatchInvariant bool
	Repeats        int // the best of Repeats runs is kept (after one warm-up)
	Seed           uint64
}

// BenchResult is the outcome of Bench.
type BenchResult struct {
	Running        int     `json:"running"` // completions decoded together
	PrefillTokPerS float64 `json:"prefill_tok_per_s"`
	// DecodeTokPerS counts tokens fed through Decode per second of
	// everything but prefill (Decode, sampling, scheduling), like PyTorch's
	// timed greedy loop; ModelDecodeTokPerS only the time inside Decode.
	DecodeTokPerS      float64 `json:"decode_tok_per_s"`
	ModelDecodeTokPerS float64 `json:"model_decode_tok_per_s"`
	SampledTokPerS     float64 `json:"sampled_tok_per_s"`  // generated tokens per second of the whole Generate call
	SampleShare        float64 `json:"sample_share"`       // share of Generate time outside prefill and Decode
	WallS              float64 `json:"wall_s"`             // one Generate call
	PeakKVBytes        int64   `json:"peak_kv_bytes"`      // cache blocks in use at the peak
	KVBytesPerToken    int     `json:"kv_bytes_per_token"` // 2 · layers · kv_heads · head_dim · 4
	KVBudgetBytes      int64   `json:"kv_budget_bytes"`
}

// Bench generates o.Prompts × o.Group completions of random prompts and
// reports throughput. The model's EOS ids are ignored so that every
// completion has o.NewTokens tokens.
func Bench(m *model.Model, o BenchOptions) (BenchResult, error) {
	cfg := DefaultConfig()
	cfg.GroupSize, cfg.MaxNewTokens, cfg.Temperature, cfg.Seed = o.Group, o.NewTokens, o.Temperature, o.Seed
	cfg.MaxBatch = max(o.Prompts*o.Group, 1)
	cfg.BatchInvariant = o.BatchInvariant
	if o.KVCacheMB > 0 {
		cfg.KVCacheMB = o.KVCacheMB
	}
	saved := m.Cfg.EOS
	m.Cfg.EOS = nil
	defer func() { m.Cfg.EOS = saved }()
	e, err := New(m, cfg, nil)
	if err != nil {
		return BenchResult{}, err
	}
	r := rand.New(rand.NewPCG(o.Seed, 1))
	prompts := make([]Prompt, o.Prompts)
	for i := range prompts {
		ids := make([]int32, o.PromptLen)
		for j := range ids {
			ids[j] = int32(r.IntN(m.Cfg.Vocab))
		}
		prompts[i] = Prompt{IDs: ids, Index: uint64(i)}
	}
	var best BenchResult
	for rep := range max(o.Repeats, 1) + 1 {
		t0 := time.Now()
		comps, st, err := e.Generate(prompts)
		if err != nil {
			return BenchResult{}, err
		}
		wall := time.Since(t0)
		for _, c := range comps {
			if len(c.IDs) != o.NewTokens {
				return BenchResult{}, fmt.Errorf("bench: a completion has %d tokens, want %d", len(c.IDs), o.NewTokens)
			}
		}
		res := BenchResult{
			Running:            st.MaxRunning,
			PrefillTokPerS:     float64(st.PrefillTokens) / st.PrefillTime.Seconds(),
			DecodeTokPerS:      float64(st.DecodeTokens) / (wall - st.PrefillTime).Seconds(),
			ModelDecodeTokPerS: float64(st.DecodeTokens) / st.DecodeTime.Seconds(),
			SampledTokPerS:     float64(st.GeneratedTokens) / wall.Seconds(),
			SampleShare:        1 - (st.PrefillTime+st.DecodeTime).Seconds()/wall.Seconds(),
			WallS:              wall.Seconds(),
			PeakKVBytes:        int64(st.PeakBlocks) * int64(e.cache.BlockSize) * int64(m.Cfg.KVBytesPerToken()),
			KVBytesPerToken:    m.Cfg.KVBytesPerToken(),
			KVBudgetBytes:      e.cache.Bytes(),
		}
		if rep > 0 && (best.WallS == 0 || res.WallS < best.WallS) {
			best = res
		}
	}
	return best, nil
}
