package cuda

import (
	"fmt"
	"math"
	"math/bits"
	"sort"

	"github.com/rltrain/rltrain/kernels"
)

// SampleParams are the per-call sampling parameters of Backend.Sample.
type SampleParams struct {
	// Temperature divides the logits; 0 picks the argmax (lowest id on
	// ties).
	Temperature float32
	// TopK keeps the K highest-ranked tokens; 0 (or ≥ vocab) disables it.
	TopK int
	// TopP keeps the smallest top-ranked set whose mass reaches TopP of
	// the candidates' mass; 1 disables it.
	TopP float32
	// MinP keeps tokens whose weight is at least MinP times the largest;
	// 0 disables it.
	MinP float32
}

// Sample draws one token per row of logits[rows, vocab] on the device and
// returns it with its log-probability under softmax(logits/T) (unfiltered).
// Row r's uniform draw is Philox4x32-10 at counter counters[r] under key
// seed (PhiloxUniform), so a (seed, counter) pair gives the same token on
// every device. Tokens rank by weight, lower id first on ties; top-k, then
// top-p, then min-p filter; the kept tokens are sampled by inverse CDF in
// id order. SampleReference is the host definition.
func (b *Backend) Sample(tokens []int32, logprobs []float32, logits kernels.Buf, rows, vocab int, p SampleParams, seed uint64, counters []uint64) {
	if rows == 0 {
		return
	}
	if len(tokens) < rows || len(logprobs) < rows || len(counters) < rows || logits.Len() < rows*vocab {
		panic(fmt.Sprintf("cuda: sample of %d rows with %d tokens, %d log-probs, %d counters, %d logits", rows, len(tokens), len(logprobs), len(counters), logits.Len()))
	}
	ctr := b.temp(8 * rows)
	out := b.temp(8 * rows) // tokens then log-probs
	defer b.release(ctr, out)
	b.must("upload", b.drv.CopyHtoD(ctr, bytesOf(counters[:rows])))
	greedy, invT := 0, float32(0)
	if p.Temperature == 0 {
		greedy = 1
	} else {
		invT = 1 / p.Temperature
	}
	b.launch("sample_rows", D1(rows), D1(256), 0, ArgPtr(out), ArgPtr(out+DevPtr(4*rows)), ArgPtr(dev(logits)), ArgInt(vocab),
		ArgPtr(ctr), uint64(seed), ArgInt(greedy), ArgF32(invT), ArgInt(p.TopK), ArgF32(p.TopP), ArgF32(p.MinP))
	b.must("download", b.drv.CopyDtoH(bytesOf(tokens[:rows]), out))
	b.must("download", b.drv.CopyDtoH(bytesOf(logprobs[:rows]), out+DevPtr(4*rows)))
}

// PhiloxUniform is a float64 in [0, 1) with 53 bits from Philox4x32-10 at
// counter (ctr, 0) under key seed, as the device computes it.
func PhiloxUniform(seed, ctr uint64) float64 {
	x := Philox4x32([4]uint32{uint32(ctr), uint32(ctr >> 32)}, [2]uint32{uint32(seed), uint32(seed >> 32)})
	return float64(uint64(x[0]>>5)<<26|uint64(x[1]>>6)) * 0x1p-53
}

// Philox4x32 is the Philox4x32-10 block function of Salmon et al. (2011).
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	c0, c1, c2, c3 := ctr[0], ctr[1], ctr[2], ctr[3]
	k0, k1 := key[0], key[1]
	for r := 0; r < 10; r++ {
		hi0, lo0 := bits.Mul32(0xD2511F53, c0)
		hi1, lo1 := bits.Mul32(0xCD9E8D57, c2)
		c0, c1, c2, c3 = hi1^c1^k0, lo1, hi0^c3^k1, lo0
		k0 += 0x9E3779B9
		k1 += 0xBB67AE85
	}
	return [4]uint32{c0, c1, c2, c3}
}

// SampleReference is the host definition of Sample for one row.
func SampleReference(logits []float32, p SampleParams, u float64) (int32, float32) {
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
		invT = float64(1 / p.Temperature)
	}
	w := make([]float64, V)
	var total float64
	for i, v := range logits {
		w[i] = math.Exp(float64(v-mx) * invT)
		total += w[i]
	}
	lse := math.Log(total)
	logprob := func(t int) float32 { return float32(float64(logits[t]-mx)*invT - lse) }
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
		target := float64(p.TopP) * mass
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
	kept := make([]bool, V)
	for _, i := range cand {
		if w[i] >= float64(p.MinP) {
			kept[i] = true
		}
	}
	var mass float64
	last := best
	for i, k := range kept {
		if k {
			mass += w[i]
			last = i
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
