package model

import (
	"fmt"

	"github.com/rltrain/rltrain/kernels"
)

// Batch is a right-padded batch of token sequences: IDs holds B rows of T
// ids; Lens[b] ≤ T is the valid length of row b (nil: all T). Padding ids
// must still be valid vocabulary ids (0 is fine); they never influence the
// valid positions.
type Batch struct {
	IDs  []int32
	B, T int
	Lens []int
}

func (b Batch) check(vocab int) error {
	if b.B <= 0 || b.T <= 0 || len(b.IDs) != b.B*b.T {
		return fmt.Errorf("batch: %d ids for %d×%d", len(b.IDs), b.B, b.T)
	}
	if b.Lens != nil && len(b.Lens) != b.B {
		return fmt.Errorf("batch: %d lengths for %d rows", len(b.Lens), b.B)
	}
	for i, n := range b.Lens {
		if n < 1 || n > b.T {
			return fmt.Errorf("batch: row %d has length %d, want 1..%d", i, n, b.T)
		}
	}
	for i, id := range b.IDs {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("batch: token %d of row %d is %d, outside the vocabulary of %d", i%b.T, i/b.T, id, vocab)
		}
	}
	return nil
}

// PadBatch lays rows out as a right-padded batch of T columns (padding id
// 0); T = 0 means the longest row's length. No row may be longer than T.
func PadBatch(rows [][]int32, T int) Batch {
	if T == 0 {
		for _, r := range rows {
			T = max(T, len(r))
		}
	}
	b := Batch{B: len(rows), T: T, IDs: make([]int32, len(rows)*T), Lens: make([]int, len(rows))}
	for i, r := range rows {
		copy(b.IDs[i*T:(i+1)*T], r)
		b.Lens[i] = len(r)
	}
	return b
}

// Len is the valid length of row i.
func (b Batch) Len(i int) int {
	if b.Lens == nil {
		return b.T
	}
	return b.Lens[i]
}

type layerActs struct {
	ln1, rstd1      kernels.Buf
	qkvPre, qkv     kernels.Buf // qkvPre: before the q/k norm (QKNorm only)
	qRstd, kRstd    kernels.Buf
	attn, lse       kernels.Buf
	mid, ln2, rstd2 kernels.Buf
	gateUp, act     kernels.Buf
	// loraXA holds x·Aᵀ of each adapted group ([rows × parts·r]; nil for
	// a group without adapted parts), kept for the adapter's backward.
	loraXA [numGroups]kernels.Buf
}

// Workspace holds the activations of one forward pass (kept for the
// backward pass) and the backward scratch buffers. Reuse it across calls:
// it grows to the largest batch seen, freeing the buffers it outgrows.
// Free gives its device memory back.
type Workspace struct {
	m      *Model
	batch  Batch
	n, cap int
	owned  []kernels.Buf // every buffer below, for Free
	resid  []kernels.Buf // resid[l] is layer l's input; resid[L] the last output
	layers []layerActs
	final  kernels.Buf
	frstd  kernels.Buf
	cos    kernels.Buf
	sin    kernels.Buf
	// per-row output-layer values (see output.go)
	lse, ent, logp, dlogp, dent kernels.Buf
	// backward scratch
	dres, dln, dattn, dqkv, dqkvPre, dgu, dact, dfinal kernels.Buf
	// the output rows' final hidden states and their gradient, gathered
	// from spans of rows (Output.Spans)
	cfinal, cdfinal kernels.Buf
	// lora is the adapter the buffers were sized for; dxa is the
	// adapter's backward scratch and dnorm stands in for the gradient of
	// a frozen norm's weight.
	lora       *Adapter
	dxa, dnorm kernels.Buf
	// kPool and vPool hold one layer's keys and values row by row for
	// row-invariant attention (SetRowInvariant); allocated on first use.
	kPool, vPool kernels.Buf
}

// NewWorkspace returns an empty workspace for m.
func (m *Model) NewWorkspace() *Workspace { return &Workspace{m: m} }

// Floats is the number of floats the workspace's buffers hold: the
// activations kept for the backward pass and its scratch, for memory
// accounting.
func (ws *Workspace) Floats() int {
	n := 0
	for _, b := range ws.owned {
		n += b.Len()
	}
	return n
}

// Free releases the workspace's device buffers; the workspace stays usable
// and allocates again on its next Forward.
func (ws *Workspace) Free() {
	for _, b := range ws.owned {
		ws.m.be.Free(b)
	}
	*ws = Workspace{m: ws.m}
}

