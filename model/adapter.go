package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/rltrain/rltrain/kernels"
)

// Adapter is a LoRA adapter for a model: every A and B matrix in one flat
// parameter buffer (and, when training, one flat gradient buffer of the
// same layout), so the optimizer, gradient clipping and a gradient sum
// across processes each work on one buffer, as for the full model.
//
// Within a block the A matrices of projections that read the same input
// (q, k and v; gate and up) are stored consecutively, so one GEMM computes
// x·Aᵀ for all of them, as the base model's fused projections do.
type Adapter struct {
	Cfg    LoRAConfig
	be     kernels.Backend
	model  Config
	lay    adapterLayout
	Params kernels.Buf
	// Grads has the layout of Params; nil until EnableGrads.
	Grads kernels.Buf
	w, dw []loraBlock
	scale float32
}

// loraPart is one adapted projection inside a group: its output columns
// [col, col+out) of the group's fused output rows and its B matrix.
type loraPart struct {
	proj, col, out int
	b              span
}

// loraGroupSpans is one fused projection of a block (q/k/v, o, gate/up or
// down) and the adapted parts of it: in is the input width, ld the width
// of the fused output rows; a spans the parts' A matrices, consecutive.
type loraGroupSpans struct {
	in, ld int
	a      span
	parts  []loraPart
}

// Groups of a block, in forward order.
const (
	groupQKV = iota
	groupO
	groupGateUp
	groupDown
	numGroups
)

type adapterLayout struct {
	r       int
	tensors []Tensor
	layers  [][numGroups]loraGroupSpans
	size    int
	targets [][numProj]bool
}

// loraGroup is a group's typed views: the fused A [parts·r × in] and each
// part's B [out × r] (nil A when no part of the group is adapted).
type loraGroup struct {
	in, ld int
	a      kernels.Buf
	parts  []loraPartView
}

type loraPartView struct {
	col, out int
	b        kernels.Buf
}

type loraBlock [numGroups]loraGroup

// peftPrefix is how PEFT names a causal LM's weights inside an adapter.
const peftPrefix = "base_model.model."

// peftName is the adapter tensor name of projection proj of layer l; ab is
// "lora_A" or "lora_B".
func peftName(l, proj int, ab string) string {
	p := loraModules[proj]
	return peftPrefix + "model.layers." + strconv.Itoa(l) + "." + p.parent + "." + p.name + "." + ab + ".weight"
}

func newAdapterLayout(c Config, r int, targets [][numProj]bool) adapterLayout {
	l := adapterLayout{r: r, targets: targets}
	D, C, A, F, hd := c.Hidden, c.qkvWidth(), c.Heads*c.HeadDim, c.FFN, c.HeadDim
	type member struct{ proj, col, out int }
	groups := [numGroups]struct {
		in, ld  int
		members []member
	}{
		groupQKV:    {D, C, []member{{projQ, 0, c.Heads * hd}, {projK, c.Heads * hd, c.KVHeads * hd}, {projV, (c.Heads + c.KVHeads) * hd, c.KVHeads * hd}}},
		groupO:      {A, D, []member{{projO, 0, D}}},
		groupGateUp: {D, 2 * F, []member{{projGate, 0, F}, {projUp, F, F}}},
		groupDown:   {F, D, []member{{projDown, 0, D}}},
	}
	add := func(name string, shape ...int) span {
		t := Tensor{Name: name, Offset: l.size, Shape: shape}
		l.tensors = append(l.tensors, t)
		l.size += t.Size()
		return span{t.Offset, t.Size()}
	}
	for i := 0; i < c.Layers; i++ {
		var lg [numGroups]loraGroupSpans
		for g, gd := range groups {
			s := loraGroupSpans{in: gd.in, ld: gd.ld}
			start := l.size
			for _, mb := range gd.members {
				if targets[i][mb.proj] {
					add(peftName(i, mb.proj, "lora_A"), r, gd.in)
					s.parts = append(s.parts, loraPart{proj: mb.proj, col: mb.col, out: mb.out})
				}
			}
			s.a = span{start, l.size - start}
			for k := range s.parts {
				s.parts[k].b = add(peftName(i, s.parts[k].proj, "lora_B"), s.parts[k].out, r)
			}
			lg[g] = s
		}
		l.layers = append(l.layers, lg)
	}
	return l
}

