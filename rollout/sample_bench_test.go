package rollout

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkSample32000(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	logits := make([]float32, 32000)
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 2)
	}
	cases := []struct {
		name string
		p    Sampling
	}{
		{"greedy", Sampling{TopP: 1, RepetitionPenalty: 1}},
		{"temperature", Sampling{Temperature: 1, TopP: 1, RepetitionPenalty: 1}},
		{"top_p 0.9", Sampling{Temperature: 1, TopP: 0.9, RepetitionPenalty: 1}},
		{"top_k 50", Sampling{Temperature: 1, TopK: 50, TopP: 1, RepetitionPenalty: 1}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var s Sampler
			for i := 0; b.Loop(); i++ {
				s.Sample(logits, tc.p, Uniform(1, 0, 0, uint64(i)), nil)
			}
		})
	}
}
