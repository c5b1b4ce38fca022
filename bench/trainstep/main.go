// Command trainstep times one rltrain training step — forward, next-token
// cross-entropy through the fused log-prob kernel, backward and an AdamW
// update — on a randomly initialised Llama-style model, and prints one JSON
// line in the format of scripts/torch_bench.py so the two can be compared.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/model"
)

func main() {
	hidden := flag.Int("hidden", 256, "hidden size")
	layers := flag.Int("layers", 4, "layers")
	heads := flag.Int("heads", 4, "attention heads")
	kvHeads := flag.Int("kv-heads", 2, "key/value heads")
	headDim := flag.Int("head-dim", 64, "head dimension")
	ffn := flag.Int("ffn", 768, "FFN size")
	vocab := flag.Int("vocab", 4096, "vocabulary size")
	batch := flag.Int("batch", 8, "sequences per step")
	seq := flag.Int("seq", 256, "tokens per sequence")
	steps := flag.Int("steps", 10, "timed steps")
	warmup := flag.Int("warmup", 2, "untimed steps")
	threads := flag.Int("threads", 0, "threads (0: one per core)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the timed steps")
	gemmPeak := flag.Bool("gemm-peak", false, "measure the backend's sgemm GFLOP/s on 2048³ instead")
	flag.Parse()
	if *gemmPeak {
		measureGemmPeak(*threads)
		return
	}

	cfg := model.Config{Architecture: "LlamaForCausalLM", ModelType: "llama", Vocab: *vocab, Hidden: *hidden,
		Layers: *layers, Heads: *heads, KVHeads: *kvHeads, HeadDim: *headDim, FFN: *ffn, RMSEps: 1e-5,
		RopeTheta: 10000, BOS: -1}
	be := cpu.New(*threads)
	m, err := model.New(cfg, be)
	if err != nil {
		fmt.Fprintln(os.Stderr, "trainstep:", err)
		os.Exit(1)
	}
	m.InitRandom(1, 0.02)
	m.EnableGrads()
	n := m.NumParams()
	mom, vel := be.Alloc(n), be.Alloc(n)

	b, targets, dlogp := randomBatch(*batch, *seq, *vocab)
	ws := m.NewWorkspace()
	step := func(k int) time.Duration {
		start := time.Now()
		m.ZeroGrads()
		if _, err := m.Forward(ws, b); err != nil {
			panic(err)
		}
		g, err := m.LossGrad(ws, model.Output{Targets: targets, InvTemp: 1}, m.KnownGrad(dlogp, nil))
		if err != nil {
			panic(err)
		}
		m.Backward(ws, g.DFinal)
		be.AdamW(m.Params, m.Grads, mom, vel, n, kernels.AdamWParams{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: k + 1})
		return time.Since(start)
	}
	for i := 0; i < *warmup; i++ {
		step(i)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "trainstep:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var times []float64
	for i := 0; i < *steps; i++ {
		times = append(times, float64(step(*warmup+i).Microseconds())/1000)
	}
	slices.Sort(times)
	med := times[len(times)/2]
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tokens := float64(*batch * *seq)
	// 6·params·tokens for the dense layers plus attention's 12·L·T²·d/2
	// (causal) per sequence.
	flops := 6*float64(n)*tokens + 6*float64(*layers)*float64(*batch)*float64(*seq)*float64(*seq)*float64(*heads**headDim)
	out := map[string]any{
		"impl": "rltrain", "mode": "train", "threads": be.Threads(), "blas_threads": cpu.BLASThreads(),
		"ms_per_step": med, "ms_min": times[0], "ms_max": times[len(times)-1],
		"tokens_per_s": tokens / (med / 1000), "gflops": flops / (med / 1000) / 1e9,
		"peak_rss_mb": float64(ru.Maxrss) / 1024, "params": n, "go": runtime.Version(),
	}
	js, _ := json.Marshal(out)
	fmt.Println(string(js))
}

// randomBatch is batch sequences of seq random tokens, their next-token
// targets, and the gradient of the mean negative log-likelihood with
// respect to each target's log-prob.
func randomBatch(batch, seq, vocab int) (b model.Batch, targets []int32, dlogp []float32) {
	r := rand.New(rand.NewPCG(1, 2))
	b = model.Batch{B: batch, T: seq, IDs: make([]int32, batch*seq)}
	for i := range b.IDs {
		b.IDs[i] = int32(r.IntN(vocab))
	}
	targets = model.NextTokenTargets(b)
	count := 0
	for _, t := range targets {
		if t >= 0 {
			count++
		}
	}
	dlogp = make([]float32, len(targets))
	for i, t := range targets {
		if t >= 0 {
			dlogp[i] = -1 / float32(count)
		}
	}
	return b, targets, dlogp
}

// measureGemmPeak times a 2048×2048×2048 product through the backend, the
// reference for "effective GFLOP/s against the machine's GEMM peak".
func measureGemmPeak(threads int) {
	be := cpu.New(threads)
	best := kernels.GemmGFLOPS(be, 2048, 5)
	js, _ := json.Marshal(map[string]any{"impl": "rltrain", "mode": "gemm-peak", "threads": be.Threads(), "gflops": best})
	fmt.Println(string(js))
}
