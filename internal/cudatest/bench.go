package cudatest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/model"
)

// DeviceSpec holds the peak numbers a measurement is compared with.
type DeviceSpec struct {
	Name         string
	BandwidthGBs float64 // HBM bandwidth, GB/s
	FP32TFLOPs   float64 // non-tensor-core fp32
	TF32TFLOPs   float64 // tensor cores, dense (what cuBLAS uses for fp32 GEMMs when allowed)
	BF16TFLOPs   float64 // tensor cores, dense
}

// H100 is the H100 SXM5 (80 GB) of NVIDIA's datasheet.
var H100 = DeviceSpec{Name: "H100 SXM", BandwidthGBs: 3350, FP32TFLOPs: 67, TF32TFLOPs: 495, BF16TFLOPs: 989}

// Qwen05B is Qwen2.5-0.5B's architecture (random weights are enough for
// timing).
func Qwen05B() model.Config {
	return model.Config{Architecture: "Qwen2ForCausalLM", ModelType: "qwen2", Vocab: 151936, Hidden: 896, Layers: 24,
		Heads: 14, KVHeads: 2, HeadDim: 64, FFN: 4864, RMSEps: 1e-6, RopeTheta: 1e6, MaxPositions: 32768,
		TieEmbeddings: true, AttnBias: true, BOS: -1, EOS: []int{151645}}
}

// BenchShape sizes the per-kernel measurements: Rows tokens of a model of
// the given widths, in sequences of SeqLen.
type BenchShape struct {
	Rows, SeqLen                                int
	Hidden, Heads, KVHeads, HeadDim, FFN, Vocab int
}

// ShapeOf is the kernel shape of a training micro-batch of rows tokens.
func ShapeOf(c model.Config, rows, seqLen int) BenchShape {
	return BenchShape{Rows: rows, SeqLen: seqLen, Hidden: c.Hidden, Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim, FFN: c.FFN, Vocab: c.Vocab}
}

// Floor is the time an operation needs at least on a device: its bytes
// over the bandwidth or its FLOPs over the peak, whichever is larger.
type Floor struct {
	Bytes, FLOPs float64
	// BF16 marks a GEMM on bf16 operands, measured against the BF16
	// tensor-core peak.
	BF16 bool
}

// Seconds is the floor on dev with fp32 arithmetic (GEMMs on TF32 tensor
// cores when matmul is true, on BF16 ones for a BF16 floor).
func (f Floor) Seconds(dev DeviceSpec, matmul bool) float64 {
	return max(f.Bytes/(dev.BandwidthGBs*1e9), f.FLOPs/(f.peak(dev, matmul)*1e12))
}

func (f Floor) peak(dev DeviceSpec, matmul bool) float64 {
	switch {
	case f.BF16:
		return dev.BF16TFLOPs
	case matmul:
		return dev.TF32TFLOPs
	}
	return dev.FP32TFLOPs
}

// BenchResult is one measured operation.
type BenchResult struct {
	Name    string
	Seconds float64 // measured per call; 0 when only the floor is known
	Floor   float64 // seconds
	Bound   string  // "memory" or "compute"
}

type benchOp struct {
	name   string
	floor  Floor
	matmul bool
	run    func()
}

