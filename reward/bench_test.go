package reward

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// benchSamples builds n completions of about 500 tokens (~2,200 bytes) of
// math-style reasoning with a mix of answer formats.
func benchSamples(n int) []Sample {
	rng := rand.New(rand.NewSource(42))
	words := []string{"we", "have", "the", "number", "of", "apples", "is", "so", "then", "total", "each", "box", "holds", "which", "gives", "="}
	samples := make([]Sample, n)
	for i := range samples {
		var b strings.Builder
		b.WriteString("<think>\n")
		for b.Len() < 2100 {
			if rng.Intn(4) == 0 {
				fmt.Fprintf(&b, "%d ", rng.Intn(10000))
			} else {
				b.WriteString(words[rng.Intn(len(words))])
				b.WriteByte(' ')
			}
			if rng.Intn(20) == 0 {
				b.WriteString(".\n")
			}
		}
		ans := rng.Intn(1000)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "</think>\n<answer>%d</answer>", ans)
		case 1:
			fmt.Fprintf(&b, "</think>\nSo the answer is $\\boxed{%d}$.", ans)
		case 2:
			fmt.Fprintf(&b, "</think>\n<answer>\\frac{%d}{2}</answer>", 2*ans)
		default:
			fmt.Fprintf(&b, " and so on, truncated at %d", ans) // unclosed think
		}
		gold := ans
		if rng.Intn(2) == 0 {
			gold++
		}
		samples[i] = Sample{
			Prompt: "How many apples?", Completion: b.String(), CompletionIDs: make([]int32, 450+rng.Intn(100)),
			FinishReason: FinishStop, Group: i / 8, Fields: map[string]any{"answer": fmt.Sprint(gold)},
		}
	}
	return samples
}

func benchSet(b *testing.B) *Set {
	set, err := New(Config{Functions: []Spec{
		{Name: "acc", Type: "math_answer"},
		{Name: "fmt", Type: "format", Weight: f64(0.2), Params: map[string]any{"partial": true}},
		{Name: "len", Type: "length", Weight: f64(0.1), Params: map[string]any{"mode": "overlong", "max_length": 1024, "buffer": 256}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	return set
}

// BenchmarkThroughput: 10,000 completions of ~500 tokens with
// math_answer + format + length; reports samples/s.
func BenchmarkThroughput(b *testing.B) { benchScore(b, benchSamples(10000)) }

// benchScore times benchSet scoring samples; reports samples/s.
func benchScore(b *testing.B, samples []Sample) {
	set := benchSet(b)
	defer set.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := set.Score(context.Background(), samples)
		if err != nil {
			b.Fatal(err)
		}
		if res.Metrics["reward/excluded"] != 0 {
			b.Fatalf("unexpected failures: %v", res.Metrics)
		}
	}
	b.ReportMetric(float64(len(samples)*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkRewards measures each reward alone on the same batch.
func BenchmarkRewards(b *testing.B) {
	samples := benchSamples(10000)
	for _, spec := range []Spec{
		{Type: "math_answer"},
		{Type: "format", Params: map[string]any{"partial": true}},
		{Type: "length", Params: map[string]any{"mode": "overlong", "max_length": 1024, "buffer": 256}},
		{Type: "bleu", Params: map[string]any{"field": "answer"}},
	} {
		b.Run(spec.Type, func(b *testing.B) {
			r, err := Build(spec)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := r.Score(context.Background(), samples); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(samples)*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkStepBatch scores one training step's worth (32 prompts × 8
// completions): the cost that shows up in timing_s/reward.
func BenchmarkStepBatch(b *testing.B) { benchScore(b, benchSamples(256)) }
