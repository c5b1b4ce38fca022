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

// problem is one output-layer pass: hidden states h [n×d], weights w
// [vocab×d], targets, the loss gradient g of each target's log-prob, and
// the gradient outputs dh and dw.
type problem struct {
	n, d, vocab int
	h, w, g     []float32
	targets     []int32
	dh, dw      []float32
}

// modes run a problem's forward and backward pass and return the
// log-probs.
var modes = map[string]func(be *cpu.Backend, p *problem) []float32{
	"fused":   fused,
	"onepass": onePass,
	"unfused": unfused,
}

func main() {
	n := flag.Int("tokens", 8192, "tokens")
	vocab := flag.Int("vocab", 151936, "vocabulary size")
	d := flag.Int("hidden", 896, "hidden size")
	mode := flag.String("mode", "onepass", "onepass (TokenLogProbsGrad), fused (TokenLogProbs then TokenLogProbsBackward) or unfused")
	flag.Parse()
	run, ok := modes[*mode]
	if !ok {
		fmt.Fprintln(os.Stderr, "logprobs: --mode onepass, fused or unfused")
		os.Exit(2)
	}

	be := cpu.New(0)
	p := newProblem(*n, *d, *vocab)
	base := rss()
	start := time.Now()
	var sum float64
	for _, v := range run(be, p) {
		sum += float64(v)
	}
	sec := time.Since(start).Seconds()
	out, _ := json.Marshal(map[string]any{"mode": *mode, "tokens": *n, "vocab": *vocab, "hidden": *d,
		"seconds": sec, "peak_rss_mb": rss(), "extra_peak_mb": rss() - base, "logp_sum": sum, "threads": be.Threads()})
	fmt.Println(string(out))
}

// newProblem draws a problem from a fixed seed.
func newProblem(n, d, vocab int) *problem {
	r := rand.New(rand.NewPCG(1, 2))
	p := &problem{n: n, d: d, vocab: vocab, h: make([]float32, n*d), w: make([]float32, vocab*d),
		g: make([]float32, n), targets: make([]int32, n), dh: make([]float32, n*d), dw: make([]float32, vocab*d)}
	for i := range p.h {
		p.h[i] = float32(r.NormFloat64())
	}
	for i := range p.w {
		p.w[i] = float32(r.NormFloat64() * 0.02)
	}
	for i := range p.targets {
		p.targets[i] = int32(r.IntN(vocab))
		p.g[i] = -1 / float32(n)
	}
	// Touch the outputs so that their pages count in the baseline: the
	// extra peak is then the kernel's own temporaries.
	clear(p.dh)
	clear(p.dw)
	return p
}

func fused(be *cpu.Backend, p *problem) []float32 {
	lp, lse := make([]float32, p.n), make([]float32, p.n)
	be.TokenLogProbs(cpu.F32(lp), nil, cpu.F32(lse), cpu.F32(p.h), cpu.F32(p.w), p.targets, p.n, p.d, p.vocab, 1)
	be.TokenLogProbsBackward(cpu.F32(p.dh), cpu.F32(p.dw), cpu.F32(p.g), nil, cpu.F32(p.h), cpu.F32(p.w), cpu.F32(lse), nil, p.targets, p.n, p.d, p.vocab, 1)
	return lp
}

func onePass(be *cpu.Backend, p *problem) []float32 {
	lp, lse := make([]float32, p.n), make([]float32, p.n)
	dl := make([]float32, p.n)
	be.TokenLogProbsGrad(&kernels.LogProbsGradArgs{
		Logp: cpu.F32(lp), LSE: cpu.F32(lse), DLogp: cpu.F32(dl),
		Hidden: cpu.F32(p.h), W: cpu.F32(p.w), DHidden: cpu.F32(p.dh), DW: cpu.F32(p.dw),
		Targets: p.targets, N: p.n, D: p.d, Vocab: p.vocab, InvTemp: 1,
		Grad: func(r0, r1 int) bool { copy(dl[r0:r1], p.g[r0:r1]); return true },
	})
	return lp
}

// unfused materialises the [n × vocab] logits, turns each row into its
// gradient in place, and multiplies back.
func unfused(be *cpu.Backend, p *problem) []float32 {
	n, d, vocab := p.n, p.d, p.vocab
	logits := make([]float32, n*vocab)
	be.Gemm(false, true, n, vocab, d, 1, cpu.F32(p.h), d, cpu.F32(p.w), d, 0, cpu.F32(logits), vocab)
	lp := make([]float32, n)
	var wg sync.WaitGroup
	rows := make(chan int, n)
	for i := 0; i < n; i++ {
		rows <- i
	}
	close(rows)
	for range be.Threads() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rows {
				row := logits[i*vocab : (i+1)*vocab]
				mx := row[0]
				for _, v := range row {
					mx = max(mx, v)
				}
				// The same vector exponential as the fused kernels, so
				// that the comparison is of memory traffic and passes,
				// not of exp implementations.
				zt := row[p.targets[i]] - mx
				s := cpu.ExpShift(row, row, mx)
				lp[i] = zt - float32(math.Log(s))
				// dlogits = g·(onehot − softmax), in place.
				scale := -p.g[i] / float32(s)
				for k := range row {
					row[k] *= scale
				}
				row[p.targets[i]] += p.g[i]
			}
		}()
	}
	wg.Wait()
	be.Gemm(false, false, n, d, vocab, 1, cpu.F32(logits), vocab, cpu.F32(p.w), d, 1, cpu.F32(p.dh), d)
	be.Gemm(true, false, vocab, d, n, 1, cpu.F32(logits), vocab, cpu.F32(p.h), d, 1, cpu.F32(p.dw), d)
	return lp
}

func rss() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024
}