// kernelOps builds every backend operation at shape s on be, with random
// inputs, and its floor. With a nil be only the floors are meaningful.
// It is one long function on purpose: the operations share their input
// buffers, and the body reads as the table of operations it returns.
func kernelOps(be kernels.Backend, s BenchShape) []benchOp {
	r := rand.New(rand.NewPCG(1, 2))
	buf := func(n int, scale float64) kernels.Buf {
		if be == nil {
			return nil
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64() * scale)
		}
		b := be.Alloc(n)
		be.Upload(b, v)
		return b
	}
	const f4 = 4.0
	n, d, ffn, V := s.Rows, s.Hidden, s.FFN, s.Vocab
	qkvW := (s.Heads + 2*s.KVHeads) * s.HeadDim
	aW := s.Heads * s.HeadDim
	batch := max(1, n/s.SeqLen)
	T := s.SeqLen
	x, w, out, rstd := buf(n*d, 1), buf(d, 1), buf(n*d, 1), buf(n, 1)
	gu, act := buf(n*2*ffn, 1), buf(n*ffn, 1)
	qkv, attn, lse := buf(batch*T*qkvW, 1), buf(batch*T*aW, 1), buf(batch*s.Heads*T, 1)
	dqkv := buf(batch*T*qkvW, 1)
	cos, sin := buf(n*s.HeadDim/2, 1), buf(n*s.HeadDim/2, 1)
	lm := buf(V*d, 0.02)
	dlm := buf(V*d, 0)
	logp, lseV, ent := buf(n, 0), buf(n, 0), buf(n, 0)
	targets := make([]int32, n)
	for i := range targets {
		targets[i] = int32(r.IntN(V))
	}
	shape := kernels.AttnShape{Batch: batch, SeqLen: T, Heads: s.Heads, KVHeads: s.KVHeads, HeadDim: s.HeadDim, Scale: float32(1 / math.Sqrt(float64(s.HeadDim)))}
	attnFLOPs := 4 * float64(batch) * float64(s.Heads) * float64(T) * float64(T) / 2 * float64(s.HeadDim)
	offsets := []int{0}
	for o := T; o <= n; o += T {
		offsets = append(offsets, o)
	}
	if offsets[len(offsets)-1] != n {
		offsets = append(offsets, n)
	}
	pl := &kernels.PolicyLossArgs{Logp: buf(n, 1), OldLogp: buf(n, 1), RefLogp: buf(n, 1), Adv: buf(n, 1), Mask: buf(n, 0.5),
		Entropy: buf(n, 1), DLogp: buf(n, 0), DEntropy: buf(n, 0), Offsets: offsets,
		P: kernels.PolicyLossParams{EpsLow: 0.2, EpsHigh: 0.28, ClipRatioC: 3, Beta: 0.04, KL: kernels.KLK3, Agg: kernels.AggTokenMean, Norm: kernels.Normalizers{Tokens: float64(n), Seqs: len(offsets) - 1, MaxLen: T}}}
	// Decoding: 64 sequences of min(T, 512) cached tokens each, one query
	// row per sequence; the floor reads every cached key and value once.
	decSeqs, ctx := 64, min(T, 512)
	kvW := s.KVHeads * s.HeadDim
	kPool, vPool := buf(decSeqs*ctx*kvW, 1), buf(decSeqs*ctx*kvW, 1)
	decQ, decOut := buf(decSeqs*qkvW, 1), buf(decSeqs*aW, 0)
	decSlots, decLens := make([][]int32, decSeqs), make([]int, decSeqs)
	for i := range decSlots {
		decLens[i] = ctx
		for j := 0; j < ctx; j++ {
			decSlots[i] = append(decSlots[i], int32(i*ctx+j))
		}
	}
	// The gate/up projection, the largest GEMM of a layer, in fp32 and
	// with bf16 operands (the activation converted per call, the uploaded
	// weight's bf16 copy cached).
	wGU := buf(2*ffn*d, 0.02)
	gemmFLOPs := 2 * float64(n) * float64(2*ffn) * float64(d)
	bf16 := func(fn func()) func() {
		return func() {
			cb := be.(*cuda.Backend)
			if err := cb.SetPrecision(cuda.PrecisionBF16); err != nil {
				panic(err)
			}
			defer cb.SetPrecision(cuda.PrecisionFP32)
			fn()
		}
	}
	gemmGU := func() { be.Gemm(false, true, n, 2*ffn, d, 1, x, d, wGU, d, 0, gu, 2*ffn) }
	np := V * d
	p, g, m, v := buf(np, 1), buf(np, 1), buf(np, 0), buf(np, 0)
	ids := targets
	return []benchOp{
		{"rmsnorm", Floor{Bytes: f4 * float64(2*n*d+d+n)}, false, func() { be.RMSNorm(out, rstd, x, w, n, d, 1e-6) }},
		{"rmsnorm_backward", Floor{Bytes: f4 * float64(4*n*d+n+2*d)}, false, func() { be.RMSNormBackward(out, w, x, x, w, rstd, n, d) }},
		{"rope", Floor{Bytes: f4 * float64(2*n*(s.Heads+s.KVHeads)*s.HeadDim+n*s.HeadDim)}, false, func() { be.RoPE(qkv, qkvW, cos, sin, n, s.Heads+s.KVHeads, s.HeadDim, false) }},
		{"swiglu", Floor{Bytes: f4 * float64(3*n*ffn)}, false, func() { be.SwiGLU(act, gu, n, ffn) }},
		{"swiglu_backward", Floor{Bytes: f4 * float64(5*n*ffn)}, false, func() { be.SwiGLUBackward(gu, act, gu, n, ffn) }},
		{"embed", Floor{Bytes: f4 * float64(2*n*d)}, false, func() { be.Embed(out, lm, ids, d) }},
		{"embed_backward", Floor{Bytes: f4 * float64(3*n*d)}, false, func() { be.EmbedBackward(dlm, out, ids, d) }},
		{"attention", Floor{Bytes: f4 * float64(batch*T*(qkvW+aW)), FLOPs: attnFLOPs}, false, func() { be.Attention(attn, lse, qkv, shape) }},
		{"attention_backward", Floor{Bytes: f4 * float64(batch*T*(2*qkvW+2*aW)), FLOPs: 2.5 * attnFLOPs}, false, func() { be.AttentionBackward(dqkv, attn, qkv, attn, lse, shape) }},
		{"attention_decode", Floor{Bytes: f4 * float64(2*decSeqs*ctx*kvW+decSeqs*(qkvW+aW))}, false, func() {
			be.AttentionDecode(decOut, decQ, qkvW, kPool, vPool, decSlots, decLens, s.Heads, s.KVHeads, s.HeadDim, shape.Scale)
		}},
		{"gemm_gate_up", Floor{Bytes: f4 * float64(n*d+2*ffn*d+n*2*ffn), FLOPs: gemmFLOPs}, true, gemmGU},
		{"gemm_gate_up_bf16", Floor{Bytes: 2*float64(n*d+2*ffn*d) + f4*float64(n*2*ffn), FLOPs: gemmFLOPs, BF16: true}, true, bf16(gemmGU)},
		{"token_logprobs", Floor{Bytes: f4 * float64(V*d+n*d+2*n*V), FLOPs: 2 * float64(n) * float64(d) * float64(V)}, true, func() {
			be.TokenLogProbs(logp, ent, lseV, x, lm, targets, n, d, V, 1)
		}},
		{"token_logprobs_backward", Floor{Bytes: f4 * float64(3*V*d+2*n*d+4*n*V), FLOPs: 6 * float64(n) * float64(d) * float64(V)}, true, func() {
			be.TokenLogProbsBackward(out, dlm, logp, ent, x, lm, lseV, ent, targets, n, d, V, 1)
		}},
		{"policy_loss", Floor{Bytes: f4 * float64(9*n)}, false, func() { be.PolicyLoss(pl) }},
		{"adamw", Floor{Bytes: f4 * float64(7*np)}, false, func() {
			be.AdamW(p, g, m, v, np, kernels.AdamWParams{LR: 1e-6, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: 1})
		}},
	}
}

