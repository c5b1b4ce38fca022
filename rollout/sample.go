package rollout

import (
	"math"
	"slices"
)

// Sampling holds the per-token sampling parameters, options of the
// `rollout` section (rollout.Config embeds it).
type Sampling struct {
	// Temperature 0 samples the argmax (lowest id on ties), as vLLM does.
	Temperature float64 `yaml:"temperature" default:"1.0" doc:"Sampling temperature; 0 samples greedily."`
	TopP        float64 `yaml:"top_p" default:"1.0" doc:"Nucleus sampling: keep the smallest token set with this much probability; 1 disables."`
	TopK        int     `yaml:"top_k" default:"0" doc:"Keep only the k most likely tokens; 0 (or -1) disables."`
	MinP        float64 `yaml:"min_p" default:"0" doc:"Drop tokens less likely than min_p times the most likely one; 0 disables."`
	// RepetitionPenalty is CTRL/Hugging Face style, over the prompt and
	// the completion so far.
	RepetitionPenalty float64 `yaml:"repetition_penalty" default:"1.0" doc:"Divide positive (multiply negative) logits of tokens already present; 1 disables."`
}

// Greedy reports whether tokens are chosen by argmax.
func (s Sampling) Greedy() bool { return s.Temperature == 0 }

// InvTemp is the factor the recorded log-probs scale the logits by: 1/T, or
// 1 when greedy. A trainer passes it as model.Output.InvTemp.
func (s Sampling) InvTemp() float64 {
	if s.Greedy() {
		return 1
	}
	return 1 / s.Temperature
}

// Sampler draws tokens from logits rows. It holds scratch memory, so each
// goroutine needs its own; the result depends only on the arguments.
type Sampler struct {
	w    []float64 // unnormalised sampling weights exp((z'-max z)/T)
	cand []int32   // candidate token ids
	// top_p scratch: mass and members of each weight bucket
	bucketMass []float64
	bucketKey  []int32
	cross      []int32
}

// Sample picks a token from one row of raw logits using the uniform draw u
// in [0, 1), after applying, in this order (as Hugging Face does): the
// repetition penalty to the ids in seen, temperature, top_k, top_p and
// min_p. It returns the token and its log-prob under log softmax(logits ·
// InvTemp()), the unpenalised, unfiltered distribution (see the package
// documentation). seen must hold distinct ids; it is ignored when the
// penalty is 1.
func (s *Sampler) Sample(logits []float32, p Sampling, u float64, seen []int32) (int32, float32) {
	penal := p.RepetitionPenalty != 1 && len(seen) > 0
	if p.Greedy() && !penal {
		return greedyRow(logits)
	}
	V := len(logits)
	invT := p.InvTemp()
	mx, vec := rowMax(logits)
	if !vec {
		best := 0 // argmax of the raw logits, lowest id on ties
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		mx = logits[best]
	}
	fmx := float64(mx)
	if cap(s.w) < V {
		s.w = make([]float64, V)
	}
	w := s.w[:V]
	sum, vec := expWeights(w, logits, mx, invT)
	if !vec {
		for i, v := range logits {
			e := expNonPos((float64(v) - fmx) * invT)
			w[i] = e
			sum += e
		}
	}
	lse := fmx + math.Log(sum)/invT // log Σ exp(z/T) = max + T·log Σ exp((z-max)/T)
	logprob := func(tok int32) float32 { return float32((float64(logits[tok]) - lse) * invT) }

	if penal {
		for _, id := range seen {
			// A penalty below 1 can raise a logit above the maximum, so
			// the argument may be positive here.
			w[id] = math.Exp((float64(penalize(logits[id], p.RepetitionPenalty)) - fmx) * invT)
		}
	}
	if p.Greedy() {
		best := 0
		for i := 1; i < V; i++ {
			if w[i] > w[best] {
				best = i
			}
		}
		return int32(best), logprob(int32(best))
	}
	cand := s.filter(w, p)
	var total float64
	switch {
	case cand == nil && !penal:
		// Every weight is the one summed above: no second pass. The scan
		// below adds them in another order, so its running sum may end a
		// rounding short of target; it then returns the last token.
		total = sum
	case cand == nil:
		for _, x := range w {
			total += x
		}
	default:
		for _, id := range cand {
			total += w[id]
		}
	}
	target := u * total
	var cum float64
	if cand == nil {
		last := 0
		for i, x := range w {
			if x == 0 {
				continue
			}
			cum += x
			last = i
			if cum > target {
				return int32(i), logprob(int32(i))
			}
		}
		return int32(last), logprob(int32(last)) // rounding left target ≥ the sum
	}
	for _, id := range cand {
		cum += w[id]
		if cum > target {
			return id, logprob(id)
		}
	}
	last := cand[len(cand)-1]
	return last, logprob(last)
}

// greedyRowScalar returns the argmax of logits (the lowest id on ties)
// and its log-probability: greedy decoding needs only the normaliser, no
// weights to keep.
func greedyRowScalar(logits []float32) (int32, float32) {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	fmx := float64(logits[best])
	var sum float64
	for _, v := range logits {
		sum += expNonPos(float64(v) - fmx)
	}
	return int32(best), float32(float64(logits[best]) - fmx - math.Log(sum))
}

