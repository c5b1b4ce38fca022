package cuda

import (
	"fmt"
	"math"
	"sort"

	"github.com/rltrain/rltrain/kernels"
)

// SampleRows implements kernels.RowSampler: one block per row draws the
// row's token from logits[len(draws) × vocab] on the device, and only the
// tokens and their log-probs are downloaded. Row r's uniform draw is
// internal/rng's at (seed, draws[r]), computed on the device (sample.cu's
// uniform_draw). SampleReference is the host definition.
func (b *Backend) SampleRows(tokens []int32, logprobs []float32, logits kernels.Buf, vocab int, p kernels.SampleParams, seed uint64, draws []kernels.Draw) {
	rows := len(draws)
	if rows == 0 {
		return
	}
	if len(tokens) < rows || len(logprobs) < rows || logits.Len() < rows*vocab {
		panic(fmt.Sprintf("cuda: sample of %d rows with %d tokens, %d log-probs, %d logits", rows, len(tokens), len(logprobs), logits.Len()))
	}
	coords := make([]uint64, 3*rows)
	for i, d := range draws {
		coords[3*i], coords[3*i+1], coords[3*i+2] = d.Prompt, d.Sample, d.Step
	}
	tab := b.temp(8 * len(coords))
	out := b.temp(8 * rows) // tokens then log-probs
	defer b.release(tab, out)
	b.must("upload", b.drv.CopyHtoD(tab, bytesOf(coords)))
	greedy, invT := 0, 0.0
	if p.Temperature == 0 {
		greedy = 1
	} else {
		invT = 1 / p.Temperature
	}
	b.launch("sample_rows", D1(rows), D1(256), 0, ArgPtr(out), ArgPtr(out+DevPtr(4*rows)), ArgPtr(dev(logits)), ArgInt(vocab),
		ArgPtr(tab), seed, ArgInt(greedy), ArgF64(invT), ArgInt(p.TopK), ArgF64(p.TopP), ArgF64(p.MinP))
	b.must("download", b.drv.CopyDtoH(bytesOf(tokens[:rows]), out))
	b.must("download", b.drv.CopyDtoH(bytesOf(logprobs[:rows]), out+DevPtr(4*rows)))
}

var _ kernels.RowSampler = (*Backend)(nil)

// SampleReference is the host definition of SampleRows for one row with
// uniform draw u (rng.Uniform at the row's coordinates), in float64
// throughout.
func SampleReference(logits []float32, p kernels.SampleParams, u float64) (int32, float32) {
	V := len(logits)
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	mx := logits[best]
	invT := float64(1)
	greedy := p.Temperature == 0
	if !greedy {
		invT = 1 / p.Temperature
	}
	w := make([]float64, V)
	var total float64
	for i, v := range logits {
		w[i] = math.Exp((float64(v) - float64(mx)) * invT)
		total += w[i]
	}
	lse := math.Log(total)
	logprob := func(t int) float32 { return float32((float64(logits[t])-float64(mx))*invT - lse) }
	if greedy {
		return int32(best), logprob(best)
	}
	rank := make([]int, V)
	for i := range rank {
		rank[i] = i
	}
	sort.SliceStable(rank, func(a, b int) bool { return w[rank[a]] > w[rank[b]] })
	cand := rank
	if p.TopK > 0 && p.TopK < V {
		cand = cand[:p.TopK]
	}
	if p.TopP < 1 {
		var mass float64
		for _, i := range cand {
			mass += w[i]
		}
		target := p.TopP * mass
		// A token survives while the mass ranked strictly above it is below
		// target; among tokens of equal weight wt with mass M strictly above
		// them all, the first ceil((target − M)/wt) in id order survive.
		keep := 0
		var above float64
		for keep < len(cand) {
			wt := w[cand[keep]]
			end := keep
			for end < len(cand) && w[cand[end]] == wt {
				end++
			}
			if above >= target {
				break
			}
			nEq := int(math.Ceil((target - above) / wt))
			if above == 0 && target <= 0 {
				nEq = 1
			}
			if nEq < end-keep {
				keep += nEq
				break
			}
			for _, i := range cand[keep:end] {
				above += w[i]
			}
			keep = end
		}
		cand = cand[:max(keep, 1)]
	}
	filtered := (p.TopK > 0 && p.TopK < V) || p.TopP < 1 || p.MinP > 0
	kept := make([]bool, V)
	for _, i := range cand {
		if w[i] >= p.MinP { // the largest weight is exp(0) = 1
			kept[i] = true
		}
	}
	var mass float64
	last := best
	for i, k := range kept {
		if k {
			mass += w[i]
			if w[i] > 0 || filtered {
				last = i
			}
		}
	}
	target := u * mass
	var cum float64
	for i, k := range kept {
		if !k {
			continue
		}
		cum += w[i]
		if cum > target {
			return int32(i), logprob(i)
		}
	}
	return int32(last), logprob(last)
}