// timeIt runs fn reps times after one warm-up call and returns seconds per
// call, waiting for the device before and after.
func timeIt(drv cuda.Driver, reps int, fn func()) (float64, error) {
	fn()
	if err := drv.Sync(); err != nil {
		return 0, err
	}
	t0 := time.Now()
	for i := 0; i < reps; i++ {
		fn()
	}
	if err := drv.Sync(); err != nil {
		return 0, err
	}
	return time.Since(t0).Seconds() / float64(reps), nil
}

// BenchKernels times every kernel at shape s on drv (reps calls each) and
// compares it with its floor on dev; reps = 0 reports floors only (drv may
// then be nil).
func BenchKernels(drv cuda.Driver, s BenchShape, dev DeviceSpec, reps int) ([]BenchResult, error) {
	var be kernels.Backend
	if reps > 0 {
		be = cuda.New(drv)
	}
	var res []BenchResult
	for _, op := range kernelOps(be, s) {
		r := BenchResult{Name: op.name, Floor: op.floor.Seconds(dev, op.matmul), Bound: "memory"}
		if op.floor.FLOPs/(op.floor.peak(dev, op.matmul)*1e12) > op.floor.Bytes/(dev.BandwidthGBs*1e9) {
			r.Bound = "compute"
		}
		if reps > 0 && op.floor.BF16 {
			// A GPU older than compute capability 8.0 refuses bf16.
			if err := be.(*cuda.Backend).SetPrecision(cuda.PrecisionBF16); err != nil {
				continue
			}
			_ = be.(*cuda.Backend).SetPrecision(cuda.PrecisionFP32)
		}
		if reps > 0 {
			sec, err := timeIt(drv, reps, op.run)
			if err != nil {
				return res, fmt.Errorf("bench %s: %w", op.name, err)
			}
			r.Seconds = sec
		}
		res = append(res, r)
	}
	return res, nil
}

