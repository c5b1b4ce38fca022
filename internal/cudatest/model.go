package cudatest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/model"
)

// modelTol bounds the relative difference between the backends after a
// whole model (several layers of float32 arithmetic in different orders).
const modelTol = 1e-4

// ModelConfigs are tiny models covering each architecture family's
// options: Llama 3 RoPE scaling, Qwen2 attention biases with tied
// embeddings and one KV head, Qwen3 per-head q/k norms.
func ModelConfigs() map[string]model.Config {
	base := model.Config{Vocab: 61, Hidden: 32, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8, FFN: 48,
		RMSEps: 1e-5, RopeTheta: 10000, MaxPositions: 64, BOS: 1, EOS: []int{2}}
	llama := base
	llama.Architecture, llama.ModelType = "LlamaForCausalLM", "llama"
	llama.RopeScaling = &model.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 16}
	qwen2 := base
	qwen2.Architecture, qwen2.ModelType = "Qwen2ForCausalLM", "qwen2"
	qwen2.AttnBias, qwen2.TieEmbeddings, qwen2.KVHeads = true, true, 1
	qwen3 := base
	qwen3.Architecture, qwen3.ModelType = "Qwen3ForCausalLM", "qwen3"
	qwen3.QKNorm, qwen3.HeadDim, qwen3.TieEmbeddings = true, 12, true
	return map[string]model.Config{"llama": llama, "qwen2": qwen2, "qwen3": qwen3}
}

// Model runs, for each of ModelConfigs, the same model on the CPU backend
// and on the CUDA backend over a fresh driver: forward log-probs and
// entropy, gradients, `steps` GRPO steps (forward, TokenLogProbs,
// PolicyLoss, backward, AdamW) comparing the losses, and KV-cached decoding
// comparing the logits.
func Model(t *testing.T, newDriver func() (cuda.Driver, error), steps int) {
	for name, cfg := range ModelConfigs() {
		t.Run(name, func(t *testing.T) {
			drv, err := newDriver()
			if err != nil {
				t.Fatal(err)
			}
			defer drv.Close()
			params := initParams(t, cfg, 3)
			ref := runGRPO(t, cfg, cpu.New(2), params, steps)
			got := runGRPO(t, cfg, cuda.New(drv), params, steps)
			for k := range ref.logp {
				if e := relDiff(got.logp[k], ref.logp[k]); !(e <= modelTol) {
					t.Errorf("step %d: log-probs differ by %.3g > %.0g", k+1, e, modelTol)
				}
				if e := relDiff(got.entropy[k], ref.entropy[k]); !(e <= modelTol) {
					t.Errorf("step %d: entropies differ by %.3g > %.0g", k+1, e, modelTol)
				}
				if d := math.Abs(got.loss[k] - ref.loss[k]); !(d <= modelTol*max(1e-3, math.Abs(ref.loss[k]))) {
					t.Errorf("step %d: loss %.9g, CPU %.9g", k+1, got.loss[k], ref.loss[k])
				}
			}
			if e := relDiff(got.grads, ref.grads); !(e <= modelTol) {
				t.Errorf("first-step gradients differ by %.3g > %.0g", e, modelTol)
			}
			t.Logf("losses cpu %.6g cuda %.6g", ref.loss, got.loss)
			refLogits := runDecode(t, cfg, cpu.New(2), params)
			gotLogits := runDecode(t, cfg, cuda.New(drv), params)
			for k := range refLogits {
				if e := relDiff(gotLogits[k], refLogits[k]); !(e <= modelTol) {
					t.Errorf("decode step %d: logits differ by %.3g > %.0g", k, e, modelTol)
				}
			}
		})
	}
}

// initParams draws a model's parameters on the CPU.
func initParams(t *testing.T, cfg model.Config, seed uint64) []float32 {
	m, err := model.New(cfg, cpu.New(1))
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(seed, 0.2)
	host := make([]float32, m.NumParams())
	m.Backend().Download(host, m.Params)
	r := rand.New(rand.NewPCG(seed, 9))
	for i := range host {
		host[i] += float32(r.NormFloat64() * 0.05) // norms and biases off their trivial values
	}
	return host
}

type grpoTrace struct {
	loss          []float64
	logp, entropy [][]float32
	grads         []float32
}

