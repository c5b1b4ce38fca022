package rollout

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/model"
)

// Detokenizer turns completion ids into text; model/tokenizer provides one
// through a small adapter. It must be safe to call from one goroutine at a
// time.
type Detokenizer interface {
	Decode(ids []int32, skipSpecial bool) string
}

// FinishReason says why a completion ended.
type FinishReason string

// Finish reasons, named as in vLLM and OpenAI's API except for EOS, which
// they call "stop" too.
const (
	FinishEOS    FinishReason = "eos"    // an EOS or stop token id was sampled (and kept)
	FinishStop   FinishReason = "stop"   // a stop string appeared in the text
	FinishLength FinishReason = "length" // max_new_tokens, or the model's max positions
	FinishAbort  FinishReason = "abort"  // no abort marker by abort_horizon (DUET's abort)
)

// Prompt is one prompt to complete.
type Prompt struct {
	IDs []int32
	// Index names the prompt's random streams together with the seed:
	// give each prompt a stable number (its dataset index, say) and its
	// completions do not depend on what else is generated with it.
	Index uint64
	// Samples is the number of completions of this prompt; 0 means the
	// call's group size. Sample s of a prompt is the same whatever the
	// count.
	Samples int
}

// Prompts numbers the given prompts 0, 1, 2, ...
func Prompts(ids [][]int32) []Prompt {
	out := make([]Prompt, len(ids))
	for i, p := range ids {
		out[i] = Prompt{IDs: p, Index: uint64(i)}
	}
	return out
}

// Completion is one sampled continuation of a prompt.
type Completion struct {
	Prompt int // position in the prompts given to Generate
	Sample int // 0 .. the prompt's sample count - 1
	// IDs are the generated token ids, including the EOS or stop token
	// that ended the completion, and including every token of a matched
	// stop string (the Text is cut, the ids are not).
	IDs []int32
	// Text is the decoded completion without special tokens, cut before
	// (or, with include_stop_str, after) a matched stop string; empty
	// without a Detokenizer.
	Text string
	// Logprobs[t] is log softmax(logits · InvTemp)[IDs[t]] (see the
	// package documentation).
	Logprobs []float32
	Finish   FinishReason
	// Tree rollouts (tree_depths): Shared is the number of leading tokens
	// this completion shares with its siblings (its length at its last
	// branch point, or all of it when it ended before branching again and
	// its siblings are copies of it), and Branch names its sibling set:
	// the completions of a prompt with equal Branch forked from the same
	// partial completion. Both 0 without a tree.
	Shared, Branch int
	// Continued marks a completion that had no abort marker at
	// abort_horizon and was continued (with probability abort_keep_prob)
	// instead of aborted: its advantage is weighted 1/abort_keep_prob.
	Continued bool
}

// Stats describes one Generate call.
type Stats struct {
	Prompts, Completions int
	// PrefillTokens counts prompt tokens run through the model (each
	// distinct prompt once); GeneratedTokens counts sampled tokens.
	PrefillTokens, GeneratedTokens int
	// DecodeTokens counts tokens fed through Decode (one per running
	// completion per step); Steps counts Decode calls.
	DecodeTokens, Steps int
	// Wall time in prefill, in Decode, and in sampling and bookkeeping.
	PrefillTime, DecodeTime, SampleTime time.Duration
	// MaxRunning is the largest number of completions decoded together;
	// PeakBlocks the most cache blocks in use at once.
	MaxRunning, PeakBlocks int
	// Forks counts tree-rollout branch points; ForkDepths sums the number
	// of tokens shared at each (their mean is where trees branch).
	Forks, ForkDepths int
	// Aborted and Continued count the completions without an abort marker
	// at abort_horizon: aborted there, or continued.
	Aborted, Continued int
}

// Engine generates completions with one model and a preallocated KV cache.
// It is not safe for concurrent use.
type Engine struct {
	// Cfg may be changed between Generate calls, except KVCacheMB and
	// BlockSize, which are fixed when the cache is allocated.
	Cfg   Config
	m     *model.Model
	cache *model.KVCache
	ws    *model.Workspace
	detok Detokenizer

	samplers []*Sampler
	// logits and chunkLogits are the host buffers decoding writes into,
	// kept across steps and calls.
	logits, chunkLogits []float32
}

// New allocates the KV cache for cfg and returns an engine. detok may be
// nil when no text and no stop strings are needed.
func New(m *model.Model, cfg Config, detok Detokenizer) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cache, err := m.NewKVCache(int64(cfg.KVCacheMB)<<20, cfg.BlockSize)
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	e := &Engine{Cfg: cfg, m: m, cache: cache, ws: m.NewWorkspace(), detok: detok}
	for range max(1, runtime.GOMAXPROCS(0)) {
		e.samplers = append(e.samplers, &Sampler{})
	}
	return e, nil
}

