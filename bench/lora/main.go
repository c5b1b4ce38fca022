// Command lora measures LoRA against full fine-tuning on one model shape:
//
//   - train: one training step (forward, next-token cross-entropy through
//     the fused log-prob kernel, backward, AdamW) with every weight trained
//     (-mode full) or a LoRA adapter on all seven projections (-mode lora,
//     base frozen): median step time, peak RSS, and the bytes of every
//     tensor the step holds, with what the same run would hold on a GPU
//     in bf16 mixed precision (the CUDA backend's precision bf16);
//   - decode (-decode): KV-cached decoding through the adapter unmerged,
//     against decoding from a merged copy of the weights (W + s·B·A), and
//     the time of that merge, which a merged sampler repeats after every
//     update.
//
// It prints one JSON line. Run one -mode per process: peak RSS is the
// process's. scripts/bench_lora.sh runs the comparison.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/optim"
)

func main() {
	modelDir := flag.String("model", "", "model directory (rltrain model init); empty builds one from the shape flags")
	hidden := flag.Int("hidden", 512, "hidden size")
	layers := flag.Int("layers", 8, "layers")
	heads := flag.Int("heads", 8, "attention heads")
	kvHeads := flag.Int("kv-heads", 4, "key/value heads")
	headDim := flag.Int("head-dim", 64, "head dimension")
	ffn := flag.Int("ffn", 1536, "FFN size")
	vocab := flag.Int("vocab", 32000, "vocabulary size")
	mode := flag.String("mode", "lora", "full or lora")
	r := flag.Int("r", 16, "LoRA rank")
	alpha := flag.Float64("alpha", 32, "LoRA alpha")
	batch := flag.Int("batch", 8, "sequences per training step")
	seq := flag.Int("seq", 256, "tokens per sequence")
	steps := flag.Int("steps", 5, "timed steps")
	warmup := flag.Int("warmup", 1, "untimed steps")
	threads := flag.Int("threads", 0, "threads (0: one per core)")
	decode := flag.Bool("decode", false, "measure decoding (unmerged adapter against merged weights) instead of training")
	rows := flag.Int("rows", 64, "sequences decoded together (-decode)")
	prompt := flag.Int("prompt", 32, "prompt tokens (-decode)")
	newTok := flag.Int("new", 64, "tokens decoded per sequence (-decode)")
	flag.Parse()

	be := cpu.New(*threads)
	var m *model.Model
	var err error
	if *modelDir != "" {
		m, err = model.Load(*modelDir, be)
	} else {
		cfg := model.Config{Architecture: "LlamaForCausalLM", ModelType: "llama", Vocab: *vocab, Hidden: *hidden,
			Layers: *layers, Heads: *heads, KVHeads: *kvHeads, HeadDim: *headDim, FFN: *ffn, RMSEps: 1e-5,
			RopeTheta: 10000, BOS: -1}
		if m, err = model.New(cfg, be); err == nil {
			m.InitRandom(1, 0.02)
		}
	}
	check(err)
	lc := model.LoRAConfig{R: *r, Alpha: *alpha, Targets: model.AllLinear}
	out := map[string]any{"impl": "rltrain", "threads": be.Threads(), "blas_threads": cpu.BLASThreads(), "go": runtime.Version(),
		"hidden": m.Cfg.Hidden, "layers": m.Cfg.Layers, "vocab": m.Cfg.Vocab, "params": m.NumParams()}
	// Loading holds the file's tensors beside the model for a moment: the
	// peak of the measurement proper starts after it.
	runtime.GC()
	debug.FreeOSMemory()
	out["rss_after_load_mb"] = procStatusMB("VmRSS")
	resetPeakRSS := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	if *decode {
		benchDecode(m, lc, *rows, *prompt, *newTok, out)
	} else {
		benchTrain(m, lc, *mode, *batch, *seq, *warmup, *steps, out)
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	out["process_peak_rss_mb"] = float64(ru.Maxrss) / 1024
	if resetPeakRSS {
		out["peak_rss_mb"] = procStatusMB("VmHWM")
	} else {
		out["peak_rss_mb"] = out["process_peak_rss_mb"]
	}
	js, _ := json.Marshal(out)
	fmt.Println(string(js))
}

// procStatusMB reads a kB field of /proc/self/status in MB (0 when absent).
func procStatusMB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb / 1024
		}
	}
	return 0
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "lora:", err)
		os.Exit(1)
	}
}

