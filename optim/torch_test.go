package optim

import (
	"github.com/rltrain/rltrain/internal/torchref"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/kernels/cpu"
)

// torchRef runs scripts/torch_optim_ref.py with req on stdin and decodes
// its answer into resp.
func torchRef(t *testing.T, req, resp any) {
	t.Helper()
	torchref.JSON(t, "torch_optim_ref.py", req, resp)
}

func rows(v []float32, width int) [][]float32 {
	var out [][]float32
	for i := 0; i < len(v); i += width {
		out = append(out, v[i:i+width])
	}
	return out
}

func flat(v [][]float64) []float64 {
	var out []float64
	for _, r := range v {
		out = append(out, r...)
	}
	return out
}

// TestPolicyLossMatchesTorch evaluates GRPO-family losses of a one-layer
// LM head in PyTorch (autograd through log_softmax over the full
// vocabulary) and compares loss and gradients with the fused pipeline:
// relative error ≤ 1e-4.
func TestPolicyLossMatchesTorch(t *testing.T) {
	t.Parallel() // mostly waiting for the Python interpreter
	r := rand.New(rand.NewPCG(17, 18))
	b := newLMBatch(r, []int{5, 8, 3, 6, 4, 7}, 16, 200)
	var objs []objective
	for _, o := range objectives() {
		if o.algo.Loss == LossPPO && (o.algo.KLEstimator != "k2" || o.algo.LossAggMode == "token-mean") {
			objs = append(objs, o)
		}
	}
	var variants []map[string]any
	for _, o := range objs {
		if o.tis {
			// TIS is covered by the float64 finite-difference test; the
			// PyTorch script implements the plain GRPO/DAPO objective.
			o.tis = false
		}
		a := o.algo
		norm := BatchNormalizers(b.seqs(), 8, a.MaskTruncated)
		variants = append(variants, map[string]any{
			"eps_low": a.Epsilon, "eps_high": a.EpsHigh(), "clip_c": a.ClipRatioC, "beta": a.Beta,
			"kl": a.KLEstimator, "entropy_coef": a.EntropyCoef, "agg": a.LossAggMode,
			"mask_truncated": a.MaskTruncated, "tokens": norm.Tokens, "seqs": norm.Seqs, "max_len": norm.MaxLen,
		})
	}
	req := map[string]any{
		"op": "policy_loss", "hidden": rows(b.hidden, b.d), "w": rows(b.w, b.d), "targets": b.targets,
		"inv_temp": b.invTemp, "old": b.old, "ref": b.ref, "adv": b.adv, "mask": b.mask,
		"offsets": b.offsets, "truncated": b.truncated, "variants": variants,
	}
	var want []struct {
		Loss    float64     `json:"loss"`
		DHidden [][]float64 `json:"d_hidden"`
		DW      [][]float64 `json:"d_w"`
	}
	torchRef(t, req, &want)
	if len(want) != len(objs) {
		t.Fatalf("PyTorch returned %d results for %d variants", len(want), len(objs))
	}
	be := cpu.New(2)
	for i, o := range objs {
		o.tis = false
		o.name = strings.Replace(o.name, "+tis", "", 1)
		norm := BatchNormalizers(b.seqs(), 8, o.algo.MaskTruncated)
		loss, dh, dw, _ := fusedGrads(t, be, b, o, norm, 3)
		if math.Abs(loss-want[i].Loss) > 1e-4*math.Max(1, math.Abs(want[i].Loss)) {
			t.Errorf("%s: loss %v, PyTorch %v", o.name, loss, want[i].Loss)
		}
		eh, ew := maxRelDiff(dh, flat(want[i].DHidden)), maxRelDiff(dw, flat(want[i].DW))
		if eh > 1e-4 || ew > 1e-4 {
			t.Errorf("%s: gradients differ from PyTorch by %.3g (hidden) and %.3g (LM head)", o.name, eh, ew)
		}
		if testing.Verbose() {
			t.Logf("%s: loss %.7g vs %.7g, gradient differences %.2g, %.2g", o.name, loss, want[i].Loss, eh, ew)
		}
	}
}
