package rollout

import (
	"errors"
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
)

// Prompt is one prompt to complete.
type Prompt struct {
	IDs []int32
	// Index names the prompt's random streams together with the seed:
	// give each prompt a stable number (its dataset index, say) and its
	// completions do not depend on what else is generated with it.
	Index uint64
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
	Sample int // 0 .. group_size-1
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

// promptState tracks one prompt while its completions are admitted.
type promptState struct {
	pos      int
	p        Prompt
	limit    int        // max new tokens for this prompt
	base     *model.Seq // prefilled prompt, released once every sample forked it
	logits   []float32  // next-token logits after the prompt
	admitted int
}

// running is one completion being decoded.
type running struct {
	out     *Completion
	ps      *promptState
	seq     *model.Seq
	limit   int
	seen    []int32  // distinct ids of prompt and completion (repetition penalty)
	seenSet []uint64 // bitset over the vocabulary
	// result of the current step's sampling
	tok int32
	lp  float32
}

func (r *running) addSeen(id int32) {
	if r.seenSet == nil {
		return
	}
	w, b := id/64, uint64(1)<<(id%64)
	if r.seenSet[w]&b == 0 {
		r.seenSet[w] |= b
		r.seen = append(r.seen, id)
	}
}

// Options override the engine's Config for one Generate call (an
// evaluation samples with other settings than training, say).
type Options struct {
	// GroupSize is the number of completions per prompt; 0 uses
	// Cfg.GroupSize.
	GroupSize int
	// Sampling, when set, replaces the Config's sampling parameters.
	Sampling *Sampling
}

// Generate samples Cfg.GroupSize completions for every prompt and returns
// them ordered by prompt, then sample (completion i·G+s is sample s of
// prompt i).
func (e *Engine) Generate(prompts []Prompt) ([]Completion, Stats, error) {
	return e.GenerateWith(prompts, Options{})
}

// GenerateWith is Generate with per-call options.
func (e *Engine) GenerateWith(prompts []Prompt, o Options) (_ []Completion, _ Stats, err error) {
	cfg := e.Cfg
	if o.GroupSize != 0 {
		cfg.GroupSize = o.GroupSize
	}
	if o.Sampling != nil {
		cfg.Sampling = *o.Sampling
	}
	if err := cfg.Validate(); err != nil {
		return nil, Stats{}, err
	}
	if len(cfg.Stop) > 0 && e.detok == nil {
		return nil, Stats{}, errors.New("rollout: stop strings need a detokenizer")
	}
	mc := e.m.Cfg
	eos := make(map[int32]bool)
	for _, id := range mc.EOS {
		eos[int32(id)] = true
	}
	for _, id := range cfg.StopTokenIDs {
		eos[int32(id)] = true
	}
	G := cfg.GroupSize
	st := Stats{Prompts: len(prompts), Completions: len(prompts) * G}
	states := make([]*promptState, len(prompts))
	for i, p := range prompts {
		if len(p.IDs) == 0 {
			return nil, st, fmt.Errorf("rollout: prompt %d is empty", i)
		}
		for j, id := range p.IDs {
			if id < 0 || int(id) >= mc.Vocab {
				return nil, st, fmt.Errorf("rollout: prompt %d: token %d is %d, outside the vocabulary of %d", i, j, id, mc.Vocab)
			}
		}
		limit := cfg.MaxNewTokens
		// A config.json without max_position_embeddings round-trips as 1:
		// treat 0 and 1 as "no limit".
		if mc.MaxPositions > 1 {
			if len(p.IDs) >= mc.MaxPositions {
				return nil, st, fmt.Errorf("rollout: prompt %d has %d tokens; the model takes at most %d positions", i, len(p.IDs), mc.MaxPositions)
			}
			limit = min(limit, mc.MaxPositions-len(p.IDs))
		}
		states[i] = &promptState{pos: i, p: p, limit: limit}
		need := e.promptBlocks(len(p.IDs)) + e.forkBlocks(len(p.IDs), limit)
		if cfg.BatchInvariant {
			// the padding sequence and its forks, or a prefill companion
			need += max(InvariantRows, e.promptBlocks(InvariantRows))
		}
		if need > e.cache.NumBlocks {
			return nil, st, fmt.Errorf("rollout: prompt %d (%d tokens) with up to %d new tokens needs %d KV blocks of %d positions, the cache holds %d (%d MiB): raise rollout.kv_cache_mb",
				i, len(p.IDs), limit, need, e.cache.BlockSize, e.cache.NumBlocks, cfg.KVCacheMB)
		}
	}
	// Batch-invariant decoding pads chunks with forks of a one-token
	// sequence; each fork copies (or adds) one block while it lives.
	var padBase *model.Seq
	padBlocks := 0
	// A backend whose steps are row-invariant up to some row count (the
	// CPU backend with AVX-512) needs no padding: chunks of up to that
	// many rows are bit-identical already.
	chunk := 0
	if ri, ok := e.m.Backend().(kernels.InvariantRows); ok && cfg.BatchInvariant {
		chunk = ri.InvariantRows()
	}
	if cfg.BatchInvariant && chunk == 0 {
		padBlocks = InvariantRows - 1
		padBase = &model.Seq{}
		if _, err := e.m.Prefill(e.ws, e.cache, []*model.Seq{padBase}, [][]int32{{0}}); err != nil {
			return nil, st, fmt.Errorf("rollout: prefill padding sequence: %w", err)
		}
		defer e.cache.Release(padBase)
	}
	out := make([]Completion, len(prompts)*G)
	var active []*running
	next := 0 // index of the prompt whose samples are admitted next
	// On an error, give every block back so the engine stays usable.
	defer func() {
		if err == nil {
			return
		}
		for _, r := range active {
			e.cache.Release(r.seq)
		}
		for _, ps := range states {
			if ps.base != nil {
				e.cache.Release(ps.base)
			}
		}
	}()
	sp := cfg.Sampling
	maxBatch := cfg.BatchLimit()
	usePenalty := sp.RepetitionPenalty != 1

	// A stop string that the newest token completes lies within its last
	// len(stop) tokens when every token decodes to at least one byte; the
	// window adds slack for special tokens (no text) and for decoders that
	// treat the first token of a text specially.
	stopWindow := 16
	for _, s := range cfg.Stop {
		stopWindow = max(stopWindow, 2*len(s)+16)
	}
	// finish records a completion's end and frees its cache blocks.
	finish := func(r *running, why FinishReason) {
		c := r.out
		c.Finish = why
		if e.detok != nil && why != FinishStop {
			c.Text = e.detok.Decode(c.IDs, true)
		}
		e.cache.Release(r.seq)
	}
	// accept appends the sampled token of r and reports whether r ended.
	accept := func(r *running) bool {
		c := r.out
		c.IDs = append(c.IDs, r.tok)
		c.Logprobs = append(c.Logprobs, r.lp)
		st.GeneratedTokens++
		if eos[r.tok] {
			finish(r, FinishEOS)
			return true
		}
		if len(cfg.Stop) > 0 && e.stopInTail(c.IDs, cfg.Stop, stopWindow) {
			// The stop string is new (it was absent a token ago), but search
			// the whole text so the cut is at its first occurrence.
			text := e.detok.Decode(c.IDs, true)
			if at, s := firstStop(text, cfg.Stop); at >= 0 {
				if cfg.IncludeStopStr {
					at += len(s)
				}
				c.Text = text[:at]
				finish(r, FinishStop)
				return true
			}
		}
		if len(c.IDs) >= r.limit {
			finish(r, FinishLength)
			return true
		}
		if usePenalty {
			r.addSeen(r.tok)
		}
		return false
	}
	// reserved is the worst-case number of blocks the running completions
	// may still take.
	reserved := func() int {
		n := 0
		for _, r := range active {
			n += e.cache.BlocksNeeded(r.seq, r.limit-len(r.out.IDs))
		}
		return n
	}
	admit := func() error {
		for len(active) < maxBatch && next < len(states) {
			ps := states[next]
			P := len(ps.p.IDs)
			need := e.forkBlocks(P, ps.limit)
			if ps.base == nil {
				need += e.promptBlocks(P)
				if cfg.BatchInvariant && P < InvariantRows {
					need += e.promptBlocks(InvariantRows) // the companion prompt
				}
			}
			if e.cache.FreeBlocks()-reserved()-padBlocks < need {
				return nil
			}
			if ps.base == nil {
				t0 := time.Now()
				ps.base = &model.Seq{}
				seqs, ids := []*model.Seq{ps.base}, [][]int32{ps.p.IDs}
				if cfg.BatchInvariant && P < InvariantRows {
					// OpenBLAS results for very small row counts depend on
					// the thread count: a throw-away companion prompt makes
					// the prefill GEMMs at least 2·InvariantRows rows tall.
					seqs, ids = append(seqs, &model.Seq{}), append(ids, make([]int32, InvariantRows))
				}
				logits, err := e.m.Prefill(e.ws, e.cache, seqs, ids)
				for _, s := range seqs[1:] {
					e.cache.Release(s)
				}
				if err != nil {
					return fmt.Errorf("rollout: prefill prompt %d: %w", ps.pos, err)
				}
				ps.logits = logits[:mc.Vocab]
				st.PrefillTokens += P
				st.PrefillTime += time.Since(t0)
			}
			t0 := time.Now()
			s := ps.admitted
			r := &running{ps: ps, seq: e.cache.Fork(ps.base), limit: ps.limit, out: &out[ps.pos*G+s]}
			r.out.Prompt, r.out.Sample = ps.pos, s
			if usePenalty {
				r.seenSet = make([]uint64, (mc.Vocab+63)/64)
				for _, id := range ps.p.IDs {
					r.addSeen(id)
				}
			}
			u := Uniform(cfg.Seed, ps.p.Index, uint64(s), 0)
			r.tok, r.lp = e.samplers[0].Sample(ps.logits, sp, u, r.seen)
			ps.admitted++
			if ps.admitted == G {
				e.cache.Release(ps.base)
				ps.base, ps.logits = nil, nil
				next++
			}
			if !accept(r) {
				active = append(active, r)
			}
			st.PeakBlocks = max(st.PeakBlocks, e.cache.NumBlocks-e.cache.FreeBlocks())
			st.SampleTime += time.Since(t0)
		}
		return nil
	}

	for {
		if err := admit(); err != nil {
			return nil, st, err
		}
		if len(active) == 0 {
			if next < len(states) {
				// Cannot happen: every prompt was checked to fit an empty cache.
				return nil, st, fmt.Errorf("rollout: prompt %d does not fit the KV cache", next)
			}
			break
		}
		st.MaxRunning = max(st.MaxRunning, len(active))
		seqs := make([]*model.Seq, len(active))
		toks := make([]int32, len(active))
		for i, r := range active {
			seqs[i], toks[i] = r.seq, r.tok
		}
		t0 := time.Now()
		if need := len(active) * mc.Vocab; cap(e.logits) < need {
			e.logits = make([]float32, need)
		}
		logits := e.logits[:len(active)*mc.Vocab]
		switch {
		case padBase != nil:
			err = e.decodeChunked(logits, seqs, toks, padBase)
		case chunk > 0 && len(seqs) > chunk:
			err = e.decodeUnpadded(logits, seqs, toks, chunk)
		default:
			_, err = e.m.DecodeTo(logits, e.cache, seqs, toks)
		}
		if err != nil {
			return nil, st, fmt.Errorf("rollout: decode step %d: %w", st.Steps, err)
		}
		st.DecodeTime += time.Since(t0)
		st.Steps++
		st.DecodeTokens += len(active)
		st.PeakBlocks = max(st.PeakBlocks, e.cache.NumBlocks-e.cache.FreeBlocks())

		t0 = time.Now()
		e.sampleAll(active, logits, sp)
		kept := active[:0]
		for _, r := range active {
			if !accept(r) {
				kept = append(kept, r)
			}
		}
		clear(active[len(kept):])
		active = kept
		st.SampleTime += time.Since(t0)
	}
	return out, st, nil
}

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

// sampleAll draws the next token of every running completion, in
// parallel; each row uses only its own logits and random stream.
func (e *Engine) sampleAll(active []*running, logits []float32, sp Sampling) {
	V := e.m.Cfg.Vocab
	seed := e.Cfg.Seed
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
