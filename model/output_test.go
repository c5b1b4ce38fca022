package model

import (
	"math"
	"testing"

	"github.com/rltrain/rltrain/kernels"
)

// logits materialises the [rows × vocab] logits of the last Forward.
func logits(m *Model, ws *Workspace) []float32 {
	c, be := m.Cfg, m.be
	out := be.Alloc(ws.n * c.Vocab)
	be.Gemm(false, true, ws.n, c.Vocab, c.Hidden, 1, ws.view(ws.final, c.Hidden), c.Hidden, m.LMHead(), c.Hidden, 0, out, c.Vocab)
	host := make([]float32, ws.n*c.Vocab)
	be.Download(host, out)
	be.Free(out)
	return host
}

// twoPass is the output layer as two separate kernels over every row of
// the last Forward — TokenLogProbs, then TokenLogProbsBackward with the
// given dL/dℓ — followed by the trunk's backward: the reference the one-pass
// LossGrad is tested against. It returns the log-probs.
func twoPass(t *testing.T, m *Model, ws *Workspace, targets []int32, invTemp float32, dlogp []float32) []float32 {
	t.Helper()
	be, c := m.be, m.Cfg
	n := ws.n
	if len(targets) != n || len(dlogp) != n {
		t.Fatalf("%d targets and %d gradients for %d rows", len(targets), len(dlogp), n)
	}
	m.EnableGrads()
	final := ws.view(ws.final, c.Hidden)
	logp, lse, dl := be.Alloc(n), be.Alloc(n), be.Alloc(n)
	defer func() { be.Free(logp); be.Free(lse); be.Free(dl) }()
	be.TokenLogProbs(logp, nil, lse, final, m.LMHead(), targets, n, c.Hidden, c.Vocab, invTemp)
	be.Upload(dl, dlogp)
	dfinal := ws.view(ws.dfinal, c.Hidden)
	be.Zero(dfinal)
	be.TokenLogProbsBackward(dfinal, m.dw.lmHead, dl, nil, final, m.LMHead(), lse, nil, targets, n, c.Hidden, c.Vocab, invTemp)
	m.Backward(ws, dfinal)
	host := make([]float32, n)
	be.Download(host, logp)
	return host
}

// lossGrad is the production path with a known dL/dℓ: LossGrad, then
// Backward. It returns the log-probs.
func lossGrad(t *testing.T, m *Model, ws *Workspace, o Output, dlogp []float32) []float32 {
	t.Helper()
	g, err := m.LossGrad(ws, o, m.KnownGrad(dlogp, nil))
	if err != nil {
		t.Fatal(err)
	}
	m.Backward(ws, g.DFinal)
	return download(m.be, g.Logp)
}

// sameUpTo fails the test unless got is within tol·max|want| of want
// everywhere (an all-zero want fails too: it would prove nothing).
func sameUpTo(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	var num, den float64
	for i := range want {
		num = math.Max(num, math.Abs(float64(got[i]-want[i])))
		den = math.Max(den, math.Abs(float64(want[i])))
	}
	if den == 0 || num > tol*den {
		t.Errorf("%s: differ by %.3g (largest %.3g)", what, num, den)
	}
}

func download(be kernels.Backend, b kernels.Buf) []float32 {
	out := make([]float32, b.Len())
	be.Download(out, b)
	return out
}

// TestOutputErrors: targets that do not match the output rows, spans
// outside the batch and an entropy gradient without the entropy are
// errors, not panics.
func TestOutputErrors(t *testing.T) {
	m := randomModel(t, testConfigs()["llama"], 2)
	ws := m.NewWorkspace()
	if _, err := m.Forward(ws, Batch{IDs: []int32{1, 2, 3, 4}, B: 2, T: 2}); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]Output{
		"targets":      {Targets: []int32{1, 2, 3}},
		"span":         {Spans: [][2]int{{3, 5}}, Targets: []int32{1, 2}},
		"entropy grad": {Targets: []int32{1, 2, 3, 4}, EntropyGrad: true},
	} {
		if _, err := m.LossGrad(ws, o, m.KnownGrad(make([]float32, 4), nil)); err == nil {
			t.Errorf("%s: LossGrad gave no error", name)
		}
		if name != "entropy grad" {
			if _, _, err := m.LogProbs(ws, o); err == nil {
				t.Errorf("%s: LogProbs gave no error", name)
			}
		}
	}
}
