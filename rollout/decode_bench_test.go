package rollout

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/model"
)

// benchModels are the two shapes of the README's rollout table (the
// reference model and a d=512 / 8-layer / vocab-32000 one).
var benchModels = []struct {
	name string
	cfg  model.Config
}{
	{"d256-L4-V4096", model.Config{Architecture: "LlamaForCausalLM", ModelType: "llama", Vocab: 4096, Hidden: 256, Layers: 4,
		Heads: 4, KVHeads: 2, HeadDim: 64, FFN: 768, RMSEps: 1e-5, RopeTheta: 10000, BOS: -1}},
	{"d512-L8-V32000", model.Config{Architecture: "LlamaForCausalLM", ModelType: "llama", Vocab: 32000, Hidden: 512, Layers: 8,
		Heads: 8, KVHeads: 4, HeadDim: 64, FFN: 1536, RMSEps: 1e-5, RopeTheta: 10000, BOS: -1}},
}

// BenchmarkGenerate64 is the 64-sequence row of the rollout table (8
// prompts × G=8, 64-token prompts, 64 greedy new tokens) without the
// PyTorch side: a quick before/after check of decode throughput.
//
//	go test -run '^$' -bench Generate64 -benchtime 3x ./rollout
func BenchmarkGenerate64(b *testing.B) {
	for _, mc := range benchModels {
		b.Run(mc.name, func(b *testing.B) {
			m, err := model.New(mc.cfg, cpu.New(benchThreads()))
			if err != nil {
				b.Fatal(err)
			}
			m.InitRandom(1, 0.02)
			var decode, prefill, model float64
			cpu0 := processCPU()
			for b.Loop() {
				res, err := Bench(m, BenchOptions{Prompts: 8, Group: 8, PromptLen: 64, NewTokens: 64, Repeats: 1, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				decode = max(decode, res.DecodeTokPerS)
				prefill = max(prefill, res.PrefillTokPerS)
				model = max(model, res.ModelDecodeTokPerS)
			}
			// Bench runs Generate twice (warm-up and one timed run) per
			// iteration: CPU time per generated token over both, prefill
			// included, which the other processes on a shared machine do
			// not inflate the way they do wall time.
			tokens := float64(2 * b.N * 8 * 8 * 64)
			b.ReportMetric((processCPU()-cpu0).Seconds()/tokens*1e6, "cpu-us/token")
			b.ReportMetric(decode, "decode-tok/s")
			b.ReportMetric(model, "model-decode-tok/s")
			b.ReportMetric(prefill, "prefill-tok/s")
		})
	}
}

// processCPU is the user and system time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchThreads is RLTRAIN_BENCH_THREADS, or 2.
func benchThreads() int {
	threads := 2
	if s := os.Getenv("RLTRAIN_BENCH_THREADS"); s != "" {
		fmt.Sscan(s, &threads)
	}
	return threads
}