func (ws *Workspace) alloc(n int) {
	if n <= ws.cap && ws.lora == ws.m.lora {
		return
	}
	ws.Free()
	be, c := ws.m.be, ws.m.Cfg
	get := func(size int) kernels.Buf {
		b := be.Alloc(size)
		ws.owned = append(ws.owned, b)
		return b
	}
	D, C, A, F := c.Hidden, c.qkvWidth(), c.Heads*c.HeadDim, c.FFN
	ws.cap = n
	ws.resid = make([]kernels.Buf, c.Layers+1)
	for i := range ws.resid {
		ws.resid[i] = get(n * D)
	}
	ws.layers = make([]layerActs, c.Layers)
	for i := range ws.layers {
		a := &ws.layers[i]
		a.ln1, a.rstd1 = get(n*D), get(n)
		a.qkv = get(n * C)
		if c.QKNorm {
			a.qkvPre = get(n * C)
			a.qRstd, a.kRstd = get(n*c.Heads), get(n*c.KVHeads)
		}
		a.attn, a.lse = get(n*A), get(n*c.Heads)
		a.mid, a.ln2, a.rstd2 = get(n*D), get(n*D), get(n)
		a.gateUp, a.act = get(n*2*F), get(n*F)
		if ad := ws.m.lora; ad != nil {
			for g, grp := range ad.w[i] {
				if grp.a != nil {
					a.loraXA[g] = get(n * len(grp.parts) * ad.lay.r)
				}
			}
		}
	}
	ws.final, ws.frstd = get(n*D), get(n)
	ws.cos, ws.sin = get(n*c.HeadDim/2), get(n*c.HeadDim/2)
	ws.lse, ws.ent, ws.logp = get(n), get(n), get(n)
	ws.dres, ws.dln, ws.dfinal = get(n*D), get(n*D), get(n*D)
	ws.dlogp, ws.dent = get(n), get(n)
	ws.cfinal, ws.cdfinal = get(n*D), get(n*D)
	ws.dattn, ws.dqkv = get(n*A), get(n*C)
	if c.QKNorm {
		ws.dqkvPre = get(n * C)
	}
	ws.dgu, ws.dact = get(n*2*F), get(n*F)
	ws.lora = ws.m.lora
	if ws.lora != nil {
		ws.dxa = get(n * maxLoRAParts * ws.lora.lay.r)
	}
	if ws.m.frozenBase() {
		ws.dnorm = get(max(D, c.HeadDim))
	}
}

// view returns the first n rows (of the given width) of a workspace buffer.
func (ws *Workspace) view(b kernels.Buf, width int) kernels.Buf {
	return ws.m.be.View(b, 0, ws.n*width)
}

func (ws *Workspace) attnShape() kernels.AttnShape {
	c := ws.m.Cfg
	return kernels.AttnShape{Batch: ws.batch.B, SeqLen: ws.batch.T, Heads: c.Heads, KVHeads: c.KVHeads,
		HeadDim: c.HeadDim, Lens: ws.batch.Lens, Scale: float32(1 / sqrt(float64(c.HeadDim)))}
}

// Forward runs the transformer over batch and returns the final normalised
// hidden states [B*T, hidden] (valid until the next call on ws).
func (m *Model) Forward(ws *Workspace, batch Batch) (kernels.Buf, error) {
	if ws.m != m {
		return nil, fmt.Errorf("model: workspace belongs to another model")
	}
	if err := batch.check(m.Cfg.Vocab); err != nil {
		return nil, err
	}
	ws.alloc(batch.B * batch.T)
	ws.batch, ws.n = batch, batch.B*batch.T
	be, c := m.be, m.Cfg
	N, D, C, A, F, hd := ws.n, c.Hidden, c.qkvWidth(), c.Heads*c.HeadDim, c.FFN, c.HeadDim
	eps := float32(c.RMSEps)

	positions := make([]int32, N)
	for i := range positions {
		positions[i] = int32(i % batch.T)
	}
	half := hd / 2
	cos, sin := make([]float32, N*half), make([]float32, N*half)
	m.rope.fill(cos, sin, positions)
	be.Upload(ws.view(ws.cos, half), cos)
	be.Upload(ws.view(ws.sin, half), sin)

	be.Embed(ws.view(ws.resid[0], D), m.w.embed, batch.IDs, D)
	shape := ws.attnShape()
	for l, w := range m.w.layers {
		a := &ws.layers[l]
		b := blockBufs{
			in: ws.view(ws.resid[l], D), out: ws.view(ws.resid[l+1], D),
			ln1: ws.view(a.ln1, D), rstd1: a.rstd1, qkv: ws.view(a.qkv, C), qRstd: a.qRstd, kRstd: a.kRstd,
			attn: ws.view(a.attn, A), mid: ws.view(a.mid, D), ln2: ws.view(a.ln2, D), rstd2: a.rstd2,
			gateUp: ws.view(a.gateUp, 2*F), act: ws.view(a.act, F), cos: ws.cos, sin: ws.sin,
		}
		if c.QKNorm {
			b.pre = ws.view(a.qkvPre, C)
		}
		var ad *loraBlock
		if m.lora != nil {
			ad = &m.lora.w[l]
			b.xa = a.loraXA
		}
		m.blockForward(w, ad, N, b, func(qkv, attn kernels.Buf) {
			be.Attention(attn, a.lse, qkv, shape)
			if m.rowInvariant {
				ws.decodeAttention(qkv, attn)
			}
		})
	}
	final := ws.view(ws.final, D)
	be.RMSNorm(final, ws.frstd, ws.view(ws.resid[c.Layers], D), m.w.norm, N, D, eps)
	return final, nil
}