// WriteResults prints a table of results.
func WriteResults(w io.Writer, title string, res []BenchResult) {
	fmt.Fprintf(w, "%s\n%-26s %12s %12s %8s %s\n", title, "kernel", "time", "floor", "ratio", "bound")
	for _, r := range res {
		ratio, t := "-", "-"
		if r.Seconds > 0 {
			ratio = fmt.Sprintf("%.2f", r.Seconds/r.Floor)
			t = fmt.Sprintf("%.1f µs", r.Seconds*1e6)
		}
		fmt.Fprintf(w, "%-26s %12s %9.2f µs %8s %s\n", r.Name, t, r.Floor*1e6, ratio, r.Bound)
	}
}

// ModelBench is the end-to-end measurement of a model on a backend.
type ModelBench struct {
	Precision      cuda.Precision
	Params         int
	TrainTokens    int
	StepSeconds    float64 // forward + log-probs + backward of one micro-batch
	MFU            float64 // 6·N·tokens / step time / the precision's peak (TF32 for fp32, BF16 for bf16)
	DecodeBatch    int
	DecodeTokensPS float64
	DecodeFloorTPS float64 // bandwidth-bound tokens/s: weights + KV read once per step
}

// BenchModel times a training micro-batch (batch×seqLen tokens) and
// batched decoding (decodeBatch sequences, decodeSteps steps after a
// prompt of promptLen) of a randomly initialised model, with GEMMs in
// precision prec.
func BenchModel(drv cuda.Driver, cfg model.Config, dev DeviceSpec, prec cuda.Precision, batch, seqLen, decodeBatch, promptLen, decodeSteps int) (ModelBench, error) {
	be := cuda.New(drv)
	if err := be.SetPrecision(prec); err != nil {
		return ModelBench{}, err
	}
	m, err := model.New(cfg, be)
	if err != nil {
		return ModelBench{}, err
	}
	m.InitRandom(1, 0.02)
	m.EnableGrads()
	r := rand.New(rand.NewPCG(3, 4))
	b := model.Batch{B: batch, T: seqLen, IDs: make([]int32, batch*seqLen)}
	for i := range b.IDs {
		b.IDs[i] = int32(r.IntN(cfg.Vocab))
	}
	targets := model.NextTokenTargets(b)
	dl := make([]float32, len(targets))
	for i := range dl {
		dl[i] = 1 / float32(len(dl))
	}
	ws := m.NewWorkspace()
	var ferr error
	step := func() {
		if _, err := m.Forward(ws, b); err != nil {
			ferr = err
			return
		}
		g, err := m.LossGrad(ws, model.Output{Targets: targets, InvTemp: 1}, m.KnownGrad(dl, nil))
		if err != nil {
			ferr = err
			return
		}
		m.Backward(ws, g.DFinal)
	}
	sec, err := timeIt(drv, 3, step)
	if err == nil {
		err = ferr
	}
	if err != nil {
		return ModelBench{}, fmt.Errorf("train step: %w", err)
	}
	mb := ModelBench{Precision: be.Precision(), Params: m.NumParams(), TrainTokens: batch * seqLen, StepSeconds: sec}
	peak, weightBytes := dev.TF32TFLOPs, 4.0
	if mb.Precision == cuda.PrecisionBF16 {
		// Decoding reads the cached bf16 copies of the weights.
		peak, weightBytes = dev.BF16TFLOPs, 2
	}
	mb.MFU = 6 * float64(mb.Params) * float64(mb.TrainTokens) / sec / (peak * 1e12)

	kvPerTok := cfg.KVBytesPerToken()
	cache, err := m.NewKVCache(int64(decodeBatch*(promptLen+decodeSteps+16)*kvPerTok)*2, 16)
	if err != nil {
		return mb, fmt.Errorf("kv cache: %w", err)
	}
	seqs := make([]*model.Seq, decodeBatch)
	prompts := make([][]int32, decodeBatch)
	for i := range seqs {
		seqs[i] = &model.Seq{}
		prompts[i] = b.IDs[:promptLen]
	}
	if _, err := m.Prefill(m.NewWorkspace(), cache, seqs, prompts); err != nil {
		return mb, fmt.Errorf("prefill: %w", err)
	}
	next := make([]int32, decodeBatch)
	if err := drv.Sync(); err != nil {
		return mb, err
	}
	t0 := time.Now()
	for s := 0; s < decodeSteps; s++ {
		if _, err := m.Decode(cache, seqs, next); err != nil {
			return mb, fmt.Errorf("decode: %w", err)
		}
	}
	if err := drv.Sync(); err != nil {
		return mb, err
	}
	mb.DecodeBatch = decodeBatch
	mb.DecodeTokensPS = float64(decodeBatch*decodeSteps) / time.Since(t0).Seconds()
	avgCtx := float64(promptLen) + float64(decodeSteps)/2
	stepBytes := weightBytes*float64(mb.Params) + float64(decodeBatch)*avgCtx*float64(kvPerTok)
	mb.DecodeFloorTPS = float64(decodeBatch) / (stepBytes / (dev.BandwidthGBs * 1e9))
	return mb, nil
}