// penalize applies the CTRL repetition penalty to one logit.
func penalize(v float32, penalty float64) float32 {
	if v > 0 {
		return float32(float64(v) / penalty)
	}
	return float32(float64(v) * penalty)
}

// ranksBefore orders tokens by decreasing weight, lower id first on ties.
func ranksBefore(w []float64, a, b int32) bool {
	if w[a] != w[b] {
		return w[a] > w[b]
	}
	return a < b
}

// filter applies top_k, top_p and min_p to the weights and returns the
// surviving ids in increasing order, or nil when no filter is active (every
// token survives).
func (s *Sampler) filter(w []float64, p Sampling) []int32 {
	V := len(w)
	topK := p.TopK > 0 && p.TopK < V
	topP := p.TopP < 1
	minP := p.MinP > 0
	if !topK && !topP && !minP {
		return nil
	}
	cand := s.cand[:0]
	if topK {
		cand = topKHeap(cand, w, p.TopK)
	} else {
		for i := range w {
			cand = append(cand, int32(i))
		}
	}
	if topP {
		var total float64
		for _, id := range cand {
			total += w[id]
		}
		cand = s.topP(cand, w, p.TopP*total)
	}
	if minP {
		var wmax float64
		for _, id := range cand {
			wmax = max(wmax, w[id])
		}
		kept := cand[:0]
		for _, id := range cand {
			if w[id] >= p.MinP*wmax {
				kept = append(kept, id)
			}
		}
		cand = kept
	}
	slices.Sort(cand)
	s.cand = cand
	return cand
}

// topKHeap appends to dst the k ids ranked first by ranksBefore, using a
// heap whose root is the worst id kept so far.
func topKHeap(dst []int32, w []float64, k int) []int32 {
	h := dst[:0]
	worse := func(a, b int32) bool { return ranksBefore(w, b, a) } // a ranks after b
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			c := l
			if r := l + 1; r < len(h) && worse(h[r], h[l]) {
				c = r
			}
			if !worse(h[c], h[i]) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := range w {
		id := int32(i)
		if len(h) < k {
			h = append(h, id)
			for j := len(h) - 1; j > 0; {
				parent := (j - 1) / 2
				if !worse(h[j], h[parent]) {
					break
				}
				h[j], h[parent] = h[parent], h[j]
				j = parent
			}
			continue
		}
		if ranksBefore(w, id, h[0]) {
			h[0] = id
			down(0)
		}
	}
	return h
}

// topPBuckets is the number of weight buckets topP sorts tokens into: 8 per
// octave below the largest weight, the last one catching the rest.
const topPBuckets = 8*64 + 1

// bucketOf maps a positive weight to its bucket below the key of the
// largest weight: the float64 exponent and top 3 mantissa bits, which
// order weights like the weights themselves.
func bucketOf(x float64, top int64) int {
	d := top - int64(math.Float64bits(x)>>49)
	return int(min(max(d, 0), topPBuckets-1))
}

// topP returns the candidates ranked (by ranksBefore) before the point
// where the mass ranked strictly above a token reaches target: the
// smallest top set holding target (and at least one token). Instead of
// sorting every candidate it buckets them by weight, finds the bucket where
// the running mass crosses target, and sorts only that bucket.
func (s *Sampler) topP(cand []int32, w []float64, target float64) []int32 {
	var wmax float64
	for _, id := range cand {
		wmax = max(wmax, w[id])
	}
	if wmax == 0 {
		return cand[:1]
	}
	top := int64(math.Float64bits(wmax) >> 49)
	if cap(s.bucketMass) < topPBuckets {
		s.bucketMass = make([]float64, topPBuckets)
	}
	mass := s.bucketMass[:topPBuckets]
	clear(mass)
	if cap(s.bucketKey) < len(w) {
		s.bucketKey = make([]int32, len(w))
	}
	key := s.bucketKey[:len(w)]
	for _, id := range cand {
		b := bucketOf(w[id], top)
		key[id] = int32(b)
		mass[b] += w[id]
	}
	// Buckets wholly above the crossing bucket are kept entirely.
	var above float64
	crossing := topPBuckets - 1
	for b, m := range mass {
		if above+m >= target {
			crossing = b
			break
		}
		above += m
	}
	kept := cand[:0]
	cross := s.cross[:0]
	for _, id := range cand {
		switch b := int(key[id]); {
		case b < crossing:
			kept = append(kept, id)
		case b == crossing:
			cross = append(cross, id)
		}
	}
	slices.SortFunc(cross, func(a, b int32) int {
		if ranksBefore(w, a, b) {
			return -1
		}
		return 1
	})
	cum := above
	for _, id := range cross {
		if len(kept) > 0 && cum >= target {
			break
		}
		kept = append(kept, id)
		cum += w[id]
	}
	s.cross = cross
	return kept
}