func (l adapterLayout) views(be kernels.Backend, buf kernels.Buf) []loraBlock {
	out := make([]loraBlock, len(l.layers))
	for i, lg := range l.layers {
		for g, s := range lg {
			v := loraGroup{in: s.in, ld: s.ld}
			if len(s.parts) > 0 {
				v.a = be.View(buf, s.a.off, s.a.n)
			}
			for _, p := range s.parts {
				v.parts = append(v.parts, loraPartView{col: p.col, out: p.out, b: be.View(buf, p.b.off, p.b.n)})
			}
			out[i][g] = v
		}
	}
	return out
}

// NewAdapter allocates a zero adapter of configuration lc for a model of
// configuration c (B = 0, so the adapted model equals the base; InitPEFT
// draws A).
func NewAdapter(c Config, lc LoRAConfig, be kernels.Backend) (*Adapter, error) {
	if err := lc.Check(); err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	targets, err := lc.resolve(c)
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	lay := newAdapterLayout(c, lc.R, targets)
	a := &Adapter{Cfg: lc, be: be, model: c, lay: lay, Params: be.Alloc(lay.size), scale: float32(lc.Scale())}
	a.w = lay.views(be, a.Params)
	return a, nil
}

// Tensors lists the adapter's tensors (PEFT names) in buffer order.
func (a *Adapter) Tensors() []Tensor { return a.lay.tensors }

// NumParams is the number of trainable floats.
func (a *Adapter) NumParams() int { return a.lay.size }

// Backend returns the device the adapter lives on.
func (a *Adapter) Backend() kernels.Backend { return a.be }

// TargetNames lists the projection names adapted in at least one layer,
// in block order (PEFT's target_modules as it writes them after
// resolving "all-linear").
func (a *Adapter) TargetNames() []string {
	var out []string
	for p := 0; p < numProj; p++ {
		for _, t := range a.lay.targets {
			if t[p] {
				out = append(out, loraModules[p].name)
				break
			}
		}
	}
	return out
}

// EnableGrads allocates the gradient buffer (zeroed).
func (a *Adapter) EnableGrads() {
	if a.Grads == nil {
		a.Grads = a.be.Alloc(a.lay.size)
		a.dw = a.lay.views(a.be, a.Grads)
	}
}

// ZeroGrads clears the gradients.
func (a *Adapter) ZeroGrads() {
	if a.Grads != nil {
		a.be.Zero(a.Grads)
	}
}

// Free releases the adapter's device buffers.
func (a *Adapter) Free() {
	a.be.Free(a.Params)
	if a.Grads != nil {
		a.be.Free(a.Grads)
	}
	a.Params, a.Grads, a.w, a.dw = nil, nil, nil, nil
}

// InitPEFT initialises the adapter as PEFT's init_lora_weights=True does:
// each A from torch.nn.init.kaiming_uniform_(a=√5), which for a weight
// with fan_in = in is U(−1/√in, 1/√in), and every B zero, so the adapted
// model starts equal to the base. seed fixes the draw.
func (a *Adapter) InitPEFT(seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x10ea))
	host := make([]float32, a.lay.size)
	for _, lg := range a.lay.layers {
		for _, s := range lg {
			bound := 1 / math.Sqrt(float64(s.in))
			for i := s.a.off; i < s.a.off+s.a.n; i++ {
				host[i] = float32((2*r.Float64() - 1) * bound)
			}
		}
	}
	a.be.Upload(a.Params, host)
}

// MergeInto adds s·B·A to each adapted projection of m's weights, in
// place: afterwards m alone computes what m with the adapter computed
// (PEFT's merge_and_unload). m must be the adapter's base architecture and
// have no adapter attached.
func (a *Adapter) MergeInto(m *Model) error {
	if err := a.fits(m.Cfg); err != nil {
		return err
	}
	if m.lora != nil {
		return fmt.Errorf("lora: merge into a model that has an adapter attached")
	}
	be, r := m.be, a.lay.r
	for l, blk := range a.w {
		w := m.w.layers[l]
		dst := [numGroups]kernels.Buf{w.attn.qkv, w.attn.out, w.mlp.gateUp, w.mlp.down}
		for g, grp := range blk {
			for k, p := range grp.parts {
				// W[col:col+out, :] += s · B·A_k
				ak := be.View(grp.a, k*r*grp.in, r*grp.in)
				wk := be.View(dst[g], p.col*grp.in, p.out*grp.in)
				be.Gemm(false, false, p.out, grp.in, r, a.scale, p.b, r, ak, grp.in, 1, wk, grp.in)
			}
		}
	}
	return nil
}

