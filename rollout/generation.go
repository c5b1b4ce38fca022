package rollout

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/model"
)

// Options override the engine's Config for one Generate call (an
// evaluation samples with other settings than training, say).
type Options struct {
	// GroupSize is the number of completions per prompt (unless a Prompt
	// sets its own); 0 uses Cfg.GroupSize.
	GroupSize int
	// Sampling, when set, replaces the Config's sampling parameters.
	Sampling *Sampling
	// Independent samples every completion on its own and to its end,
	// without the Config's tree rollouts or aborts (evaluation, say).
	Independent bool
}

// Generate samples Cfg.GroupSize completions for every prompt (or the
// prompt's own Samples) and returns them ordered by prompt, then sample
// (with G completions per prompt, completion i·G+s is sample s of prompt
// i).
func (e *Engine) Generate(prompts []Prompt) ([]Completion, Stats, error) {
	return e.GenerateWith(prompts, Options{})
}

// GenerateWith is Generate with per-call options.
//
// Completions are decoded together, continuous-batching style: a prompt is
// prefilled once, its completions fork its KV blocks, each decoding step
// runs every running completion, and finished ones make room for the next
// (admit, then decode and accept, until none is left).
func (e *Engine) GenerateWith(prompts []Prompt, o Options) ([]Completion, Stats, error) {
	g, err := e.newGeneration(prompts, o)
	if err != nil {
		return nil, g.st, err
	}
	// Give every block back, also after an error, so the engine stays
	// usable.
	defer g.release()
	if err := g.startPadding(); err != nil {
		return nil, g.st, err
	}
	for {
		if err := g.admit(); err != nil {
			return nil, g.st, err
		}
		if len(g.active) == 0 {
			if g.next < len(g.prompts) {
				// Cannot happen: every prompt was checked to fit an empty cache.
				return nil, g.st, fmt.Errorf("rollout: prompt %d does not fit the KV cache", g.next)
			}
			return g.out, g.st, nil
		}
		if err := g.step(); err != nil {
			return nil, g.st, err
		}
	}
}

// generation is one Generate call: the prompts, the completions being
// decoded and the decoding mode.
type generation struct {
	e       *Engine
	cfg     Config // the engine's, with the call's options applied
	sp      Sampling
	eos     map[int32]bool // token ids that end a completion
	penalty bool           // repetition penalty: track each completion's tokens
	// stopWindow is how many trailing ids are decoded to look for a stop
	// string (see accept).
	stopWindow int
	maxBatch   int

	prompts []*promptState
	out     []Completion // every prompt's completions, in order
	active  []*running   // completions being decoded
	next    int          // the prompt whose completions are admitted next
	st      Stats

	// Decoding mode. Batch-invariant decoding on a backend that is not
	// row-invariant pads every decoding step to chunks of InvariantRows
	// rows with forks of padBase, a one-token sequence; each fork takes a
	// block while it lives (padBlocks). A row-invariant backend (the CPU
	// backend with AVX-512) decodes in chunks of up to chunk rows instead,
	// bit-identical without padding.
	padBase   *model.Seq
	padBlocks int
	chunk     int
	// rows samples on the device, where the logits are (a GPU backend,
	// kernels.RowSampler): a step then downloads a token and a log-prob
	// per completion instead of its logits. Not with a repetition penalty
	// (each completion's seen tokens live on the host) or batch-invariant
	// padding; those steps sample on the host.
	rows kernels.RowSampler
	// forks are the completions tree rollouts forked during the current
	// step's accepts, to run from the next step on.
	forks []*running
	// entropyAt: tree rollouts fork at uncertain tokens (tree_branch_at:
	// entropy), decided on each step's logits before sampling.
	entropyAt bool
}

// promptState tracks one prompt while its completions are admitted.
type promptState struct {
	pos      int
	p        Prompt
	n        int        // completions to sample
	leaves   int        // completions per tree root (1 without a tree)
	first    int        // index of its first completion in out
	limit    int        // max new tokens for this prompt
	base     *model.Seq // prefilled prompt, released once every sample forked it
	logits   []float32  // next-token logits after the prompt
	admitted int
}