// runGRPO trains a copy of the model for a few GRPO-style steps on one
// fixed batch: two groups of completions with ±1 advantages per sequence,
// the first step's log-probs (shifted) standing in for the rollout policy.
func runGRPO(t *testing.T, cfg model.Config, be kernels.Backend, params []float32, steps int) grpoTrace {
	return runGRPOWith(t, cfg, be, params, nil, steps)
}

// loraSetup is an adapter to attach: its configuration and parameters.
type loraSetup struct {
	cfg    model.LoRAConfig
	params []float32
}

// newModelWith builds the model with params on be and, when lora is not
// nil, attaches its adapter (returned; nil otherwise).
func newModelWith(t *testing.T, cfg model.Config, be kernels.Backend, params []float32, lora *loraSetup) (*model.Model, *model.Adapter) {
	t.Helper()
	m, err := model.New(cfg, be)
	if err != nil {
		t.Fatal(err)
	}
	be.Upload(m.Params, params)
	if lora == nil {
		return m, nil
	}
	a, err := model.NewAdapter(cfg, lora.cfg, be)
	if err != nil {
		t.Fatal(err)
	}
	be.Upload(a.Params, lora.params)
	if err := m.Attach(a); err != nil {
		t.Fatal(err)
	}
	return m, a
}

// grpoBatch is runGRPOWith's fixed batch: four sequences of random tokens
// (lengths 9, 6, 1, 8), their next-token targets, a loss mask past the
// first position, alternating advantages 1 and −0.7, and the normalisers.
func grpoBatch(cfg model.Config) (batch model.Batch, targets []int32, mask, adv []float32, offsets []int, tokens float64, seqs int) {
	r := rand.New(rand.NewPCG(17, 4))
	batch = model.Batch{B: 4, T: 9, Lens: []int{9, 6, 1, 8}}
	batch.IDs = make([]int32, batch.B*batch.T)
	for i := range batch.IDs {
		batch.IDs[i] = int32(r.IntN(cfg.Vocab))
	}
	targets = model.NextTokenTargets(batch)
	n := len(targets)
	mask, adv = make([]float32, n), make([]float32, n)
	offsets = make([]int, batch.B+1)
	for b := 0; b < batch.B; b++ {
		offsets[b+1] = (b + 1) * batch.T
		a := float32(1)
		if b%2 == 1 {
			a = -0.7
		}
		for j := 0; j < batch.T; j++ {
			if targets[b*batch.T+j] >= 0 && j >= 1 { // the first position plays the prompt
				mask[b*batch.T+j] = 1
				adv[b*batch.T+j] = a
			}
		}
	}
	for b := 0; b < batch.B; b++ {
		s := 0.0
		for _, v := range mask[offsets[b]:offsets[b+1]] {
			s += float64(v)
		}
		tokens += s
		if s > 0 {
			seqs++
		}
	}
	return batch, targets, mask, adv, offsets, tokens, seqs
}