// Close frees the engine's KV cache and activations; the engine must not
// be used afterwards.
func (e *Engine) Close() {
	e.cache.Close()
	e.ws.Free()
}

// Cache exposes the KV cache, for reports (Bytes, NumBlocks, BlockSize).
func (e *Engine) Cache() *model.KVCache { return e.cache }

// decodeChunked runs Decode on chunks of exactly InvariantRows sequences,
// filling the last chunk with forks of pad (released afterwards), and
// writes the logits of the real sequences into out.
func (e *Engine) decodeChunked(out []float32, seqs []*model.Seq, toks []int32, pad *model.Seq) error {
	V := e.m.Cfg.Vocab
	if cap(e.chunkLogits) < InvariantRows*V {
		e.chunkLogits = make([]float32, InvariantRows*V)
	}
	for lo := 0; lo < len(seqs); lo += InvariantRows {
		hi := min(lo+InvariantRows, len(seqs))
		cs := append(make([]*model.Seq, 0, InvariantRows), seqs[lo:hi]...)
		ct := append(make([]int32, 0, InvariantRows), toks[lo:hi]...)
		for len(cs) < InvariantRows {
			cs = append(cs, e.cache.Fork(pad))
			ct = append(ct, 0)
		}
		logits, err := e.m.DecodeTo(e.chunkLogits, e.cache, cs, ct)
		for _, s := range cs[hi-lo:] {
			e.cache.Release(s)
		}
		if err != nil {
			return err
		}
		copy(out[lo*V:hi*V], logits[:(hi-lo)*V])
	}
	return nil
}

// decodeUnpadded runs Decode on chunks of at most chunk sequences, for a
// backend whose results do not depend on the other rows up to that count.
func (e *Engine) decodeUnpadded(out []float32, seqs []*model.Seq, toks []int32, chunk int) error {
	V := e.m.Cfg.Vocab
	for lo := 0; lo < len(seqs); lo += chunk {
		hi := min(lo+chunk, len(seqs))
		if _, err := e.m.DecodeTo(out[lo*V:hi*V], e.cache, seqs[lo:hi], toks[lo:hi]); err != nil {
			return err
		}
	}
	return nil
}

// exactLogProbs returns, for a row-invariant model, the backend whose
// RowLogProb gives the log-prob a trainer's output layer computes for a
// row of logits (which it recomputes to the bit): recorded instead of the
// sampler's own, the two agree exactly. Otherwise nil.
func (e *Engine) exactLogProbs() kernels.RowInvariantForward {
	if !e.m.RowInvariant() {
		return nil
	}
	x, _ := e.m.Backend().(kernels.RowInvariantForward)
	return x
}

// sampleAll draws the next token of every running completion, in
// parallel; each row uses only its own logits and random stream.
func (e *Engine) sampleAll(active []*running, logits []float32, sp Sampling, seed uint64) {
	V := e.m.Cfg.Vocab
	exact := e.exactLogProbs()
	workers := min(len(e.samplers), len(active))
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := len(active)*w/workers, len(active)*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := e.samplers[w]
			for i := lo; i < hi; i++ {
				r := active[i]
				u := Uniform(seed, r.ps.p.Index, uint64(r.out.Sample), uint64(len(r.out.IDs)))
				r.tok, r.lp = s.Sample(logits[i*V:(i+1)*V], sp, u, r.seen)
				if exact != nil {
					r.lp = exact.RowLogProb(logits[i*V:(i+1)*V], r.tok, float32(sp.InvTemp()))
				}
			}
		}()
	}
	wg.Wait()
}

// promptBlocks is the number of blocks a prefilled prompt holds.
func (e *Engine) promptBlocks(P int) int { return (P + e.cache.BlockSize - 1) / e.cache.BlockSize }

// forkBlocks bounds the new blocks one completion of a P-token prompt takes
// over its life: it feeds at most limit-1 tokens back, and copies the
// prompt's shared partial last block before writing into it.
func (e *Engine) forkBlocks(P, limit int) int {
	bs := e.cache.BlockSize
	return (P+limit-1+bs-1)/bs - P/bs
}

// stopInTail reports whether a stop string occurs in the text of the last
// window ids, so that each step decodes a bounded tail instead of the
// whole completion.
func (e *Engine) stopInTail(ids []int32, stops []string, window int) bool {
	at, _ := firstStop(e.detok.Decode(ids[max(0, len(ids)-window):], true), stops)
	return at >= 0
}

// firstStop returns the byte offset of the earliest stop string in text and
// the string, or -1.
func firstStop(text string, stops []string) (int, string) {
	at, which := -1, ""
	for _, s := range stops {
		if i := strings.Index(text, s); i >= 0 && (at < 0 || i < at) {
			at, which = i, s
		}
	}
	return at, which
}
