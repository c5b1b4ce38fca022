package cudatest

import (
	"fmt"
	"math"
	"testing"

	"github.com/rltrain/rltrain/internal/rng"
	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/rollout"
)

// Sampling checks Backend.SampleRows against cuda.SampleReference and
// against the rollout package's CPU sampler on rows with and without tied
// logits, for each filter alone and combined, at the same (seed, prompt,
// sample, step) draws. Tokens must match exactly (a mismatch needs a draw
// within rounding of a cumulative boundary, which random inputs
// essentially never produce); log-probs within 1e-5 absolute.
func Sampling(t *testing.T, newDriver func() (cuda.Driver, error)) {
	drv, err := newDriver()
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	p := newPair(t, drv)
	params := []kernels.SampleParams{
		{Temperature: 0},
		{Temperature: 1, TopP: 1},
		{Temperature: 0.7, TopK: 5, TopP: 1},
		{Temperature: 1.3, TopP: 0.9},
		{Temperature: 1, TopP: 1, MinP: 0.05},
		{Temperature: 0.6, TopK: 50, TopP: 0.95, MinP: 0.01},
		{Temperature: 1, TopK: 1, TopP: 1},
		{Temperature: 1, TopP: 0},
	}
	var cpu rollout.Sampler
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
			draws := make([]kernels.Draw, sh.rows)
			for r := range draws {
				draws[r] = kernels.Draw{Prompt: uint64(pi), Sample: uint64(r), Step: uint64(3 * r)}
			}
			const seed = 0x5eed
			tokens, lps := make([]int32, sh.rows), make([]float32, sh.rows)
			p.dev.SampleRows(tokens, lps, buf, sh.vocab, prm, seed, draws)
			for r, d := range draws {
				name := fmt.Sprintf("vocab %d ties %v params %+v row %d", sh.vocab, sh.ties, prm, r)
				row := logits[r*sh.vocab : (r+1)*sh.vocab]
				u := rng.Uniform(seed, d.Prompt, d.Sample, d.Step)
				wt, wlp := cuda.SampleReference(row, prm, u)
				if tokens[r] != wt {
					t.Errorf("%s: token %d, reference %d", name, tokens[r], wt)
				}
				if d := math.Abs(float64(lps[r] - wlp)); !(d <= 1e-5) {
					t.Errorf("%s: log-prob %v, reference %v", name, lps[r], wlp)
				}
				ct, clp := cpu.Sample(row, rollout.Sampling{Temperature: prm.Temperature, TopK: prm.TopK, TopP: prm.TopP, MinP: prm.MinP, RepetitionPenalty: 1}, u, nil)
				if tokens[r] != ct {
					t.Errorf("%s: token %d, the CPU sampler's %d", name, tokens[r], ct)
				}
				if d := math.Abs(float64(lps[r] - clp)); !(d <= 1e-5) {
					t.Errorf("%s: log-prob %v, the CPU sampler's %v", name, lps[r], clp)
				}
			}
		}
	}
	// Full Qwen vocabulary, temperature and min-p (no bisection).
	V := 151936
	logits := p.rand(2*V, 3)
	buf := p.dev.Alloc(len(logits))
	p.dev.Upload(buf, logits)
	prm := kernels.SampleParams{Temperature: 0.8, TopP: 1, MinP: 0.001}
	tokens, lps := make([]int32, 2), make([]float32, 2)
	draws := []kernels.Draw{{Prompt: 7, Sample: 1, Step: 9}, {Prompt: 8, Sample: 0, Step: 2}}
	p.dev.SampleRows(tokens, lps, buf, V, prm, 1, draws)
	for r, d := range draws {
		wt, wlp := cuda.SampleReference(logits[r*V:(r+1)*V], prm, rng.Uniform(1, d.Prompt, d.Sample, d.Step))
		if tokens[r] != wt || math.Abs(float64(lps[r]-wlp)) > 1e-5 {
			t.Errorf("vocab %d row %d: token %d (%v), reference %d (%v)", V, r, tokens[r], lps[r], wt, wlp)
		}
	}
}
