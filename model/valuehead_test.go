package model

import (
	"math"
	"testing"
)

// TestValueHeadGradients checks the value head's parameter gradients
// against their closed forms, and the gradient through the whole trunk
// against central differences of the model (float32, so a loose 2e-2
// relative tolerance on the largest entries).
func TestValueHeadGradients(t *testing.T) {
	m := randomModel(t, testConfigs()["qwen2"], 21)
	v := m.NewValueHead(3, 0.5)
	b := Batch{IDs: []int32{3, 7, 9, 11, 5, 8, 1, 0}, B: 2, T: 4, Lens: []int{4, 3}}
	ws := m.NewWorkspace()
	coef := []float32{0.3, -1, 2, 0.5, 1, -0.7, 0.2, 0}
	loss := func() float64 {
		m.Forward(ws, b)
		vals := v.Forward(ws)
		s := 0.0
		for i, c := range coef {
			s += float64(c) * float64(vals[i])
		}
		return s
	}
	loss()
	m.ZeroGrads()
	dh, err := v.Backward(ws, coef)
	if err != nil {
		t.Fatal(err)
	}
	// Closed forms: dW = Σ c_i h_i, db = Σ c_i, dH_i = c_i w.
	D := m.Cfg.Hidden
	final := make([]float32, ws.n*D)
	m.be.Download(final, ws.view(ws.final, D))
	w := make([]float32, D+1)
	m.be.Download(w, v.Params)
	g := make([]float32, D+1)
	m.be.Download(g, v.Grads)
	hd := make([]float32, ws.n*D)
	m.be.Download(hd, dh)
	var sumC float64
	for i, c := range coef {
		sumC += float64(c)
		for j := 0; j < D; j++ {
			if d := math.Abs(float64(hd[i*D+j]) - float64(c*w[j])); d > 1e-6 {
				t.Fatalf("dHidden[%d,%d] off by %g", i, j, d)
			}
		}
	}
	for j := 0; j < D; j++ {
		want := 0.0
		for i, c := range coef {
			want += float64(c) * float64(final[i*D+j])
		}
		if math.Abs(float64(g[j])-want) > 1e-5*(1+math.Abs(want)) {
			t.Fatalf("dW[%d] = %g, want %g", j, g[j], want)
		}
	}
	if math.Abs(float64(g[D])-sumC) > 1e-5 {
		t.Fatalf("db = %g, want %g", g[D], sumC)
	}
	// Through the trunk: backward with no log-prob terms.
	targets := make([]int32, ws.n)
	for i := range targets {
		targets[i] = -1
	}
	m.TokenLogProbs(ws, targets, 1, false)
	m.BackwardLogProbsWith(ws, make([]float32, ws.n), nil, dh)
	grads := make([]float32, m.NumParams())
	m.be.Download(grads, m.Grads)
	params := make([]float32, m.NumParams())
	m.be.Download(params, m.Params)
	// Check the 20 largest-gradient parameters by central differences.
	idx := topK(grads, 20)
	for _, i := range idx {
		old := params[i]
		h := float32(1e-2) * max(1, float32(math.Abs(float64(old))))
		params[i] = old + h
		m.be.Upload(m.Params, params)
		lp := loss()
		params[i] = old - h
		m.be.Upload(m.Params, params)
		lm := loss()
		params[i] = old
		m.be.Upload(m.Params, params)
		fd := (lp - lm) / float64(2*h)
		if math.Abs(fd-float64(grads[i])) > 2e-2*math.Abs(fd)+1e-4 {
			t.Errorf("param %d: gradient %g, finite difference %g", i, grads[i], fd)
		}
	}
}

func topK(v []float32, k int) []int {
	var idx []int
	for range k {
		best := -1
		for i, x := range v {
			taken := false
			for _, j := range idx {
				taken = taken || j == i
			}
			if !taken && (best < 0 || math.Abs(float64(x)) > math.Abs(float64(v[best]))) {
				best = i
			}
		}
		idx = append(idx, best)
	}
	return idx
}
