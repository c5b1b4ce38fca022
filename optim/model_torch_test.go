package optim

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/model/safetensors"
)

// TestModelGRPOMatchesTorch trains nothing but computes one GRPO loss on a
// tiny two-layer Llama (Go forward, fused log-probs, then the training
// path: the one-pass output layer with PolicyLoss per chunk and the
// hand-written model backward) and compares the loss and every parameter
// gradient with PyTorch autograd on the same weights
// (scripts/torch_ref.py's decoder): relative error ≤ 1e-4.
func TestModelGRPOMatchesTorch(t *testing.T) {
	t.Parallel() // mostly waiting for the Python interpreter
	cfg := model.Config{Architecture: "LlamaForCausalLM", ModelType: "llama", Vocab: 53, Hidden: 32, Layers: 2,
		Heads: 4, KVHeads: 2, HeadDim: 8, FFN: 48, RMSEps: 1e-5, RopeTheta: 10000, MaxPositions: 64, BOS: 1, EOS: []int{2}}
	be := cpu.New(2)
	m, err := model.New(cfg, be)
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(3, 0.2)
	dir := filepath.Join(t.TempDir(), "m")
	if err := m.Save(dir, safetensors.F32); err != nil {
		t.Fatal(err)
	}

	// Two prompts × two completions; 3 prompt tokens, right-padded rows.
	r := rand.New(rand.NewPCG(21, 22))
	const B, T, promptLen = 4, 12, 3
	lens := []int{12, 8, 10, 6}
	batch := model.Batch{B: B, T: T, Lens: lens}
	ids := make([][]int32, B)
	for i := range ids {
		ids[i] = make([]int32, T)
		for j := range lens[i] {
			ids[i][j] = int32(3 + r.IntN(cfg.Vocab-3))
		}
		batch.IDs = append(batch.IDs, ids[i]...)
	}
	targets := model.NextTokenTargets(batch)
	mask := make([]float32, B*T)
	offsets := []int{0}
	seqs := make([]Sequence, B)
	for i := range B {
		for j := range T {
			if j+1 >= promptLen && j+1 < lens[i] {
				mask[i*T+j] = 1
				seqs[i].Tokens++
			}
		}
		offsets = append(offsets, (i+1)*T)
	}
	seqs[3].Truncated = true

	ws := m.NewWorkspace()
	if _, err := m.Forward(ws, batch); err != nil {
		t.Fatal(err)
	}
	const invTemp = 1 / 0.9
	logp, _, err := m.LogProbs(ws, model.Output{Targets: targets, InvTemp: invTemp})
	if err != nil {
		t.Fatal(err)
	}

	adv64, _, err := Advantages(DefaultAlgorithm(), [][]float64{{1, 0, 0.5, 1}}, nil, []int{0, 0, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	adv := BroadcastTokens(adv64, offsets, B*T)
	old, ref := make([]float32, B*T), make([]float32, B*T)
	for i := range old {
		lr := 0.1 * (r.Float64() - 0.5) // ratios inside the clip range
		old[i] = logp[i] - float32(lr)
		ref[i] = logp[i] + float32(0.3*r.NormFloat64())
	}

	variants := []Algorithm{DefaultAlgorithm(), DefaultAlgorithm()}
	variants[0].Beta, variants[0].EntropyCoef = 0.04, 0.01 // GRPO with KL (k3) and entropy
	variants[1].LossAggMode, variants[1].EpsilonHigh, variants[1].MaskTruncated = "seq-mean-token-sum-norm", 0.28, true
	truncated := []bool{false, false, false, true}
	var reqVariants []map[string]any
	for _, a := range variants {
		norm := BatchNormalizers(seqs, T-promptLen, a.MaskTruncated)
		reqVariants = append(reqVariants, map[string]any{
			"eps_low": a.Epsilon, "eps_high": a.EpsHigh(), "clip_c": a.ClipRatioC, "beta": a.Beta,
			"kl": a.KLEstimator, "entropy_coef": a.EntropyCoef, "agg": a.LossAggMode,
			"mask_truncated": a.MaskTruncated, "tokens": norm.Tokens, "seqs": norm.Seqs, "max_len": norm.MaxLen,
		})
	}
	var want []struct {
		Loss  float64              `json:"loss"`
		Grads map[string][]float64 `json:"grads"`
	}
	torchRef(t, map[string]any{
		"op": "model_policy_loss", "model": dir, "ids": ids, "lens": lens, "inv_temp": invTemp,
		"old": old, "ref": ref, "adv": adv, "mask": mask, "offsets": offsets, "truncated": truncated,
		"variants": reqVariants,
	}, &want)
	if len(want) != len(variants) {
		t.Fatalf("PyTorch returned %d results for %d variants", len(want), len(variants))
	}

	for vi, a := range variants {
		p, err := a.PolicyParams(BatchNormalizers(seqs, T-promptLen, a.MaskTruncated))
		if err != nil {
			t.Fatal(err)
		}
		loss := NewPolicyLoss(be, kernels.PolicyLossArgs{
			OldLogp: cpu.F32(old), RefLogp: cpu.F32(ref), Adv: cpu.F32(adv), Mask: cpu.F32(mask),
			Offsets: offsets, Truncated: truncated, P: p,
		})
		m.EnableGrads()
		m.ZeroGrads()
		out := model.Output{Targets: targets, InvTemp: invTemp, Entropy: true, EntropyGrad: a.EntropyCoef != 0}
		g, err := m.LossGrad(ws, out, loss)
		if err != nil || !g.Complete {
			t.Fatalf("variant %d: %v (complete %v)", vi, err, g.Complete)
		}
		m.Backward(ws, g.DFinal)
		st := loss.Stats()

		if math.Abs(st.Loss-want[vi].Loss) > 1e-4*math.Max(1e-3, math.Abs(want[vi].Loss)) {
			t.Errorf("variant %d: loss %v, PyTorch %v", vi, st.Loss, want[vi].Loss)
		}
		var worst float64
		var worstName string
		for _, g := range m.HostTensors(true) {
			w, ok := want[vi].Grads[g.Name]
			if !ok {
				t.Fatalf("PyTorch has no gradient for %s", g.Name)
			}
			if e := maxRelDiff(g.Data, w); e > worst {
				worst, worstName = e, g.Name
			}
		}
		if worst > 1e-4 {
			t.Errorf("variant %d: gradient of %s differs from PyTorch by %.3g (relative)", vi, worstName, worst)
		}
		if testing.Verbose() {
			t.Logf("variant %d: loss %.7g vs %.7g; worst gradient %s %.2g", vi, st.Loss, want[vi].Loss, worstName, worst)
		}
	}
}