// SetRowInvariant makes every later Forward (and so Prefill) compute each
// row exactly as a decoding step computes the same position: products
// through the backend's row-invariant kernel, and each row's attention by
// the decoding kernel over the keys and values of its prefix (the full
// causal attention still runs, for the log-sum-exp the backward pass
// needs). Then the log-probs a trainer computes equal the sampler's to the
// bit, and the sampler's can serve as the old policy's. It reports false,
// changing nothing, on a backend without row-invariant products
// (kernels.RowInvariantForward). It sets the backend, which a reference
// model on the same backend shares.
func (m *Model) SetRowInvariant(on bool) bool {
	ri, ok := m.be.(kernels.RowInvariantForward)
	if !ok || !ri.SetRowInvariant(on) {
		return false
	}
	m.rowInvariant = on
	return true
}

// RowInvariant reports whether SetRowInvariant is on.
func (m *Model) RowInvariant() bool { return m.rowInvariant }

// decodeAttention overwrites the attention output of every valid row with
// the decoding kernel's: the row's query against the keys and values of
// positions 0..row of its sequence, gathered into pools as the KV cache
// holds them. Padding rows attend to nothing (zeros).
func (ws *Workspace) decodeAttention(qkv, attn kernels.Buf) {
	m := ws.m
	be, c := m.be, m.Cfg
	N, T, hd := ws.n, ws.batch.T, c.HeadDim
	C, width := c.qkvWidth(), c.KVHeads*hd
	if ws.kPool == nil { // alloc clears them when the workspace grows
		ws.kPool, ws.vPool = be.Alloc(ws.cap*width), be.Alloc(ws.cap*width)
		ws.owned = append(ws.owned, ws.kPool, ws.vPool)
	}
	rows := make([]int32, N)
	for i := range rows {
		rows[i] = int32(i)
	}
	be.CacheWrite(ws.kPool, width, qkv, C, c.Heads*hd, rows)
	be.CacheWrite(ws.vPool, width, qkv, C, (c.Heads+c.KVHeads)*hd, rows)
	slots := make([][]int32, N)
	lens := make([]int, N)
	for i := range N {
		b, r := i/T, i%T
		if r < ws.batch.Len(b) {
			slots[i], lens[i] = rows[b*T:i+1], r+1
		}
	}
	be.AttentionDecode(attn, qkv, C, ws.kPool, ws.vPool, slots, lens, c.Heads, c.KVHeads, hd, float32(1/sqrt(float64(hd))))
}

