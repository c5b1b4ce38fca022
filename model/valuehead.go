package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/rltrain/rltrain/kernels"
)

// ValueHead is PPO's critic: a linear map V = h·w + b from each row's final
// normalised hidden state to a scalar value, sharing the policy's trunk.
// Its parameters live in one buffer [w (hidden floats), b].
type ValueHead struct {
	be     kernels.Backend
	hidden int
	Params kernels.Buf
	Grads  kernels.Buf
	out    kernels.Buf // values of the last Forward
	dh     kernels.Buf // hidden-state gradient of the last Backward
}

// Names of the value head's tensors in checkpoints and optimizer state.
const (
	ValueWeightName = "value_head.weight"
	ValueBiasName   = "value_head.bias"
)

// NewValueHead returns a value head with small random weights (std) and a
// zero bias.
func (m *Model) NewValueHead(seed uint64, std float64) *ValueHead {
	be, D := m.be, m.Cfg.Hidden
	v := &ValueHead{be: be, hidden: D, Params: be.Alloc(D + 1), Grads: be.Alloc(D + 1)}
	r := rand.New(rand.NewPCG(seed, 0x7a1))
	host := make([]float32, D+1)
	for i := range D {
		host[i] = float32(r.NormFloat64() * std)
	}
	be.Upload(v.Params, host)
	return v
}

// Weight and Bias are views of the parameters; WeightGrad and BiasGrad of
// the gradients.
func (v *ValueHead) Weight() kernels.Buf     { return v.be.View(v.Params, 0, v.hidden) }
func (v *ValueHead) Bias() kernels.Buf       { return v.be.View(v.Params, v.hidden, 1) }
func (v *ValueHead) WeightGrad() kernels.Buf { return v.be.View(v.Grads, 0, v.hidden) }
func (v *ValueHead) BiasGrad() kernels.Buf   { return v.be.View(v.Grads, v.hidden, 1) }

// Forward returns the value of every row of the last Forward on ws.
func (v *ValueHead) Forward(ws *Workspace) []float32 {
	be, n := v.be, ws.n
	if v.out == nil || v.out.Len() < n {
		v.out = be.Alloc(n)
	}
	out := be.View(v.out, 0, n)
	be.Gemm(false, true, n, 1, v.hidden, 1, ws.view(ws.final, v.hidden), v.hidden, v.Weight(), v.hidden, 0, out, 1)
	be.AddBias(out, v.Bias(), n, 1)
	host := make([]float32, n)
	be.Download(host, out)
	return host
}

// Backward accumulates the gradients of Σ dv·V into the head's parameters
// and returns the gradient with respect to the hidden states [rows,
// hidden], to pass to Model.BackwardLogProbsWith.
func (v *ValueHead) Backward(ws *Workspace, dv []float32) (kernels.Buf, error) {
	be, n := v.be, ws.n
	if len(dv) != n {
		return nil, fmt.Errorf("value head: %d gradients for %d rows", len(dv), n)
	}
	g := be.Alloc(n)
	defer be.Free(g)
	be.Upload(g, dv)
	final := ws.view(ws.final, v.hidden)
	be.Gemm(true, false, 1, v.hidden, n, 1, g, 1, final, v.hidden, 1, v.WeightGrad(), v.hidden)
	be.BiasBackward(v.BiasGrad(), g, n, 1)
	if v.dh == nil || v.dh.Len() < n*v.hidden {
		v.dh = be.Alloc(n * v.hidden)
	}
	dh := be.View(v.dh, 0, n*v.hidden)
	be.Gemm(false, false, n, v.hidden, 1, 1, g, 1, v.Weight(), v.hidden, 0, dh, v.hidden)
	return dh, nil
}