// randomAdapter is a LoRA adapter with A and B both random, so its terms
// cost what a trained adapter's do.
func randomAdapter(m *model.Model, lc model.LoRAConfig) *model.Adapter {
	a, err := model.NewAdapter(m.Cfg, lc, m.Backend())
	check(err)
	host := make([]float32, a.NumParams())
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range host {
		host[i] = float32(rng.NormFloat64() * 0.01)
	}
	m.Backend().Upload(a.Params, host)
	return a
}

const mib = 1 << 20

func benchTrain(m *model.Model, lc model.LoRAConfig, mode string, batch, seq, warmup, steps int, out map[string]any) {
	be := m.Backend()
	var params optim.Flat
	switch mode {
	case "full":
		m.EnableGrads()
		params = optim.Flat{Values: m.Params, Grads: m.Grads}
		for _, t := range m.Tensors() {
			params.Params = append(params.Params, optim.Param{Name: t.Name, Shape: t.Shape, Value: be.View(m.Params, t.Offset, t.Size()), Grad: be.View(m.Grads, t.Offset, t.Size())})
		}
	case "lora":
		a, err := model.NewAdapter(m.Cfg, lc, be)
		check(err)
		a.InitPEFT(1)
		check(m.Attach(a))
		a.EnableGrads()
		params = optim.Flat{Values: a.Params, Grads: a.Grads}
		for _, t := range a.Tensors() {
			params.Params = append(params.Params, optim.Param{Name: t.Name, Shape: t.Shape, Value: be.View(a.Params, t.Offset, t.Size()), Grad: be.View(a.Grads, t.Offset, t.Size())})
		}
	default:
		check(fmt.Errorf("-mode %q: want full or lora", mode))
	}
	opt, err := optim.NewFlatAdamW(be, optim.Optim{LR: 1e-4, Betas: []float64{0.9, 0.999}, Eps: 1e-8, WeightDecay: 0.01, MaxGradNorm: 1, Schedule: "constant"}, params)
	check(err)
	rng := rand.New(rand.NewPCG(1, 2))
	b := model.Batch{B: batch, T: seq, IDs: make([]int32, batch*seq)}
	for i := range b.IDs {
		b.IDs[i] = int32(rng.IntN(m.Cfg.Vocab))
	}
	targets := model.NextTokenTargets(b)
	dlogp := make([]float32, len(targets))
	for i, t := range targets {
		if t >= 0 {
			dlogp[i] = -1 / float32(len(targets)-batch)
		}
	}
	ws := m.NewWorkspace()
	step := func() time.Duration {
		start := time.Now()
		if _, err := m.Forward(ws, b); err != nil {
			check(err)
		}
		g, err := m.LossGrad(ws, model.Output{Targets: targets, InvTemp: 1}, m.KnownGrad(dlogp, nil))
		check(err)
		m.Backward(ws, g.DFinal)
		_, err = opt.Update(1000)
		check(err)
		return time.Since(start)
	}
	for range warmup {
		step()
	}
	var times []float64
	for range steps {
		times = append(times, step().Seconds()*1000)
	}
	slices.Sort(times)
	trainable := params.Values.Len()
	P := m.NumParams()
	out["mode"], out["ms_per_step"], out["ms_min"], out["ms_max"] = mode, times[len(times)/2], times[0], times[len(times)-1]
	out["trainable_params"], out["batch"], out["seq"] = trainable, batch, seq
	if mode == "lora" {
		out["lora_r"], out["lora_alpha"] = lc.R, lc.Alpha
	}
	// The tensors the step holds, in MiB. Gradients and AdamW's two
	// moments exist for the trained parameters only; the KL reference is
	// a second copy of the weights for full fine-tuning and the base
	// itself for LoRA.
	act := float64(ws.Floats()) * 4 / mib
	held := map[string]float64{
		"weights": float64(P) * 4 / mib, "adapter": float64(trainable*btoi(mode == "lora")) * 4 / mib,
		"grads": float64(trainable) * 4 / mib, "adam_moments": float64(trainable) * 8 / mib, "activations": act,
		"reference_copy": float64(P*btoi(mode == "full")) * 4 / mib,
	}
	out["held_mib"] = held
	// On a GPU in bf16 mixed precision (backend.precision bf16): fp32
	// master weights and a bf16 copy of each GEMM operand weight, fp32
	// gradients, moments and activations, the one-pass log-prob kernel's
	// logit chunk (64 Mi floats), and a KL reference copy (fp32, as the
	// trainer keeps it) for full fine-tuning only.
	const logitChunk = 64 << 20
	gpu := held["weights"] + float64(P)*2/mib + held["adapter"]*1.5 + held["grads"] + held["adam_moments"] + act + float64(logitChunk)*4/mib
	out["gpu_bf16_mib"] = gpu
	out["gpu_bf16_with_reference_mib"] = gpu + held["reference_copy"]
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// benchDecode decodes rows sequences through the adapter, then from a
// merged copy of the weights, and times the merge itself.
func benchDecode(m *model.Model, lc model.LoRAConfig, rows, prompt, newTok int, out map[string]any) {
	be := m.Backend()
	a := randomAdapter(m, lc)
	merged, err := model.New(m.Cfg, be)
	check(err)
	var mergeSec []float64
	for range 3 {
		start := time.Now()
		be.Copy(merged.Params, m.Params)
		check(a.MergeInto(merged))
		var probe [1]float32
		be.Download(probe[:], be.View(merged.Params, 0, 1))
		mergeSec = append(mergeSec, time.Since(start).Seconds())
	}
	slices.Sort(mergeSec)
	check(m.Attach(a))
	rng := rand.New(rand.NewPCG(5, 5))
	prompts := make([][]int32, rows)
	for i := range prompts {
		prompts[i] = make([]int32, prompt)
		for j := range prompts[i] {
			prompts[i][j] = int32(rng.IntN(m.Cfg.Vocab))
		}
	}
	run := func(mm *model.Model) (tokPerSec float64, first []float32) {
		cache, err := mm.NewKVCache(int64(rows*(prompt+newTok+16)*mm.Cfg.KVBytesPerToken()), 16)
		check(err)
		defer cache.Close()
		seqs := make([]*model.Seq, rows)
		for i := range seqs {
			seqs[i] = &model.Seq{}
		}
		ws := mm.NewWorkspace()
		logits, err := mm.Prefill(ws, cache, seqs, prompts)
		check(err)
		ws.Free()
		V := mm.Cfg.Vocab
		next := make([]int32, rows)
		argmax := func(l []float32) {
			for i := range next {
				row := l[i*V : (i+1)*V]
				best := 0
				for k, v := range row {
					if v > row[best] {
						best = k
					}
				}
				next[i] = int32(best)
			}
		}
		argmax(logits)
		first = append([]float32(nil), logits[:V]...)
		buf := make([]float32, rows*V)
		start := time.Now()
		for range newTok {
			l, err := mm.DecodeTo(buf, cache, seqs, next)
			check(err)
			argmax(l)
		}
		return float64(rows*newTok) / time.Since(start).Seconds(), first
	}
	// Alternating rounds, the best of each: the machine may be shared.
	var unmerged, mergedTPS float64
	var lu, lm []float32
	for range 3 {
		u, l := run(m)
		unmerged, lu = max(unmerged, u), l
		g, l2 := run(merged)
		mergedTPS, lm = max(mergedTPS, g), l2
	}
	var num, den float64
	for i := range lu {
		num = max(num, float64(abs32(lu[i]-lm[i])))
		den = max(den, float64(abs32(lm[i])))
	}
	out["mode"], out["rows"], out["prompt"], out["new_tokens"], out["lora_r"] = "decode", rows, prompt, newTok, lc.R
	out["unmerged_tok_per_s"], out["merged_tok_per_s"] = unmerged, mergedTPS
	out["merge_ms"] = mergeSec[len(mergeSec)/2] * 1000
	out["merged_copy_mib"] = float64(m.NumParams()) * 4 / mib
	out["adapter_mib"] = float64(a.NumParams()) * 4 / mib
	out["prefill_logits_max_rel_diff"] = num / den
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
