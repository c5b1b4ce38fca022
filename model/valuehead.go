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

// Forward returns the value of each row in spans of the last Forward on
// ws (every row when spans is nil), in order.
func (v *ValueHead) Forward(ws *Workspace, spans [][2]int) ([]float32, error) {
	n, hidden, err := ws.rows(spans)
	if err != nil {
		return nil, err
	}
	be := v.be
	if v.out == nil || v.out.Len() < n {
		if v.out != nil {
			be.Free(v.out)
		}
		v.out = be.Alloc(n)
	}
	out := be.View(v.out, 0, n)
	be.Gemm(false, true, n, 1, v.hidden, 1, hidden, v.hidden, v.Weight(), v.hidden, 0, out, 1)
	be.AddBias(out, v.Bias(), n, 1)
	host := make([]float32, n)
	be.Download(host, out)
	return host, nil
}

// Backward accumulates the gradients of Σ dv·V over the rows in spans
// (every row when nil; dv in the order of Forward's values) into the
// head's parameters and the hidden states' gradient into dFinal [rows of
// the Forward × hidden] (LossGrad's OutputGrad.DFinal, before Backward).
func (v *ValueHead) Backward(ws *Workspace, spans [][2]int, dv []float32, dFinal kernels.Buf) error {
	n, hidden, err := ws.rows(spans)
	if err != nil {
		return err
	}
	if len(dv) != n {
		return fmt.Errorf("value head: %d gradients for %d rows", len(dv), n)
	}
	be, D := v.be, v.hidden
	g := be.Alloc(n)
	defer be.Free(g)
	be.Upload(g, dv)
	be.Gemm(true, false, 1, D, n, 1, g, 1, hidden, D, 1, v.WeightGrad(), D)
	be.BiasBackward(v.BiasGrad(), g, n, 1)
	if v.dh == nil || v.dh.Len() < n*D {
		if v.dh != nil {
			be.Free(v.dh)
		}
		v.dh = be.Alloc(n * D)
	}
	dh := be.View(v.dh, 0, n*D)
	be.Gemm(false, false, n, D, 1, 1, g, 1, v.Weight(), D, 0, dh, D)
	if spans == nil {
		be.Add(dFinal, dFinal, dh)
		return nil
	}
	off := 0
	for _, sp := range spans {
		if r := sp[1] - sp[0]; r > 0 {
			rows := be.View(dFinal, sp[0]*D, r*D)
			be.Add(rows, rows, be.View(dh, off*D, r*D))
			off += r
		}
	}
	return nil
}