// WriteModelBench prints a model measurement.
func WriteModelBench(w io.Writer, name string, mb ModelBench) {
	peak := "TF32"
	if mb.Precision == cuda.PrecisionBF16 {
		peak = "BF16"
	}
	fmt.Fprintf(w, "%s: %d parameters, %s GEMMs\n", name, mb.Params, mb.Precision)
	fmt.Fprintf(w, "  train micro-batch of %d tokens: %.1f ms, MFU %.1f%% of the %s peak\n", mb.TrainTokens, mb.StepSeconds*1e3, 100*mb.MFU, peak)
	fmt.Fprintf(w, "  decode, batch %d: %.0f tokens/s = %.1f%% of the bandwidth-bound %.0f tokens/s\n",
		mb.DecodeBatch, mb.DecodeTokensPS, 100*mb.DecodeTokensPS/mb.DecodeFloorTPS, mb.DecodeFloorTPS)
}

// BenchMetric is one figure of bench-gpu.json. Better is "lower" (times,
// memory) or "higher" (MFU, tokens/s): scripts/bench_compare fails a run
// whose figure is worse than the baseline's by more than 10%.
type BenchMetric struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Better string  `json:"better"`
	// Floor is the figure's bound on the FloorsFor device (seconds for a
	// kernel, tokens/s for decoding), when it has one.
	Floor float64 `json:"floor,omitempty"`
}

// BenchReport is make bench-gpu's output, bench-gpu.json.
type BenchReport struct {
	Device    string        `json:"device"`
	FloorsFor string        `json:"floors_for"`
	Metrics   []BenchMetric `json:"metrics"`
}

// AddKernels adds each timed kernel's seconds per call.
func (r *BenchReport) AddKernels(res []BenchResult) {
	for _, k := range res {
		if k.Seconds > 0 {
			r.Metrics = append(r.Metrics, BenchMetric{Name: "kernel/" + k.Name + "/seconds", Value: k.Seconds, Better: "lower", Floor: k.Floor})
		}
	}
}

// AddModel adds a model measurement: step time, MFU and decode tokens/s.
func (r *BenchReport) AddModel(mb ModelBench) {
	p := "model/" + string(mb.Precision) + "/"
	r.Metrics = append(r.Metrics,
		BenchMetric{Name: p + "train_step_seconds", Value: mb.StepSeconds, Better: "lower"},
		BenchMetric{Name: p + "mfu", Value: mb.MFU, Better: "higher"},
		BenchMetric{Name: p + "decode_tokens_per_s", Value: mb.DecodeTokensPS, Better: "higher", Floor: mb.DecodeFloorTPS})
}

// WriteJSON writes the report, indented.
func (r *BenchReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