// runGRPOWith is runGRPO, training only an attached adapter when lora is
// not nil (the base weights frozen, as a LoRA run does).
func runGRPOWith(t *testing.T, cfg model.Config, be kernels.Backend, params []float32, lora *loraSetup, steps int) grpoTrace {
	m, a := newModelWith(t, cfg, be, params, lora)
	// The trained parameters and their gradients: the model's, or the
	// adapter's.
	train := func() (kernels.Buf, kernels.Buf, int) { return m.Params, m.Grads, m.NumParams() }
	zero := m.ZeroGrads
	if a != nil {
		a.EnableGrads()
		train = func() (kernels.Buf, kernels.Buf, int) { return a.Params, a.Grads, a.NumParams() }
		zero = a.ZeroGrads
	} else {
		m.EnableGrads()
	}
	batch, targets, mask, adv, offsets, tokens, seqs := grpoBatch(cfg)
	n := len(targets)
	up := func(v []float32) kernels.Buf { x := be.Alloc(len(v)); be.Upload(x, v); return x }
	_, _, nTrain := train()
	mBuf, vBuf := be.Alloc(nTrain), be.Alloc(nTrain)
	ws := m.NewWorkspace()
	var tr grpoTrace
	var old []float32
	for step := 1; step <= steps; step++ {
		if _, err := m.Forward(ws, batch); err != nil {
			t.Fatal(err)
		}
		out := model.Output{Targets: targets, InvTemp: 1 / 0.9, Entropy: true, EntropyGrad: true}
		logp, ent, err := m.LogProbs(ws, out)
		if err != nil {
			t.Fatal(err)
		}
		tr.logp = append(tr.logp, logp)
		tr.entropy = append(tr.entropy, ent)
		if old == nil {
			old = make([]float32, n)
			for i, v := range logp {
				old[i] = v + float32(0.05*math.Sin(float64(i)))
			}
		}
		args := &kernels.PolicyLossArgs{
			Logp: up(logp), OldLogp: up(old), RefLogp: up(old), Adv: up(adv), Mask: up(mask), Entropy: up(ent),
			DLogp: be.Alloc(n), DEntropy: be.Alloc(n), Offsets: offsets,
			P: kernels.PolicyLossParams{EpsLow: 0.2, EpsHigh: 0.28, ClipRatioC: 3, Beta: 0.04, KL: kernels.KLK3,
				EntropyCoef: 0.01, Agg: kernels.AggTokenMean, Norm: kernels.Normalizers{Tokens: tokens, Seqs: seqs, MaxLen: batch.T}},
		}
		st := be.PolicyLoss(args)
		tr.loss = append(tr.loss, st.Loss)
		dl, de := make([]float32, n), make([]float32, n)
		be.Download(dl, args.DLogp)
		be.Download(de, args.DEntropy)
		zero()
		g, err := m.LossGrad(ws, out, m.KnownGrad(dl, de))
		if err != nil {
			t.Fatal(err)
		}
		m.Backward(ws, g.DFinal)
		p, gr, np := train()
		if step == 1 {
			tr.grads = make([]float32, np)
			be.Download(tr.grads, gr)
		}
		be.AdamW(p, gr, mBuf, vBuf, np, kernels.AdamWParams{LR: 3e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.01, Step: step})
		for _, b := range []kernels.Buf{args.Logp, args.OldLogp, args.RefLogp, args.Adv, args.Mask, args.Entropy, args.DLogp, args.DEntropy} {
			be.Free(b)
		}
	}
	return tr
}

// runDecode prefills two prompts, forks one, and decodes a few greedy
// steps, returning each step's logits.
func runDecode(t *testing.T, cfg model.Config, be kernels.Backend, params []float32) [][]float32 {
	return runDecodeWith(t, cfg, be, params, nil)
}

// runDecodeWith is runDecode through an attached adapter when lora is not
// nil.
func runDecodeWith(t *testing.T, cfg model.Config, be kernels.Backend, params []float32, lora *loraSetup) [][]float32 {
	m, _ := newModelWith(t, cfg, be, params, lora)
	cache, err := m.NewKVCache(1<<20, 4)
	if err != nil {
		t.Fatal(err)
	}
	seqs := []*model.Seq{{}, {}}
	logits, err := m.Prefill(m.NewWorkspace(), cache, seqs, [][]int32{{1, 5, 9, 13, 17}, {1, 7}})
	if err != nil {
		t.Fatal(fmt.Errorf("prefill: %w", err))
	}
	out := [][]float32{logits}
	seqs = append(seqs, cache.Fork(seqs[0]))
	argmax := func(row []float32) int32 {
		best := 0
		for i, v := range row {
			if v > row[best] {
				best = i
			}
		}
		return int32(best)
	}
	next := []int32{argmax(logits[:cfg.Vocab]), argmax(logits[cfg.Vocab:]), 3}
	for step := 0; step < 6; step++ {
		logits, err := m.Decode(cache, seqs, next)
		if err != nil {
			t.Fatal(fmt.Errorf("decode step %d: %w", step, err))
		}
		out = append(out, logits)
		for i := range next {
			next[i] = argmax(logits[i*cfg.Vocab : (i+1)*cfg.Vocab])
		}
	}
	return out
}

