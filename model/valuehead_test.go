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
		vals, err := v.Forward(ws, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for i, c := range coef {
			s += float64(c) * float64(vals[i])
		}
		return s
	}
	loss()
	m.EnableGrads()
	m.ZeroGrads()
	// Through the trunk: no log-prob terms, only the value head's.
	targets := make([]int32, ws.n)
	for i := range targets {
		targets[i] = -1
	}
	g0, err := m.LossGrad(ws, Output{Targets: targets, InvTemp: 1}, m.KnownGrad(make([]float32, ws.n), nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Backward(ws, nil, coef, g0.DFinal); err != nil {
		t.Fatal(err)
	}
	dh := g0.DFinal
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
	m.Backward(ws, dh)
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

// TestValueHeadSpans: over spans of rows the value head gives the values
// of those rows (1e-6 relative) and the gradients of the full-row pass
// whose dv is zero outside the spans (1e-6 of the largest).
func TestValueHeadSpans(t *testing.T) {
	m := randomModel(t, testConfigs()["llama"], 4)
	v := m.NewValueHead(5, 0.5)
	b := Batch{IDs: []int32{3, 7, 9, 11, 5, 8, 1, 0, 2, 4, 6, 10}, B: 3, T: 4, Lens: []int{4, 3, 2}}
	spans := [][2]int{{1, 3}, {4, 4}, {5, 7}, {8, 9}}
	ws := m.NewWorkspace()
	if _, err := m.Forward(ws, b); err != nil {
		t.Fatal(err)
	}
	all, err := v.Forward(ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	some, err := v.Forward(ws, spans)
	if err != nil {
		t.Fatal(err)
	}
	dvAll := make([]float32, ws.n)
	var dvSome []float32
	k := 0
	for _, sp := range spans {
		for r := sp[0]; r < sp[1]; r++ {
			if d := math.Abs(float64(some[k] - all[r])); d > 1e-6*math.Max(1, math.Abs(float64(all[r]))) {
				t.Errorf("row %d: value %v over spans, %v over all rows", r, some[k], all[r])
			}
			dvAll[r] = float32(r%4) - 1.5
			dvSome = append(dvSome, dvAll[r])
			k++
		}
	}
	D := m.Cfg.Hidden
	run := func(spans [][2]int, dv []float32) (head, hidden []float32) {
		m.be.Zero(v.Grads)
		dh := m.be.Alloc(ws.n * D)
		defer m.be.Free(dh)
		if err := v.Backward(ws, spans, dv, dh); err != nil {
			t.Fatal(err)
		}
		return download(m.be, v.Grads), download(m.be, dh)
	}
	h1, d1 := run(nil, dvAll)
	h2, d2 := run(spans, dvSome)
	for _, c := range []struct {
		what      string
		got, want []float32
	}{{"head gradients", h2, h1}, {"hidden gradients", d2, d1}} {
		sameUpTo(t, c.what+" over spans against all rows", c.got, c.want, 1e-6)
	}
}
