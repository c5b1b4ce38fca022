package model

import (
	"fmt"
	"sync"

	"github.com/rltrain/rltrain/kernels"
)

// decodeBufs are the activations of one decoding step for up to cap rows.
type decodeBufs struct {
	cap                               int
	x, ln, rstd, qkv, pre, qr, kr     kernels.Buf
	attn, mid, gu, act, cos, sin, out kernels.Buf
	logits                            kernels.Buf
	xa                                kernels.Buf // x·Aᵀ of an adapter's group
	xaCap                             int
}

func (c *KVCache) decodeBufs(n int) *decodeBufs { return c.partBufs(0, n) }

// partBufs returns the activations of row worker p for up to n rows (a
// step that is not split uses worker 0's).
func (c *KVCache) partBufs(p, n int) *decodeBufs {
	for len(c.dec) <= p {
		c.dec = append(c.dec, nil)
	}
	if d := c.dec[p]; d == nil || d.cap < n {
		if d != nil {
			// Forgotten before it is freed: if the new buffers cannot be
			// allocated (out of device memory), Close must not free these
			// a second time.
			c.dec[p] = nil
			d.free(c.m.be)
		}
		c.dec[p] = c.newDecodeBufs(n)
	}
	return c.dec[p]
}

func (d *decodeBufs) free(be kernels.Backend) {
	for _, b := range []kernels.Buf{d.x, d.ln, d.rstd, d.qkv, d.pre, d.qr, d.kr, d.attn, d.mid, d.gu, d.act, d.cos, d.sin, d.out, d.logits} {
		be.Free(b)
	}
	if d.xa != nil {
		be.Free(d.xa)
	}
}

func (c *KVCache) newDecodeBufs(n int) *decodeBufs {
	be, cfg := c.m.be, c.m.Cfg
	D, C, A, F := cfg.Hidden, cfg.qkvWidth(), cfg.Heads*cfg.HeadDim, cfg.FFN
	d := &decodeBufs{cap: n}
	d.x, d.ln, d.rstd, d.qkv = be.Alloc(n*D), be.Alloc(n*D), be.Alloc(n), be.Alloc(n*C)
	d.pre, d.qr, d.kr = be.Alloc(n*C), be.Alloc(n*cfg.Heads), be.Alloc(n*cfg.KVHeads)
	d.attn, d.mid, d.gu, d.act = be.Alloc(n*A), be.Alloc(n*D), be.Alloc(n*2*F), be.Alloc(n*F)
	d.cos, d.sin, d.out = be.Alloc(n*cfg.HeadDim/2), be.Alloc(n*cfg.HeadDim/2), be.Alloc(n*D)
	d.logits = be.Alloc(n * cfg.Vocab)
	return d
}

// Prefill runs the prompts through the model, stores their keys and values
// in the cache under the given fresh sequences (Len 0), and returns the
// next-token logits after each prompt as a host [len(prompts) × vocab]
// slice. ws holds the prompt activations afterwards.
func (m *Model) Prefill(ws *Workspace, c *KVCache, seqs []*Seq, prompts [][]int32) ([]float32, error) {
	if len(seqs) != len(prompts) || len(seqs) == 0 {
		return nil, fmt.Errorf("prefill: %d sequences for %d prompts", len(seqs), len(prompts))
	}
	T := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("prefill: prompt %d is empty", i)
		}
		if seqs[i].Len != 0 {
			return nil, fmt.Errorf("prefill: sequence %d already holds %d positions", i, seqs[i].Len)
		}
		T = max(T, len(p))
	}
	need := 0
	for _, p := range prompts {
		need += (len(p) + c.BlockSize - 1) / c.BlockSize
	}
	if need > len(c.free) {
		return nil, ErrCacheFull
	}
	if _, err := m.Forward(ws, PadBatch(prompts, T)); err != nil {
		return nil, err
	}
	be, cfg := m.be, m.Cfg
	C, width, hd := cfg.qkvWidth(), cfg.KVHeads*cfg.HeadDim, cfg.HeadDim
	d := c.decodeBufs(len(prompts))
	for i, p := range prompts {
		slots, err := c.reserve(seqs[i], len(p))
		if err != nil {
			return nil, err
		}
		seqs[i].Len += len(p)
		for l := range c.k {
			rows := be.View(ws.layers[l].qkv, i*T*C, len(p)*C)
			be.CacheWrite(c.k[l], width, rows, C, cfg.Heads*hd, slots)
			be.CacheWrite(c.v[l], width, rows, C, (cfg.Heads+cfg.KVHeads)*hd, slots)
		}
		last := (i*T + len(p) - 1) * cfg.Hidden
		be.Copy(be.View(d.out, i*cfg.Hidden, cfg.Hidden), be.View(ws.final, last, cfg.Hidden))
	}
	n := len(prompts)
	out := make([]float32, n*m.Cfg.Vocab)
	m.be.Download(out, m.headLogits(d, n))
	return out, nil
}

