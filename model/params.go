package model

import (
	"fmt"
	"slices"
	"sort"
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
	// Decay is false for norms, biases and embeddings, which AdamW does not
	// decay by default.
	Decay bool
}

// Size is the number of floats in t.
func (t Tensor) Size() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// layerOffsets locates a layer's tensors; -1 marks an absent tensor.
type layerOffsets struct {
	attnNorm, qkv, qkvBias, qNorm, kNorm, o, mlpNorm, gateUp, down int
}

type layout struct {
	tensors             []Tensor
	embed, norm, lmHead int
	layers              []layerOffsets
	size                int
}

func (c Config) qkvWidth() int { return (c.Heads + 2*c.KVHeads) * c.HeadDim }

// tensorLayout lists the parameters in buffer order.
func (c Config) tensorLayout() []Tensor { return c.layout().tensors }

func (c Config) layout() layout {
	var l layout
	add := func(name string, decay bool, shape ...int) int {
		t := Tensor{Name: name, Offset: l.size, Shape: shape, Decay: decay}
		l.tensors = append(l.tensors, t)
		l.size += t.Size()
		return t.Offset
	}
	D, hd := c.Hidden, c.HeadDim
	l.embed = add("model.embed_tokens.weight", false, c.Vocab, D)
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		var lo layerOffsets
		lo.attnNorm = add(p+"input_layernorm.weight", false, D)
		lo.qkv = add(p+"self_attn.q_proj.weight", true, c.Heads*hd, D)
		add(p+"self_attn.k_proj.weight", true, c.KVHeads*hd, D)
		add(p+"self_attn.v_proj.weight", true, c.KVHeads*hd, D)
		lo.qkvBias, lo.qNorm, lo.kNorm = -1, -1, -1
		if c.AttnBias {
			lo.qkvBias = add(p+"self_attn.q_proj.bias", false, c.Heads*hd)
			add(p+"self_attn.k_proj.bias", false, c.KVHeads*hd)
			add(p+"self_attn.v_proj.bias", false, c.KVHeads*hd)
		}
		if c.QKNorm {
			lo.qNorm = add(p+"self_attn.q_norm.weight", false, hd)
			lo.kNorm = add(p+"self_attn.k_norm.weight", false, hd)
		}
		lo.o = add(p+"self_attn.o_proj.weight", true, D, c.Heads*hd)
		lo.mlpNorm = add(p+"post_attention_layernorm.weight", false, D)
		lo.gateUp = add(p+"mlp.gate_proj.weight", true, c.FFN, D)
		add(p+"mlp.up_proj.weight", true, c.FFN, D)
		lo.down = add(p+"mlp.down_proj.weight", true, D, c.FFN)
		l.layers = append(l.layers, lo)
	}
	l.norm = add("model.norm.weight", false, D)
	l.lmHead = l.embed
	if !c.TieEmbeddings {
		l.lmHead = add("lm_head.weight", true, c.Vocab, D)
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
