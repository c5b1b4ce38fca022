package cpu_test

import (
	"math/rand/v2"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
)

// BenchmarkPolicyLoss measures one pass over 64 sequences of 1024 tokens
// with every term switched on (KL k3, entropy, TIS, dual clip).
func BenchmarkPolicyLoss(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	lens := make([]int, 64)
	for i := range lens {
		lens[i] = 1024
	}
	c := plRandom(r, lens)
	p := kernels.PolicyLossParams{EpsLow: 0.2, EpsHigh: 0.28, ClipRatioC: 3, Beta: 0.04, KL: kernels.KLK3,
		EntropyCoef: 0.01, TISCap: 2, Norm: kernels.Normalizers{Tokens: float64(len(c.logp)), Seqs: 64, MaxLen: 1024}}
	a := c.args(p)
	be := cpu.New(0)
	b.SetBytes(int64(len(c.logp)) * 4 * 9)
	b.ResetTimer()
	for range b.N {
		be.PolicyLoss(a)
	}
	b.ReportMetric(float64(len(c.logp))*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mtok/s")
}

// BenchmarkAdamW measures one update of 16M parameters.
func BenchmarkAdamW(b *testing.B) {
	const n = 16 << 20
	p, g, m, v := make(cpu.F32, n), make(cpu.F32, n), make(cpu.F32, n), make(cpu.F32, n)
	for i := range g {
		g[i] = float32(i%7) - 3
	}
	be := cpu.New(0)
	b.SetBytes(n * 4 * 4)
	b.ResetTimer()
	for i := range b.N {
		be.AdamW(p, g, m, v, n, kernels.AdamWParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: i + 1})
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
}
