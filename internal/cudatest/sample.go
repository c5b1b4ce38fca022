package cudatest

import (
	"fmt"
	"math"
	"testing"

	"github.com/rltrain/rltrain/kernels/cuda"
)

// Sampling checks Backend.Sample against cuda.SampleReference on rows with
// and without tied logits, for each filter alone and combined. Tokens must
// match exactly (a mismatch needs a draw within rounding of a cumulative
// boundary, which random inputs essentially never produce); log-probs
// within 1e-5 absolute.
func Sampling(t *testing.T, newDriver func() (cuda.Driver, error)) {
	drv, err := newDriver()
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	p := newPair(t, drv)
	params := []cuda.SampleParams{
		{Temperature: 0},
		{Temperature: 1, TopP: 1},
		{Temperature: 0.7, TopK: 5, TopP: 1},
		{Temperature: 1.3, TopP: 0.9},
		{Temperature: 1, TopP: 1, MinP: 0.05},
		{Temperature: 0.6, TopK: 50, TopP: 0.95, MinP: 0.01},
		{Temperature: 1, TopK: 1, TopP: 1},
		{Temperature: 1, TopP: 0},
	}
	for _, sh := range []struct {
		rows, vocab int
		ties        bool
	}{{7, 333, false}, {6, 1000, true}, {2, 40, true}} {
		logits := p.rand(sh.rows*sh.vocab, 2)
		if sh.ties {
			for i, v := range logits {
				logits[i] = float32(math.Round(float64(v)*2) / 2)
			}
		}
		buf := p.dev.Alloc(len(logits))
		p.dev.Upload(buf, logits)
		for pi, prm := range params {
			counters := make([]uint64, sh.rows)
			for r := range counters {
				counters[r] = uint64(1000*pi + r)
			}
			const seed = 0x5eed
			tokens, lps := make([]int32, sh.rows), make([]float32, sh.rows)
			p.dev.Sample(tokens, lps, buf, sh.rows, sh.vocab, prm, seed, counters)
			for r := 0; r < sh.rows; r++ {
				name := fmt.Sprintf("vocab %d ties %v params %+v row %d", sh.vocab, sh.ties, prm, r)
				wt, wlp := cuda.SampleReference(logits[r*sh.vocab:(r+1)*sh.vocab], prm, cuda.PhiloxUniform(seed, counters[r]))
				if tokens[r] != wt {
					t.Errorf("%s: token %d, reference %d", name, tokens[r], wt)
				}
				if d := math.Abs(float64(lps[r] - wlp)); !(d <= 1e-5) {
					t.Errorf("%s: log-prob %v, reference %v", name, lps[r], wlp)
				}
			}
		}
	}
	// Full Qwen vocabulary, temperature and min-p (no bisection).
	V := 151936
	logits := p.rand(2*V, 3)
	buf := p.dev.Alloc(len(logits))
	p.dev.Upload(buf, logits)
	prm := cuda.SampleParams{Temperature: 0.8, TopP: 1, MinP: 0.001}
	tokens, lps := make([]int32, 2), make([]float32, 2)
	counters := []uint64{7, 8}
	p.dev.Sample(tokens, lps, buf, 2, V, prm, 1, counters)
	for r := 0; r < 2; r++ {
		wt, wlp := cuda.SampleReference(logits[r*V:(r+1)*V], prm, cuda.PhiloxUniform(1, counters[r]))
		if tokens[r] != wt || math.Abs(float64(lps[r]-wlp)) > 1e-5 {
			t.Errorf("vocab %d row %d: token %d (%v), reference %d (%v)", V, r, tokens[r], lps[r], wt, wlp)
		}
	}
}