// headLogits computes the logits of the first n rows of d.out into
// d.logits and returns them.
func (m *Model) headLogits(d *decodeBufs, n int) kernels.Buf {
	be, cfg := m.be, m.Cfg
	logits := be.View(d.logits, 0, n*cfg.Vocab)
	be.Gemm(false, true, n, cfg.Vocab, cfg.Hidden, 1, d.out, cfg.Hidden, m.LMHead(), cfg.Hidden, 0, logits, cfg.Vocab)
	return logits
}

// Decode appends one token to each sequence, attending to everything the
// cache holds for it, and returns the next-token logits as a new host
// [len(seqs) × vocab] slice. On ErrCacheFull no sequence is changed.
func (m *Model) Decode(c *KVCache, seqs []*Seq, tokens []int32) ([]float32, error) {
	return m.DecodeTo(nil, c, seqs, tokens)
}

// DecodeTo is Decode writing the logits into dst (at least len(seqs) ×
// vocab floats), or into a new slice when dst is nil. A sampling loop
// passes the same buffer every step instead of allocating (and, for a
// 32000-word vocabulary and 64 sequences, clearing) 8 MB per token.
func (m *Model) DecodeTo(dst []float32, c *KVCache, seqs []*Seq, tokens []int32) ([]float32, error) {
	n := len(seqs)
	if dst != nil && len(dst) < n*m.Cfg.Vocab {
		return nil, fmt.Errorf("decode: a logits buffer of %d floats for %d sequences of %d", len(dst), n, m.Cfg.Vocab)
	}
	st, err := m.decodeStart(c, seqs, tokens)
	if err != nil {
		return nil, err
	}

	// The rows of a step are independent: on a backend that offers row
	// workers, each runs the whole step for its share of the sequences
	// on one thread, with no hand-off between operations (at 64 rows a
	// step has about 60 of them; most are too small to split well). On a
	// backend whose steps are row-invariant up to InvariantRows rows the
	// logits are the same bits as one batch's.
	var workers []kernels.Backend
	rw, ok := m.be.(kernels.RowWorkers)
	if ok && n >= 2*minRowsPerWorker && 4*m.lay.size <= rowWorkersMaxWeightBytes {
		workers = rw.RowWorkers()
		workers = workers[:min(len(workers), n/minRowsPerWorker)]
	}
	V := m.Cfg.Vocab
	if dst == nil {
		dst = make([]float32, n*V)
	}
	if len(workers) < 2 {
		m.be.Download(dst[:n*V], m.decodeRows(c.decodeBufs(n), c, st))
		return dst[:n*V], nil
	}
	half := m.Cfg.HeadDim / 2
	var wg sync.WaitGroup
	for p, be := range workers {
		lo, hi := n*p/len(workers), n*(p+1)/len(workers)
		d := c.partBufs(p, hi-lo)
		wg.Add(1)
		go func() {
			defer wg.Done()
			mv := *m
			mv.be = be
			be.Download(dst[lo*V:hi*V], mv.decodeRows(d, c, st.rows(lo, hi, half)))
		}()
	}
	wg.Wait()
	return dst[:n*V], nil
}

// DecodeLogits is Decode leaving the logits on the backend: the returned
// [len(seqs) × vocab] buffer holds them until the cache's next decoding
// step. A backend that samples where the logits lie (kernels.RowSampler, a
// GPU) then transfers a token per row instead of the whole rows.
func (m *Model) DecodeLogits(c *KVCache, seqs []*Seq, tokens []int32) (kernels.Buf, error) {
	st, err := m.decodeStart(c, seqs, tokens)
	if err != nil {
		return nil, err
	}
	return m.decodeRows(c.decodeBufs(len(seqs)), c, st), nil
}

// decodeStart checks a decoding step, reserves each sequence's new cache
// slot and computes the step's host-side tables. On ErrCacheFull no
// sequence is changed.
func (m *Model) decodeStart(c *KVCache, seqs []*Seq, tokens []int32) (decodeStep, error) {
	n := len(seqs)
	if n == 0 || len(tokens) != n {
		return decodeStep{}, fmt.Errorf("decode: %d tokens for %d sequences", len(tokens), n)
	}
	need := 0
	for i, s := range seqs {
		if s.Len == 0 {
			return decodeStep{}, fmt.Errorf("decode: sequence %d has no prefix; prefill it first", i)
		}
		if int(tokens[i]) < 0 || int(tokens[i]) >= m.Cfg.Vocab {
			return decodeStep{}, fmt.Errorf("decode: token %d is outside the vocabulary of %d", tokens[i], m.Cfg.Vocab)
		}
		need += c.BlocksNeeded(s, 1)
	}
	if need > len(c.free) {
		return decodeStep{}, ErrCacheFull
	}
	cfg := m.Cfg
	slots := make([]int32, n)
	positions := make([]int32, n)
	lens := make([]int, n)
	for i, s := range seqs {
		sl, err := c.reserve(s, 1)
		if err != nil {
			return decodeStep{}, err // cannot happen: capacity was checked above
		}
		slots[i], positions[i] = sl[0], int32(s.Len)
		s.Len++
		lens[i] = s.Len
	}
	all := make([][]int32, n)
	for i, s := range seqs {
		all[i] = c.slotsOf(s)
	}
	half := cfg.HeadDim / 2
	cos, sin := make([]float32, n*half), make([]float32, n*half)
	m.rope.fill(cos, sin, positions)
	return decodeStep{tokens: tokens, slots: slots, lens: lens, all: all, cos: cos, sin: sin}, nil
}

