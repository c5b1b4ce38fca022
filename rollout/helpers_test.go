package rollout

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/model"
)

// tinyConfig is a small Llama with grouped-query attention (4 query heads
// sharing 2 KV heads).
func tinyConfig() model.Config {
	return model.Config{Architecture: "LlamaForCausalLM", ModelType: "llama", Vocab: 97, Hidden: 64, Layers: 2,
		Heads: 4, KVHeads: 2, HeadDim: 16, FFN: 96, RMSEps: 1e-5, RopeTheta: 10000, MaxPositions: 512,
		BOS: 1, EOS: []int{2}}
}

// newModel builds a random model whose parameters are all perturbed, so
// norms are not at their trivial values and logits are spread.
func newModel(t testing.TB, cfg model.Config, threads int, seed uint64) *model.Model {
	t.Helper()
	m, err := model.New(cfg, cpu.New(threads))
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(seed, 0.2)
	be := m.Backend()
	host := make([]float32, m.NumParams())
	be.Download(host, m.Params)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range host {
		host[i] += float32(r.NormFloat64() * 0.05)
	}
	be.Upload(m.Params, host)
	return m
}

// randomPrompts returns n prompts of lengths in [minLen, maxLen].
func randomPrompts(n, minLen, maxLen, vocab int, seed uint64) [][]int32 {
	r := rand.New(rand.NewPCG(seed, 3))
	out := make([][]int32, n)
	for i := range out {
		p := make([]int32, minLen+r.IntN(maxLen-minLen+1))
		for j := range p {
			p[j] = int32(3 + r.IntN(vocab-3)) // avoid BOS/EOS ids
		}
		out[i] = p
	}
	return out
}

// recompute scores every completion with a full forward pass and the
// trainer's fused log-prob kernel at the given inverse temperature.
func recompute(t *testing.T, m *model.Model, prompts [][]int32, comps []Completion, invTemp float32) [][]float32 {
	lp, _ := trainerOutputs(t, m, prompts, comps, invTemp)
	return lp
}

// trainerOutputs returns, for every completion token, the trainer's
// recomputed log-prob and the entropy of the distribution it was drawn
// from, at the given inverse temperature.
func trainerOutputs(t *testing.T, m *model.Model, prompts [][]int32, comps []Completion, invTemp float32) (logp, entropy [][]float32) {
	t.Helper()
	ws := m.NewWorkspace()
	logp, entropy = make([][]float32, len(comps)), make([][]float32, len(comps))
	for i, c := range comps {
		p := prompts[c.Prompt]
		ids := append(append([]int32(nil), p...), c.IDs...)
		b := model.Batch{IDs: ids, B: 1, T: len(ids)}
		if _, err := m.Forward(ws, b); err != nil {
			t.Fatal(err)
		}
		lp, ent, err := m.LogProbs(ws, model.Output{Targets: model.NextTokenTargets(b), InvTemp: invTemp, Entropy: true})
		if err != nil {
			t.Fatal(err)
		}
		logp[i], entropy[i] = lp[len(p)-1:len(ids)-1], ent[len(p)-1:len(ids)-1]
	}
	return logp, entropy
}

// maxAbsDiff is max |a−b| / max(1, |b|) over the elements.
func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i]))/max(1, math.Abs(float64(b[i]))))
	}
	return d
}
