// Command logprobs measures the fused TokenLogProbs kernel (forward and
// backward) against an unfused path that materialises the [tokens × vocab]
// logits, at Qwen2.5-0.5B's output-layer shape by default. Run each mode in
// its own process so that peak RSS is the mode's own:
//
//	logprobs --mode onepass ; logprobs --mode fused ; logprobs --mode unfused
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
)

func main() {
	n := flag.Int("tokens", 8192, "tokens")
	vocab := flag.Int("vocab", 151936, "vocabulary size")
	d := flag.Int("hidden", 896, "hidden size")
	mode := flag.String("mode", "onepass", "onepass (TokenLogProbsGrad), fused (TokenLogProbs then TokenLogProbsBackward) or unfused")
	flag.Parse()

	be := cpu.New(0)
	r := rand.New(rand.NewPCG(1, 2))
	h := make([]float32, *n**d)
	w := make([]float32, *vocab**d)
	for i := range h {
		h[i] = float32(r.NormFloat64())
	}
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.02)
	}
	targets := make([]int32, *n)
	g := make([]float32, *n)
	for i := range targets {
		targets[i] = int32(r.IntN(*vocab))
		g[i] = -1 / float32(*n)
	}
	dh := make([]float32, *n**d)
	dw := make([]float32, *vocab**d)
	// Touch the outputs so that their pages count in the baseline: the
	// extra peak is then the kernel's own temporaries.
	for i := range dh {
		dh[i] = 0
	}
	for i := range dw {
		dw[i] = 0
	}
	base := rss()
	start := time.Now()
	var sum float64
	switch *mode {
	case "fused":
		lp, lse := make([]float32, *n), make([]float32, *n)
		be.TokenLogProbs(cpu.F32(lp), nil, cpu.F32(lse), cpu.F32(h), cpu.F32(w), targets, *n, *d, *vocab, 1)
		be.TokenLogProbsBackward(cpu.F32(dh), cpu.F32(dw), cpu.F32(g), nil, cpu.F32(h), cpu.F32(w), cpu.F32(lse), nil, targets, *n, *d, *vocab, 1)
		for _, v := range lp {
			sum += float64(v)
		}
	case "onepass":
		lp, lse := make([]float32, *n), make([]float32, *n)
		dl := make([]float32, *n)
		be.TokenLogProbsGrad(&kernels.LogProbsGradArgs{
			Logp: cpu.F32(lp), LSE: cpu.F32(lse), DLogp: cpu.F32(dl),
			Hidden: cpu.F32(h), W: cpu.F32(w), DHidden: cpu.F32(dh), DW: cpu.F32(dw),
			Targets: targets, N: *n, D: *d, Vocab: *vocab, InvTemp: 1,
			Grad: func(r0, r1 int) bool { copy(dl[r0:r1], g[r0:r1]); return true },
		})
		for _, v := range lp {
			sum += float64(v)
		}
	case "unfused":
		logits := make([]float32, *n**vocab)
		be.Gemm(false, true, *n, *vocab, *d, 1, cpu.F32(h), *d, cpu.F32(w), *d, 0, cpu.F32(logits), *vocab)
		lp := make([]float32, *n)
		var wg sync.WaitGroup
		rows := make(chan int, *n)
		for i := 0; i < *n; i++ {
			rows <- i
		}
		close(rows)
		for range be.Threads() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range rows {
					row := logits[i**vocab : (i+1)**vocab]
					mx := row[0]
					for _, v := range row {
						mx = max(mx, v)
					}
					// The same vector exponential as the fused kernels, so
					// that the comparison is of memory traffic and passes,
					// not of exp implementations.
					zt := row[targets[i]] - mx
					s := cpu.ExpShift(row, row, mx)
					lp[i] = zt - float32(math.Log(s))
					// dlogits = g·(onehot − softmax), in place.
					scale := -g[i] / float32(s)
					for k := range row {
						row[k] *= scale
					}
					row[targets[i]] += g[i]
				}
			}()
		}
		wg.Wait()
		be.Gemm(false, false, *n, *d, *vocab, 1, cpu.F32(logits), *vocab, cpu.F32(w), *d, 1, cpu.F32(dh), *d)
		be.Gemm(true, false, *vocab, *d, *n, 1, cpu.F32(logits), *vocab, cpu.F32(h), *d, 1, cpu.F32(dw), *d)
		for _, v := range lp {
			sum += float64(v)
		}
	default:
		fmt.Fprintln(os.Stderr, "logprobs: --mode onepass, fused or unfused")
		os.Exit(2)
	}
	sec := time.Since(start).Seconds()
	out, _ := json.Marshal(map[string]any{"mode": *mode, "tokens": *n, "vocab": *vocab, "hidden": *d,
		"seconds": sec, "peak_rss_mb": rss(), "extra_peak_mb": rss() - base, "logp_sum": sum, "threads": be.Threads()})
	fmt.Println(string(out))
}

func rss() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024
}
