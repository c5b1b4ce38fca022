package model

import (
	"fmt"
	"slices"
	"sort"

	"github.com/rltrain/rltrain/kernels"
)

// Tensor locates one parameter tensor inside the model's flat parameter
// buffer. The q, k and v projections are stored consecutively (their rows
// form one fused QKV matrix) and so are the gate and up projections, so
// each Hugging Face tensor is a plain slice of the buffer and one GEMM
// computes all of q, k and v.
type Tensor struct {
	Name   string // Hugging Face name
	Offset int    // in floats
	Shape  []int
}

// Size is the number of floats in t.
func (t Tensor) Size() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// span locates a tensor in the flat buffer: its offset and size in floats.
// The zero span marks an absent tensor.
type span struct{ off, n int }

// blockSpans locates one transformer block's tensors.
type blockSpans struct {
	attnNorm, qkv, qkvBias, qNorm, kNorm, o, mlpNorm, gateUp, down span
}

type layout struct {
	tensors             []Tensor
	embed, norm, lmHead span
	layers              []blockSpans
	size                int
}

// weights are typed views of one flat buffer laid out as a model's
// parameters: the parameters themselves, or their gradients. They are
// computed once, when the buffer is allocated.
type weights struct {
	embed, norm, lmHead kernels.Buf
	layers              []block
}

// block is one pre-norm transformer block's tensors.
type block struct {
	attn attention
	mlp  mlp
}

// attention holds the self-attention tensors: the input norm, the fused
// q/k/v projection (rows of q, then k, then v), its bias (Qwen2; nil when
// absent), the per-head q and k norms (Qwen3; nil when absent) and the
// output projection.
type attention struct {
	norm, qkv, qkvBias, qNorm, kNorm, out kernels.Buf
}

// mlp holds the SwiGLU feed-forward tensors: the norm before it, the fused
// gate/up projection (gate rows first) and the down projection.
type mlp struct {
	norm, gateUp, down kernels.Buf
}

// views returns the typed views of buf.
func (l layout) views(be kernels.Backend, buf kernels.Buf) weights {
	v := func(s span) kernels.Buf {
		if s.n == 0 {
			return nil
		}
		return be.View(buf, s.off, s.n)
	}
	w := weights{embed: v(l.embed), norm: v(l.norm), lmHead: v(l.lmHead)}
	for _, s := range l.layers {
		w.layers = append(w.layers, block{
			attn: attention{norm: v(s.attnNorm), qkv: v(s.qkv), qkvBias: v(s.qkvBias), qNorm: v(s.qNorm), kNorm: v(s.kNorm), out: v(s.o)},
			mlp:  mlp{norm: v(s.mlpNorm), gateUp: v(s.gateUp), down: v(s.down)},
		})
	}
	return w
}

func (c Config) qkvWidth() int { return (c.Heads + 2*c.KVHeads) * c.HeadDim }

// tensorLayout lists the parameters in buffer order.
func (c Config) tensorLayout() []Tensor { return c.layout().tensors }

func (c Config) layout() layout {
	var l layout
	add := func(name string, shape ...int) span {
		t := Tensor{Name: name, Offset: l.size, Shape: shape}
		l.tensors = append(l.tensors, t)
		l.size += t.Size()
		return span{t.Offset, t.Size()}
	}
	// fused extends s over every tensor added after it: q, k and v (and
	// their biases), gate and up are stored as one matrix each.
	fused := func(s *span) { s.n = l.size - s.off }
	D, hd := c.Hidden, c.HeadDim
	l.embed = add("model.embed_tokens.weight", c.Vocab, D)
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		var lo blockSpans
		lo.attnNorm = add(p+"input_layernorm.weight", D)
		lo.qkv = add(p+"self_attn.q_proj.weight", c.Heads*hd, D)
		add(p+"self_attn.k_proj.weight", c.KVHeads*hd, D)
		add(p+"self_attn.v_proj.weight", c.KVHeads*hd, D)
		fused(&lo.qkv)
		if c.AttnBias {
			lo.qkvBias = add(p+"self_attn.q_proj.bias", c.Heads*hd)
			add(p+"self_attn.k_proj.bias", c.KVHeads*hd)
			add(p+"self_attn.v_proj.bias", c.KVHeads*hd)
			fused(&lo.qkvBias)
		}
		if c.QKNorm {
			lo.qNorm = add(p+"self_attn.q_norm.weight", hd)
			lo.kNorm = add(p+"self_attn.k_norm.weight", hd)
		}
		lo.o = add(p+"self_attn.o_proj.weight", D, c.Heads*hd)
		lo.mlpNorm = add(p+"post_attention_layernorm.weight", D)
		lo.gateUp = add(p+"mlp.gate_proj.weight", c.FFN, D)
		add(p+"mlp.up_proj.weight", c.FFN, D)
		fused(&lo.gateUp)
		lo.down = add(p+"mlp.down_proj.weight", D, c.FFN)
		l.layers = append(l.layers, lo)
	}
	l.norm = add("model.norm.weight", D)
	l.lmHead = l.embed
	if !c.TieEmbeddings {
		l.lmHead = add("lm_head.weight", c.Vocab, D)
	}
	return l
}

func sortStrings(s []string) { sort.Strings(s) }

// TensorNames lists the Hugging Face names of every parameter, sorted.
func (c Config) TensorNames() []string {
	var names []string
	for _, t := range c.tensorLayout() {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	return names
}