// bf16ModelTol bounds the relative difference (max|Δ| / max|ref|) between
// a tiny model run with bf16 GEMM operands and the fp32 CPU run. Rounding
// both operands to bf16 (8 significant bits, unit roundoff 2⁻⁹) makes each
// product off by up to 2⁻⁸ relative; summed over k terms whose signs
// cancel, a GEMM output can be off by about 2⁻⁸·√k relative to its own
// size. The tiny models' longest reduction is k = 2·FFN = 96 (the
// backward product through the gate/up projection), so 2⁻⁸·√96 ≈ 0.038,
// rounded to 4e-2. Measured worst cases over the three models: log-probs
// 9e-3, entropies 1.3e-2, losses 5e-3, first-step gradients 2.5e-2 (the
// gradients go through twice as many GEMMs and sum tokens with advantages
// of opposite signs). An operand read from stale or wrong memory gives
// errors of order 1.
const bf16ModelTol = 4e-2

// tf32ModelTol is bf16ModelTol's counterpart for TF32 GEMMs at the first
// step: TF32 keeps 10 mantissa bits (unit roundoff 2⁻¹¹, 4× finer than
// bf16), so 2⁻¹⁰·√96 ≈ 0.0096, rounded to 1e-2; measured ≤ 3.5e-3.
const tf32ModelTol = 1e-2

// ModelBF16 runs each of ModelConfigs on the CPU backend in fp32 and on the
// CUDA backend with bf16 GEMM operands, comparing forward log-probs and
// entropies, the losses of `steps` GRPO steps, and the first-step
// gradients within bf16ModelTol.
func ModelBF16(t *testing.T, newDriver func() (cuda.Driver, error), steps int) {
	modelReduced(t, newDriver, steps, "bf16", bf16ModelTol)
}

// ModelTF32 is ModelBF16 with fp32 GEMMs in TF32 math, within
// tf32ModelTol; it skips drivers without a TF32 mode.
func ModelTF32(t *testing.T, newDriver func() (cuda.Driver, error), steps int) {
	modelReduced(t, newDriver, steps, "tf32", tf32ModelTol)
}

func modelReduced(t *testing.T, newDriver func() (cuda.Driver, error), steps int, mode string, tol float64) {
	for name, cfg := range ModelConfigs() {
		t.Run(name, func(t *testing.T) {
			drv, err := newDriver()
			if err != nil {
				t.Fatal(err)
			}
			defer drv.Close()
			params := initParams(t, cfg, 3)
			ref := runGRPO(t, cfg, cpu.New(2), params, steps)
			be := cuda.New(drv)
			if mode == "bf16" {
				if err := be.SetPrecision(cuda.PrecisionBF16); err != nil {
					t.Skip(err)
				}
			} else {
				if err := be.SetTF32(true); err != nil {
					t.Skip(err)
				}
				defer be.SetTF32(false)
			}
			got := runGRPO(t, cfg, be, params, steps)
			// The first step compares the GEMMs' rounding alone, within tol;
			// later steps add the optimizer's sensitivity (AdamW divides by
			// √v, so rounding in small gradient entries changes whole
			// updates), for which bf16ModelTol holds whatever the format:
			// TF32 measured 7.4e-3 on a step-4 loss, bf16 5e-3.
			var worst [4]float64
			for k := range ref.logp {
				bound := bf16ModelTol / tol
				if k == 0 {
					bound = 1
				}
				worst[0] = max(worst[0], relDiff(got.logp[k], ref.logp[k])/bound)
				worst[1] = max(worst[1], relDiff(got.entropy[k], ref.entropy[k])/bound)
				worst[2] = max(worst[2], math.Abs(got.loss[k]-ref.loss[k])/max(1e-3, math.Abs(ref.loss[k]))/bound)
			}
			worst[3] = relDiff(got.grads, ref.grads)
			for i, what := range []string{"log-probs", "entropies", "losses", "first-step gradients"} {
				if !(worst[i] <= tol) {
					t.Errorf("%s differ by %.3g of their tolerance (%.0g at step 1, %.0g after)", what, worst[i]/tol, tol, bf16ModelTol)
				}
			}
			hits, converts, _ := be.BF16CacheStats()
			t.Logf("%s vs fp32 CPU, relative to the step-1 tolerance %.0g: log-probs %.3g, entropies %.3g, losses %.3g, gradients %.3g; bf16 operands: %d cached, %d converted",
				mode, tol, worst[0], worst[1], worst[2], worst[3], hits, converts)
			if mode == "bf16" && hits == 0 {
				t.Error("no GEMM used a cached bf16 copy of the weights")
			}
		})
	}
}