// Backward propagates dFinal (the gradient of the loss with respect to the
// final normalised hidden states of the last Forward on ws, [rows ×
// hidden]; LossGrad returns it) through the model, accumulating parameter
// gradients into m.Grads — or, with an adapter attached, only the
// adapter's gradients into its Grads: the frozen base weights get no
// gradient products at all.
func (m *Model) Backward(ws *Workspace, dFinal kernels.Buf) {
	frozen := m.frozenBase()
	if !frozen {
		m.EnableGrads()
	}
	dw := m.dw
	if frozen {
		dw = ws.frozenGrads()
	}
	ad := m.lora
	if ad != nil {
		ad.EnableGrads()
	}
	be, c := m.be, m.Cfg
	N, D, C, A, F, hd := ws.n, c.Hidden, c.qkvWidth(), c.Heads*c.HeadDim, c.FFN, c.HeadDim
	dres, dln := ws.view(ws.dres, D), ws.view(ws.dln, D)
	be.Zero(dres)
	be.RMSNormBackward(dres, dw.norm, dFinal, ws.view(ws.resid[c.Layers], D), m.w.norm, ws.frstd, N, D)
	var ranges [][2]int
	if m.GradReady != nil && !frozen {
		ranges = m.GradRanges()
	}
	m.gradReady(ranges, 0)
	shape := ws.attnShape()
	for l := c.Layers - 1; l >= 0; l-- {
		w, g, a := m.w.layers[l], dw.layers[l], &ws.layers[l]
		in := ws.view(ws.resid[l], D)
		ln1, qkv, attn, mid, ln2 := ws.view(a.ln1, D), ws.view(a.qkv, C), ws.view(a.attn, A), ws.view(a.mid, D), ws.view(a.ln2, D)
		gu, act := ws.view(a.gateUp, 2*F), ws.view(a.act, F)
		dact, dgu, dattn, dqkv := ws.view(ws.dact, F), ws.view(ws.dgu, 2*F), ws.view(ws.dattn, A), ws.view(ws.dqkv, C)
		lora := func(grp int, x, dy, dx kernels.Buf) {
			if ad != nil {
				ad.backward(grp, l, N, x, a.loraXA[grp], dy, ws.dxa, dx)
			}
		}

		// MLP: out = mid + down(swiglu(gateUp(norm(mid))))
		be.Gemm(false, false, N, F, D, 1, dres, D, w.mlp.down, F, 0, dact, F)
		if g.mlp.down != nil {
			be.Gemm(true, false, D, F, N, 1, dres, D, act, F, 1, g.mlp.down, F)
		}
		lora(groupDown, act, dres, dact)
		be.SwiGLUBackward(dgu, dact, gu, N, F)
		be.Gemm(false, false, N, D, 2*F, 1, dgu, 2*F, w.mlp.gateUp, D, 0, dln, D)
		if g.mlp.gateUp != nil {
			be.Gemm(true, false, 2*F, D, N, 1, dgu, 2*F, ln2, D, 1, g.mlp.gateUp, D)
		}
		lora(groupGateUp, ln2, dgu, dln)
		be.RMSNormBackward(dres, g.mlp.norm, dln, mid, w.mlp.norm, a.rstd2, N, D)

		// Attention: mid = in + o(attn(rope(qkv(norm(in)))))
		be.Gemm(false, false, N, A, D, 1, dres, D, w.attn.out, A, 0, dattn, A)
		if g.attn.out != nil {
			be.Gemm(true, false, D, A, N, 1, dres, D, attn, A, 1, g.attn.out, A)
		}
		lora(groupO, attn, dres, dattn)
		be.AttentionBackward(dqkv, dattn, qkv, attn, a.lse, shape)
		be.RoPE(dqkv, C, ws.cos, ws.sin, N, c.Heads+c.KVHeads, hd, true)
		dproj := dqkv
		if c.QKNorm {
			dproj = ws.view(ws.dqkvPre, C)
			pre := ws.view(a.qkvPre, C)
			be.Zero(dproj)
			be.RMSNormHeadsBackward(dproj, g.attn.qNorm, dqkv, pre, w.attn.qNorm, a.qRstd, C, 0, N, c.Heads, hd)
			be.RMSNormHeadsBackward(dproj, g.attn.kNorm, dqkv, pre, w.attn.kNorm, a.kRstd, C, c.Heads*hd, N, c.KVHeads, hd)
			vOff := (c.Heads + c.KVHeads) * hd
			be.Copy2D(be.View(dproj, vOff, N*C-vOff), C, be.View(dqkv, vOff, N*C-vOff), C, N, c.KVHeads*hd)
		}
		if g.attn.qkvBias != nil {
			be.BiasBackward(g.attn.qkvBias, dproj, N, C)
		}
		be.Gemm(false, false, N, D, C, 1, dproj, C, w.attn.qkv, D, 0, dln, D)
		if g.attn.qkv != nil {
			be.Gemm(true, false, C, D, N, 1, dproj, C, ln1, D, 1, g.attn.qkv, D)
		}
		lora(groupQKV, ln1, dproj, dln)
		be.RMSNormBackward(dres, g.attn.norm, dln, in, w.attn.norm, a.rstd1, N, D)
		m.gradReady(ranges, c.Layers-l)
	}
	if !frozen {
		be.EmbedBackward(m.dw.embed, dres, ws.batch.IDs, D)
	}
	m.gradReady(ranges, c.Layers+1)
}