// running is one completion being decoded. With tree rollouts it stands
// for the samples [lo, hi) of its prompt, which share its tokens so far;
// out is sample lo's, and its random draws are sample lo's.
type running struct {
	out     *Completion
	ps      *promptState
	seq     *model.Seq
	limit   int
	lo, hi  int
	level   int      // tree_depths already passed
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

// newGeneration checks the options and every prompt (each must fit an
// empty cache with its longest completion) and sets up the call.
func (e *Engine) newGeneration(prompts []Prompt, o Options) (*generation, error) {
	g := &generation{e: e, cfg: e.Cfg, eos: map[int32]bool{}, stopWindow: 16}
	if o.GroupSize != 0 {
		g.cfg.GroupSize = o.GroupSize
	}
	if o.Sampling != nil {
		g.cfg.Sampling = *o.Sampling
	}
	if o.Independent {
		g.cfg.TreeDepths = nil
		g.cfg.AbortHorizon = 0
	}
	cfg := g.cfg
	if err := cfg.Validate(); err != nil {
		return g, err
	}
	if len(cfg.Stop) > 0 && e.detok == nil {
		return g, errors.New("rollout: stop strings need a detokenizer")
	}
	if cfg.AbortHorizon > 0 && e.detok == nil {
		return g, errors.New("rollout: abort markers need a detokenizer")
	}
	for _, id := range e.m.Cfg.EOS {
		g.eos[int32(id)] = true
	}
	for _, id := range cfg.StopTokenIDs {
		g.eos[int32(id)] = true
	}
	g.sp, g.penalty, g.maxBatch = cfg.Sampling, cfg.RepetitionPenalty != 1, cfg.BatchLimit()
	g.entropyAt = cfg.TreeBranchAt == "entropy" && len(cfg.TreeDepths) > 0
	if rs, ok := e.m.Backend().(kernels.RowSampler); ok && !g.penalty && !cfg.BatchInvariant && !g.entropyAt {
		g.rows = rs
	}
	// A stop string that the newest token completes lies within its last
	// len(stop) tokens when every token decodes to at least one byte; the
	// window adds slack for special tokens (no text) and for decoders that
	// treat the first token of a text specially.
	for _, s := range cfg.Stop {
		g.stopWindow = max(g.stopWindow, 2*len(s)+16)
	}
	g.st.Prompts = len(prompts)
	for i, p := range prompts {
		ps, err := g.checkPrompt(i, p)
		if err != nil {
			return g, err
		}
		ps.first = g.st.Completions
		g.st.Completions += ps.n
		g.prompts = append(g.prompts, ps)
	}
	g.out = make([]Completion, g.st.Completions)
	return g, nil
}

// checkPrompt validates one prompt and bounds its completions' length by
// max_new_tokens and the model's positions.
func (g *generation) checkPrompt(i int, p Prompt) (*promptState, error) {
	e, mc, cfg := g.e, g.e.m.Cfg, g.cfg
	if len(p.IDs) == 0 {
		return nil, fmt.Errorf("rollout: prompt %d is empty", i)
	}
	if p.Samples < 0 {
		return nil, fmt.Errorf("rollout: prompt %d asks for %d samples", i, p.Samples)
	}
	for j, id := range p.IDs {
		if id < 0 || int(id) >= mc.Vocab {
			return nil, fmt.Errorf("rollout: prompt %d: token %d is %d, outside the vocabulary of %d", i, j, id, mc.Vocab)
		}
	}
	ps := &promptState{pos: i, p: p, n: p.Samples, limit: cfg.MaxNewTokens, leaves: cfg.TreeLeaves()}
	if ps.n == 0 {
		ps.n = cfg.GroupSize
	}
	if ps.n%ps.leaves != 0 {
		return nil, fmt.Errorf("rollout: prompt %d asks for %d samples; tree rollouts need a multiple of %d", i, ps.n, ps.leaves)
	}
	// A config.json without max_position_embeddings round-trips as 1:
	// treat 0 and 1 as "no limit".
	if mc.MaxPositions > 1 {
		if len(p.IDs) >= mc.MaxPositions {
			return nil, fmt.Errorf("rollout: prompt %d has %d tokens; the model takes at most %d positions", i, len(p.IDs), mc.MaxPositions)
		}
		ps.limit = min(ps.limit, mc.MaxPositions-len(p.IDs))
	}
	need := e.promptBlocks(len(p.IDs)) + e.forkBlocks(len(p.IDs), ps.limit) + (ps.leaves-1)*(e.forkBlocks(len(p.IDs), ps.limit)+1)
	if cfg.BatchInvariant {
		// the padding sequence and its forks, or a prefill companion
		need += max(InvariantRows, e.promptBlocks(InvariantRows))
	}
	if need > e.cache.NumBlocks {
		return nil, fmt.Errorf("rollout: prompt %d (%d tokens) with up to %d new tokens needs %d KV blocks of %d positions, the cache holds %d (%d MiB): raise rollout.kv_cache_mb",
			i, len(p.IDs), ps.limit, need, e.cache.BlockSize, e.cache.NumBlocks, cfg.KVCacheMB)
	}
	return ps, nil
}

// startPadding chooses the decoding mode of batch-invariant decoding and
// prefills the padding sequence when it pads.
func (g *generation) startPadding() error {
	if !g.cfg.BatchInvariant {
		return nil
	}
	if ri, ok := g.e.m.Backend().(kernels.InvariantRows); ok {
		g.chunk = ri.InvariantRows()
	}
	if g.chunk > 0 {
		return nil
	}
	g.padBlocks = InvariantRows - 1
	g.padBase = &model.Seq{}
	if _, err := g.e.m.Prefill(g.e.ws, g.e.cache, []*model.Seq{g.padBase}, [][]int32{{0}}); err != nil {
		g.padBase = nil
		return fmt.Errorf("rollout: prefill padding sequence: %w", err)
	}
	return nil
}

// release gives back every cache block the call holds.
func (g *generation) release() {
	c := g.e.cache
	for _, r := range g.active {
		c.Release(r.seq)
	}
	g.active = nil
	for _, ps := range g.prompts {
		if ps.base != nil {
			c.Release(ps.base)
			ps.base = nil
		}
	}
	if g.padBase != nil {
		c.Release(g.padBase)
		g.padBase = nil
	}
}

// reserved is the worst-case number of blocks the running completions may
// still take.
func (g *generation) reserved() int {
	n := 0
	for _, r := range g.active {
		// Each sample a tree completion stands for may fork off it and
		// copy its shared partial last block.
		need := g.e.cache.BlocksNeeded(r.seq, r.limit-len(r.out.IDs))
		n += need + (r.hi-r.lo-1)*(need+1)
	}
	return n
}

// activeSamples counts the samples the running completions stand for.
func (g *generation) activeSamples() int {
	n := 0
	for _, r := range g.active {
		n += r.hi - r.lo
	}
	return n
}

// admit starts completions, prompt by prompt, while the batch has room
// and the cache can hold their longest possible continuation: it prefills
// a prompt on its first completion, forks it for each, and samples each
// one's first token from the prompt's logits.
func (g *generation) admit() error {
	e, cfg := g.e, g.cfg
	for g.activeSamples() < g.maxBatch && g.next < len(g.prompts) {
		ps := g.prompts[g.next]
		P := len(ps.p.IDs)
		need := e.forkBlocks(P, ps.limit) + (ps.leaves-1)*(e.forkBlocks(P, ps.limit)+1)
		if ps.base == nil {
			need += e.promptBlocks(P)
			if cfg.BatchInvariant && P < InvariantRows {
				need += e.promptBlocks(InvariantRows) // the companion prompt
			}
		}
		if e.cache.FreeBlocks()-g.reserved()-g.padBlocks < need {
			return nil
		}
		if ps.base == nil {
			if err := g.prefill(ps); err != nil {
				return err
			}
		}
		t0 := time.Now()
		s := ps.admitted * ps.leaves // a tree root stands for ps.leaves samples
		r := &running{ps: ps, seq: e.cache.Fork(ps.base), limit: ps.limit, out: &g.out[ps.first+s], lo: s, hi: s + ps.leaves}
		r.out.Prompt, r.out.Sample = ps.pos, s
		if g.penalty {
			r.seenSet = make([]uint64, (e.m.Cfg.Vocab+63)/64)
			for _, id := range ps.p.IDs {
				r.addSeen(id)
			}
		}
		u := Uniform(cfg.Seed, ps.p.Index, uint64(s), 0)
		r.tok, r.lp = e.samplers[0].Sample(ps.logits, g.sp, u, r.seen)
		if x := e.exactLogProbs(); x != nil {
			r.lp = x.RowLogProb(ps.logits, r.tok, float32(g.sp.InvTemp()))
		}
		ps.admitted++
		if ps.admitted*ps.leaves == ps.n {
			e.cache.Release(ps.base)
			ps.base, ps.logits = nil, nil
			g.next++
		}
		if !g.accept(r) {
			g.active = append(g.active, r)
		}
		g.active = append(g.active, g.forks...)
		g.forks = g.forks[:0]
		g.st.PeakBlocks = max(g.st.PeakBlocks, e.cache.NumBlocks-e.cache.FreeBlocks())
		g.st.SampleTime += time.Since(t0)
	}
	return nil
}

// prefill runs a prompt through the model once, keeping its KV blocks and
// next-token logits for its completions to fork.
func (g *generation) prefill(ps *promptState) error {
	e := g.e
	t0 := time.Now()
	P := len(ps.p.IDs)
	ps.base = &model.Seq{}
	seqs, ids := []*model.Seq{ps.base}, [][]int32{ps.p.IDs}
	if g.cfg.BatchInvariant && P < InvariantRows {
		// OpenBLAS results for very small row counts depend on the thread
		// count: a throw-away companion prompt makes the prefill GEMMs at
		// least 2·InvariantRows rows tall.
		seqs, ids = append(seqs, &model.Seq{}), append(ids, make([]int32, InvariantRows))
	}
	logits, err := e.m.Prefill(e.ws, e.cache, seqs, ids)
	for _, s := range seqs[1:] {
		e.cache.Release(s)
	}
	if err != nil {
		return fmt.Errorf("rollout: prefill prompt %d: %w", ps.pos, err)
	}
	ps.logits = logits[:e.m.Cfg.Vocab]
	g.st.PrefillTokens += P
	g.st.PrefillTime += time.Since(t0)
	return nil
}

// step decodes one token of every running completion, samples the next
// and accepts it.
func (g *generation) step() error {
	e := g.e
	V := e.m.Cfg.Vocab
	g.st.MaxRunning = max(g.st.MaxRunning, len(g.active))
	seqs := make([]*model.Seq, len(g.active))
	toks := make([]int32, len(g.active))
	for i, r := range g.active {
		seqs[i], toks[i] = r.seq, r.tok
	}
	t0 := time.Now()
	if need := len(g.active) * V; cap(e.logits) < need {
		e.logits = make([]float32, need)
	}
	logits := e.logits[:len(g.active)*V]
	if g.rows != nil {
		return g.deviceStep(seqs, toks, t0)
	}
	var err error
	switch {
	case g.padBase != nil:
		err = e.decodeChunked(logits, seqs, toks, g.padBase)
	case g.chunk > 0 && len(seqs) > g.chunk:
		err = e.decodeUnpadded(logits, seqs, toks, g.chunk)
	default:
		_, err = e.m.DecodeTo(logits, e.cache, seqs, toks)
	}
	if err != nil {
		return fmt.Errorf("rollout: decode step %d: %w", g.st.Steps, err)
	}
	g.st.DecodeTime += time.Since(t0)
	g.st.Steps++
	g.st.DecodeTokens += len(g.active)
	g.st.PeakBlocks = max(g.st.PeakBlocks, e.cache.NumBlocks-e.cache.FreeBlocks())

	t0 = time.Now()
	if g.entropyAt {
		logits = g.branchAtEntropy(logits)
	}
	e.sampleAll(g.active, logits, g.sp, g.cfg.Seed)
	kept := g.active[:0]
	for _, r := range g.active {
		if !g.accept(r) {
			kept = append(kept, r)
		}
	}
	clear(g.active[len(kept):])
	g.active = append(kept, g.forks...)
	g.forks = g.forks[:0]
	g.st.SampleTime += time.Since(t0)
	return nil
}

// deviceStep is step with the logits left on the device and sampled there:
// the same tokens as sampling on the host (the same filters and random
// stream; see kernels.RowSampler), with a token and a log-prob per
// completion downloaded instead of its [vocab] logits.
func (g *generation) deviceStep(seqs []*model.Seq, toks []int32, t0 time.Time) error {
	e := g.e
	logits, err := e.m.DecodeLogits(e.cache, seqs, toks)
	if err != nil {
		return fmt.Errorf("rollout: decode step %d: %w", g.st.Steps, err)
	}
	g.st.Steps++
	g.st.DecodeTokens += len(g.active)
	g.st.PeakBlocks = max(g.st.PeakBlocks, e.cache.NumBlocks-e.cache.FreeBlocks())
	t1 := time.Now()
	g.st.DecodeTime += t1.Sub(t0)
	draws := make([]kernels.Draw, len(g.active))
	for i, r := range g.active {
		draws[i] = kernels.Draw{Prompt: r.ps.p.Index, Sample: uint64(r.out.Sample), Step: uint64(len(r.out.IDs))}
	}
	next, lps := make([]int32, len(g.active)), make([]float32, len(g.active))
	sp := g.sp
	g.rows.SampleRows(next, lps, logits, e.m.Cfg.Vocab, kernels.SampleParams{Temperature: sp.Temperature, TopK: sp.TopK, TopP: sp.TopP, MinP: sp.MinP}, g.cfg.Seed, draws)
	kept := g.active[:0]
	for i, r := range g.active {
		r.tok, r.lp = next[i], lps[i]
		if !g.accept(r) {
			kept = append(kept, r)
		}
	}
	clear(g.active[len(kept):])
	g.active = append(kept, g.forks...)
	g.forks = g.forks[:0]
	g.st.SampleTime += time.Since(t1)
	return nil
}

// accept appends the sampled token of r and reports whether r ended: on an
// EOS or stop token, on a stop string in its text, or at its length limit.
func (g *generation) accept(r *running) bool {
	c, stops := r.out, g.cfg.Stop
	c.IDs = append(c.IDs, r.tok)
	c.Logprobs = append(c.Logprobs, r.lp)
	g.st.GeneratedTokens++
	if g.eos[r.tok] {
		g.finish(r, FinishEOS)
		return true
	}
	if len(stops) > 0 && g.e.stopInTail(c.IDs, stops, g.stopWindow) {
		// The stop string is new (it was absent a token ago), but search
		// the whole text so the cut is at its first occurrence.
		text := g.e.detok.Decode(c.IDs, true)
		if at, s := firstStop(text, stops); at >= 0 {
			if g.cfg.IncludeStopStr {
				at += len(s)
			}
			c.Text = text[:at]
			g.finish(r, FinishStop)
			return true
		}
	}
	if len(c.IDs) >= r.limit {
		g.finish(r, FinishLength)
		return true
	}
	if g.abortAt(r) {
		g.finish(r, FinishAbort)
		return true
	}
	if g.penalty {
		r.addSeen(r.tok)
	}
	if d := g.cfg.TreeDepths; !g.entropyAt && r.level < len(d) && len(c.IDs) == d[r.level] {
		g.fork(r)
	}
	return false
}

// fork splits a tree completion at a branch depth into tree_branch
// completions over equal parts of its samples: r keeps the first part and
// the others start as copies whose KV cache shares r's blocks (copy on
// write). All of them feed r's last token next, and from then on each
// draws from its own first sample's stream.
func (g *generation) fork(r *running) {
	b := g.cfg.TreeBranch
	size := (r.hi - r.lo) / b
	branch := r.lo
	r.out.Shared, r.out.Branch = len(r.out.IDs), branch
	r.level++
	g.st.Forks++
	g.st.ForkDepths += len(r.out.IDs)
	for j := 1; j < b; j++ {
		lo := r.lo + j*size
		c := &running{ps: r.ps, seq: g.e.cache.Fork(r.seq), limit: r.limit, lo: lo, hi: lo + size, level: r.level, tok: r.tok,
			out: &g.out[r.ps.first+lo]}
		*c.out = Completion{Prompt: r.out.Prompt, Sample: lo, IDs: append([]int32(nil), r.out.IDs...),
			Logprobs: append([]float32(nil), r.out.Logprobs...), Shared: len(r.out.IDs), Branch: branch}
		if r.seenSet != nil {
			c.seenSet, c.seen = append([]uint64(nil), r.seenSet...), append([]int32(nil), r.seen...)
		}
		g.forks = append(g.forks, c)
	}
	r.hi = r.lo + size
}

// branchAtEntropy forks the running completions whose next token is a
// branch point of tree_branch_at: entropy, before that token is sampled:
// level l's window is the tokens after tree_depths[l-1] (after the first
// token for l = 0) up to tree_depths[l], and a completion forks at the
// first of them whose temperature-scaled distribution has at least
// tree_entropy_threshold nats of entropy, or at tree_depths[l] when none
// had. The forks share the decoded KV and the logits row, so each samples
// its own token there from its own stream; it returns logits with their
// rows appended, in the order of g.active.
func (g *generation) branchAtEntropy(logits []float32) []float32 {
	V := g.e.m.Cfg.Vocab
	d, invT := g.cfg.TreeDepths, g.sp.InvTemp()
	n := len(g.active)
	for i := 0; i < n; i++ {
		r := g.active[i]
		if r.level >= len(d) {
			continue
		}
		at, from := len(r.out.IDs), 1 // the index of the token sampled next
		if r.level > 0 {
			from = d[r.level-1] + 1
		}
		if at < from || at > d[r.level] {
			continue
		}
		if at < d[r.level] && !(rowEntropy(logits[i*V:(i+1)*V], invT) >= g.cfg.TreeEntropyMin) {
			continue
		}
		g.fork(r)
		for _, c := range g.forks {
			g.active = append(g.active, c)
			logits = append(logits, logits[i*V:(i+1)*V]...)
		}
		g.forks = g.forks[:0]
	}
	if cap(logits) > cap(g.e.logits) {
		g.e.logits = logits[:0]
	}
	return logits
}

// rowEntropy is the entropy in nats of softmax(logits · invT), summed in
// float64.
func rowEntropy(logits []float32, invT float64) float64 {
	mx := float64(slices.Max(logits))
	var z, ws float64
	for _, v := range logits {
		s := (float64(v) - mx) * invT
		w := math.Exp(s)
		z += w
		ws += w * s
	}
	return math.Log(z) - ws/z
}

// abortSalt separates the abort decisions' random stream from the
// sampler's (the same coordinates, another seed).
const abortSalt = 0xa5a5_d0e7_0000_0001

// abortAt applies DUET's marker-gated abort to r once it has
// abort_horizon tokens: when its text holds none of abort_markers it is
// aborted, unless a uniform draw of its own (seed ^ abortSalt, prompt,
// sample, horizon) falls below abort_keep_prob, in which case it goes on
// to its end marked Continued.
func (g *generation) abortAt(r *running) bool {
	c, h := r.out, g.cfg.AbortHorizon
	if h == 0 || len(c.IDs) != h {
		return false
	}
	text := g.e.detok.Decode(c.IDs, true)
	for _, m := range g.cfg.AbortMarkers {
		if strings.Contains(text, m) {
			return false
		}
	}
	if Uniform(g.cfg.Seed^abortSalt, r.ps.p.Index, uint64(c.Sample), uint64(h)) < g.cfg.AbortKeepProb {
		c.Continued = true
		g.st.Continued++
		return false
	}
	g.st.Aborted++
	return true
}

// finish records a completion's end and frees its cache blocks.
func (g *generation) finish(r *running, why FinishReason) {
	c := r.out
	c.Finish = why
	if g.e.detok != nil && why != FinishStop {
		c.Text = g.e.detok.Decode(c.IDs, true)
	}
	g.e.cache.Release(r.seq)
	// A tree completion that ended before branching again stands for
	// samples that are copies of it, every token shared.
	if r.hi-r.lo > 1 {
		c.Shared, c.Branch = len(c.IDs), r.lo
	}
	for s := r.lo + 1; s < r.hi; s++ {
		cp := *c
		cp.Sample = s
		cp.IDs, cp.Logprobs = append([]int32(nil), c.IDs...), append([]float32(nil), c.Logprobs...)
		g.out[r.ps.first+s] = cp
	}
}