// fits checks that the adapter was built for architecture c.
func (a *Adapter) fits(c Config) error {
	m := a.model
	if m.Layers != c.Layers || m.Hidden != c.Hidden || m.FFN != c.FFN || m.Heads != c.Heads || m.KVHeads != c.KVHeads || m.HeadDim != c.HeadDim {
		return fmt.Errorf("lora: the adapter was built for %d layers, hidden %d, ffn %d, %d/%d heads of %d; the model has %d, %d, %d, %d/%d of %d",
			m.Layers, m.Hidden, m.FFN, m.Heads, m.KVHeads, m.HeadDim, c.Layers, c.Hidden, c.FFN, c.Heads, c.KVHeads, c.HeadDim)
	}
	return nil
}

// Attach makes m compute with the adapter: every forward pass (training
// and decoding) adds the low-rank updates, and the base weights are frozen
// — Backward and LossGrad compute only the adapter's gradients, and the
// model's own gradient buffer is never allocated. nil detaches.
func (m *Model) Attach(a *Adapter) error {
	if a != nil {
		if err := a.fits(m.Cfg); err != nil {
			return err
		}
		if a.be != m.be {
			return fmt.Errorf("lora: the adapter lives on another backend")
		}
	}
	m.lora = a
	return nil
}

// Adapter returns the attached adapter, or nil.
func (m *Model) Adapter() *Adapter { return m.lora }

// Base returns the model without its adapter: the same weights (no copy),
// frozen. With a LoRA policy it is the reference policy of a KL penalty.
func (m *Model) Base() *Model {
	b := *m
	b.lora = nil
	b.Grads, b.dw, b.GradReady = nil, weights{}, nil
	b.frozen = true
	return &b
}

// maxLoRAParts is the most adapted projections one group holds (q, k, v).
const maxLoRAParts = 3

// sub is the rows×cols sub-matrix starting at element off of a row-major
// buffer with leading dimension ld.
func sub(be kernels.Backend, buf kernels.Buf, off, rows, cols, ld int) kernels.Buf {
	return be.View(buf, off, kernels.MatrixSpan(rows, cols, ld))
}

// forward adds s·(x·Aᵀ)·Bᵀ of each part of g into its columns of out [n ×
// g.ld], keeping x·Aᵀ in xa [n × parts·r] for the backward pass. x is the
// group's input [n × g.in].
func (a *Adapter) forward(g *loraGroup, n int, x, xa, out kernels.Buf) {
	if g.a == nil {
		return
	}
	be, r := a.be, a.lay.r
	k := len(g.parts) * r
	xa = be.View(xa, 0, n*k)
	be.Gemm(false, true, n, k, g.in, 1, x, g.in, g.a, g.in, 0, xa, k)
	for j, p := range g.parts {
		be.Gemm(false, true, n, p.out, r, a.scale, sub(be, xa, j*r, n, r, k), k, p.b, r, 1, sub(be, out, p.col, n, p.out, g.ld), g.ld)
	}
}

// backward is forward's backward pass for group grp of layer l: from dy
// [n × ld], the gradient of the group's fused output, it accumulates the
// gradients of A and B and adds the adapter's share of the input gradient
// into dx [n × in]. x and xa are the forward pass's input and x·Aᵀ; dxa is
// scratch of at least n·parts·r floats.
//
//	dB_j += s·dy_jᵀ·xa_j    d(xa)_j = s·dy_j·B_j    dA += d(xa)ᵀ·x    dx += d(xa)·A
func (a *Adapter) backward(grp, l, n int, x, xa, dy, dxa, dx kernels.Buf) {
	g, dg := &a.w[l][grp], &a.dw[l][grp]
	if g.a == nil {
		return
	}
	be, r := a.be, a.lay.r
	k := len(g.parts) * r
	xa, dxa = be.View(xa, 0, n*k), be.View(dxa, 0, n*k)
	for j, p := range g.parts {
		dyj := sub(be, dy, p.col, n, p.out, g.ld)
		be.Gemm(true, false, p.out, r, n, a.scale, dyj, g.ld, sub(be, xa, j*r, n, r, k), k, 1, dg.parts[j].b, r)
		be.Gemm(false, false, n, r, p.out, a.scale, dyj, g.ld, p.b, r, 0, sub(be, dxa, j*r, n, r, k), k)
	}
	be.Gemm(true, false, k, g.in, n, 1, dxa, k, x, g.in, 1, dg.a, g.in)
	be.Gemm(false, false, n, g.in, k, 1, dxa, k, g.a, g.in, 1, dx, g.in)
}