// frozenGrads stands in for the gradient views of a frozen model: the
// norms' weight gradients, which the norm kernels always compute, go to a
// scratch buffer that nothing reads; every other tensor's is nil and its
// product skipped.
func (ws *Workspace) frozenGrads() weights {
	be, c := ws.m.be, ws.m.Cfg
	d, h := be.View(ws.dnorm, 0, c.Hidden), be.View(ws.dnorm, 0, c.HeadDim)
	be.Zero(ws.dnorm)
	w := weights{norm: d, layers: make([]block, c.Layers)}
	for i := range w.layers {
		w.layers[i] = block{attn: attention{norm: d}, mlp: mlp{norm: d}}
		if c.QKNorm {
			w.layers[i].attn.qNorm, w.layers[i].attn.kNorm = h, h
		}
	}
	return w
}

// NextTokenTargets returns, for a batch, the target of each row position:
// the next token where one exists inside the valid length, −1 elsewhere.
func NextTokenTargets(b Batch) []int32 {
	t := make([]int32, len(b.IDs))
	for i := 0; i < b.B; i++ {
		n := b.Len(i)
		for j := 0; j < b.T; j++ {
			t[i*b.T+j] = -1
			if j+1 < n {
				t[i*b.T+j] = b.IDs[i*b.T+j+1]
			}
		}
	}
	return t
}

// blockBufs are the buffers of one transformer block over n rows. out may
// alias in (decoding overwrites its input); pre is the q/k-norm input
// (QKNorm models only).
type blockBufs struct {
	in, out      kernels.Buf
	ln1, rstd1   kernels.Buf
	pre, qkv     kernels.Buf
	qRstd, kRstd kernels.Buf
	attn, mid    kernels.Buf
	ln2, rstd2   kernels.Buf
	gateUp, act  kernels.Buf
	cos, sin     kernels.Buf
	// xa receives x·Aᵀ of each adapted group (with an adapter only).
	xa [numGroups]kernels.Buf
}

// blockForward runs one pre-norm transformer block: out = mid +
// MLP(norm(mid)), mid = in + O(attend(RoPE(QKV(norm(in))))). attend turns
// the fused, rotated qkv rows into attention outputs (full causal attention
// in training, the KV cache when decoding). ad, when not nil, is the
// block's LoRA adapter: each adapted projection adds s·(x·Aᵀ)·Bᵀ to its
// output before anything reads it (a q/k norm, the residual sum).
func (m *Model) blockForward(w block, ad *loraBlock, n int, b blockBufs, attend func(qkv, attn kernels.Buf)) {
	be, c := m.be, m.Cfg
	D, C, A, F, hd := c.Hidden, c.qkvWidth(), c.Heads*c.HeadDim, c.FFN, c.HeadDim
	eps := float32(c.RMSEps)
	be.RMSNorm(b.ln1, b.rstd1, b.in, w.attn.norm, n, D, eps)
	proj := b.qkv
	if c.QKNorm {
		proj = b.pre
	}
	be.Gemm(false, true, n, C, D, 1, b.ln1, D, w.attn.qkv, D, 0, proj, C)
	if w.attn.qkvBias != nil {
		be.AddBias(proj, w.attn.qkvBias, n, C)
	}
	lora := func(g int, x, out kernels.Buf) {
		if ad != nil {
			m.lora.forward(&ad[g], n, x, b.xa[g], out)
		}
	}
	lora(groupQKV, b.ln1, proj)
	if c.QKNorm {
		be.Copy(b.qkv, proj)
		be.RMSNormHeads(b.qkv, b.qRstd, proj, C, 0, w.attn.qNorm, n, c.Heads, hd, eps)
		be.RMSNormHeads(b.qkv, b.kRstd, proj, C, c.Heads*hd, w.attn.kNorm, n, c.KVHeads, hd, eps)
	}
	be.RoPE(b.qkv, C, b.cos, b.sin, n, c.Heads+c.KVHeads, hd, false)
	attend(b.qkv, b.attn)
	be.Gemm(false, true, n, D, A, 1, b.attn, A, w.attn.out, A, 0, b.mid, D)
	lora(groupO, b.attn, b.mid)
	be.Add(b.mid, b.mid, b.in)

	be.RMSNorm(b.ln2, b.rstd2, b.mid, w.mlp.norm, n, D, eps)
	be.Gemm(false, true, n, 2*F, D, 1, b.ln2, D, w.mlp.gateUp, D, 0, b.gateUp, 2*F)
	lora(groupGateUp, b.ln2, b.gateUp)
	be.SwiGLU(b.act, b.gateUp, n, F)
	be.Gemm(false, true, n, D, F, 1, b.act, F, w.mlp.down, F, 0, b.out, D)
	lora(groupDown, b.act, b.out)
	be.Add(b.out, b.out, b.mid)
}