// rowWorkersMaxWeightBytes bounds the models DecodeTo splits by rows: each
// row worker reads every weight in a step, which costs nothing while the
// weights stay in the shared cache and doubles the memory traffic once they
// do not (measured on 2 cores: 30–50% faster at 21 MB of weights, 20%
// slower at 232 MB).
const rowWorkersMaxWeightBytes = 32 << 20

// minRowsPerWorker is the fewest rows DecodeTo gives a row worker: below
// it the product of a layer reads its weights once per worker for too few
// rows, and splitting the products' columns instead does better.
const minRowsPerWorker = 16

// decodeStep is the host-side part of a decoding step: every row's input
// token, cache slot of the new position, length, slot table and rotary
// factors.
type decodeStep struct {
	tokens   []int32
	slots    []int32
	lens     []int
	all      [][]int32
	cos, sin []float32
}

// rows is the step restricted to rows [lo, hi).
func (st decodeStep) rows(lo, hi, half int) decodeStep {
	return decodeStep{tokens: st.tokens[lo:hi], slots: st.slots[lo:hi], lens: st.lens[lo:hi], all: st.all[lo:hi],
		cos: st.cos[lo*half : hi*half], sin: st.sin[lo*half : hi*half]}
}

// decodeRows runs one decoding step for the rows of st on m's backend,
// with activations in d, and returns the logits (a view of d.logits).
func (m *Model) decodeRows(d *decodeBufs, c *KVCache, st decodeStep) kernels.Buf {
	be, cfg := m.be, m.Cfg
	n := len(st.tokens)
	D, C, A, F, hd := cfg.Hidden, cfg.qkvWidth(), cfg.Heads*cfg.HeadDim, cfg.FFN, cfg.HeadDim
	width := cfg.KVHeads * hd
	eps := float32(cfg.RMSEps)
	v := func(b kernels.Buf, w int) kernels.Buf { return be.View(b, 0, n*w) }
	x, ln, qkv, attn, mid, gu, act := v(d.x, D), v(d.ln, D), v(d.qkv, C), v(d.attn, A), v(d.mid, D), v(d.gu, 2*F), v(d.act, F)
	half := hd / 2
	be.Upload(v(d.cos, half), st.cos)
	be.Upload(v(d.sin, half), st.sin)

	be.Embed(x, m.w.embed, st.tokens, D)
	scale := float32(1 / sqrt(float64(hd)))
	if m.lora != nil && d.xaCap < d.cap*maxLoRAParts*m.lora.lay.r {
		// Every group's x·Aᵀ goes through one scratch buffer: nothing
		// keeps it for a backward pass.
		if d.xa != nil {
			be.Free(d.xa)
		}
		d.xaCap = d.cap * maxLoRAParts * m.lora.lay.r
		d.xa = be.Alloc(d.xaCap)
	}
	for l, w := range m.w.layers {
		b := blockBufs{in: x, out: x, ln1: ln, rstd1: d.rstd, pre: v(d.pre, C), qkv: qkv, qRstd: d.qr, kRstd: d.kr,
			attn: attn, mid: mid, ln2: ln, rstd2: d.rstd, gateUp: gu, act: act, cos: d.cos, sin: d.sin}
		var ad *loraBlock
		if m.lora != nil {
			ad = &m.lora.w[l]
			b.xa = [numGroups]kernels.Buf{d.xa, d.xa, d.xa, d.xa}
		}
		m.blockForward(w, ad, n, b, func(qkv, attn kernels.Buf) {
			be.CacheWrite(c.k[l], width, qkv, C, cfg.Heads*hd, st.slots)
			be.CacheWrite(c.v[l], width, qkv, C, (cfg.Heads+cfg.KVHeads)*hd, st.slots)
			be.AttentionDecode(attn, qkv, C, c.k[l], c.v[l], st.all, st.lens, cfg.Heads, cfg.KVHeads, hd, scale)
		})
	}
	be.RMSNorm(v(d.out, D), d.rstd, x, m.w.norm, n, D, eps)
	return m.headLogits(d, n)
}
