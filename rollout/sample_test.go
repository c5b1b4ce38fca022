package rollout

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// referenceDist is the filtered, renormalised sampling distribution written
// straight from the definitions: penalty, temperature, then top_k, top_p
// and min_p on a fully sorted vocabulary.
func referenceDist(logits []float32, p Sampling, seen []int32) []float64 {
	V := len(logits)
	z := make([]float64, V)
	for i, v := range logits {
		z[i] = float64(v)
	}
	if p.RepetitionPenalty != 1 {
		for _, id := range seen {
			if z[id] > 0 {
				z[id] /= p.RepetitionPenalty
			} else {
				z[id] *= p.RepetitionPenalty
			}
		}
	}
	prob := softmax(z, 1/p.Temperature)
	order := make([]int, V)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return prob[order[a]] > prob[order[b]] })
	keep := make([]bool, V)
	for r, id := range order {
		keep[id] = p.TopK <= 0 || r < p.TopK
	}
	renorm := func() {
		var s float64
		for i := range prob {
			if !keep[i] {
				prob[i] = 0
			}
			s += prob[i]
		}
		for i := range prob {
			prob[i] /= s
		}
	}
	renorm()
	if p.TopP < 1 {
		var cum float64
		for r, id := range order {
			if r > 0 && cum >= p.TopP {
				keep[id] = false
			}
			cum += prob[id]
		}
		renorm()
	}
	if p.MinP > 0 {
		pmax := prob[order[0]]
		for i := range prob {
			if prob[i] < p.MinP*pmax {
				keep[i] = false
			}
		}
		renorm()
	}
	return prob
}

func softmax(z []float64, scale float64) []float64 {
	mx := slices.Max(z)
	out := make([]float64, len(z))
	var s float64
	for i, v := range z {
		out[i] = math.Exp((v - mx) * scale)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

// chiSquareCritical approximates the 99.9% quantile of χ² with df degrees
// of freedom (Wilson–Hilferty).
func chiSquareCritical(df int) float64 {
	k := float64(df)
	a := 2 / (9 * k)
	return k * math.Pow(1-a+3.090*math.Sqrt(a), 3)
}

// chiSquare compares counts of n draws with a distribution; it reports
// the statistic, the degrees of freedom, and whether a token of zero
// probability was drawn.
func chiSquare(counts []int, prob []float64, n int) (stat float64, df int, impossible bool) {
	for i, c := range counts {
		if prob[i] == 0 {
			impossible = impossible || c > 0
			continue
		}
		e := prob[i] * float64(n)
		stat += (float64(c) - e) * (float64(c) - e) / e
		df++
	}
	return stat, df - 1, impossible
}

// TestSamplingMatchesFilteredDistribution draws 40000 tokens from fixed
// logits for each filter and their combination and runs a χ² test (99.9%
// level, fixed seed) against the reference distribution. Each case must
// also reject the plain softmax(z) (where it differs), so the test can
// tell them apart.
func TestSamplingMatchesFilteredDistribution(t *testing.T) {
	logits := []float32{0.5, 2.0, -1.0, 1.2, -3.0, 1.5, 0.0, -0.2, 1.0, -1.5, 0.3, -0.5}
	seen := []int32{1, 2, 8} // a positive, a negative and a mid logit
	cases := []struct {
		name string
		p    Sampling
	}{
		{"temperature 1", Sampling{Temperature: 1, TopP: 1, RepetitionPenalty: 1}},
		{"temperature 0.6", Sampling{Temperature: 0.6, TopP: 1, RepetitionPenalty: 1}},
		{"temperature 1.7", Sampling{Temperature: 1.7, TopP: 1, RepetitionPenalty: 1}},
		{"top_k 4", Sampling{Temperature: 1, TopK: 4, TopP: 1, RepetitionPenalty: 1}},
		{"top_p 0.8", Sampling{Temperature: 1, TopP: 0.8, RepetitionPenalty: 1}},
		{"min_p 0.2", Sampling{Temperature: 1, TopP: 1, MinP: 0.2, RepetitionPenalty: 1}},
		{"combined", Sampling{Temperature: 0.8, TopK: 7, TopP: 0.9, MinP: 0.08, RepetitionPenalty: 1}},
		{"repetition penalty 1.5", Sampling{Temperature: 1, TopP: 1, RepetitionPenalty: 1.5}},
	}
	const n = 40000
	unfiltered := referenceDist(logits, Sampling{Temperature: 1, TopP: 1, RepetitionPenalty: 1}, nil)
	var s Sampler
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := referenceDist(logits, tc.p, seen)
			counts := make([]int, len(logits))
			z := make([]float64, len(logits))
			for i, v := range logits {
				z[i] = float64(v)
			}
			policy := softmax(z, tc.p.InvTemp())
			for step := range n {
				tok, lp := s.Sample(logits, tc.p, Uniform(42, uint64(ci), 0, uint64(step)), seen)
				counts[tok]++
				if d := math.Abs(float64(lp) - math.Log(policy[tok])); d > 1e-6 {
					t.Fatalf("log-prob of %d is %g, want log softmax(z/T) = %g", tok, lp, math.Log(policy[tok]))
				}
			}
			stat, df, impossible := chiSquare(counts, want, n)
			crit := chiSquareCritical(df)
			t.Logf("χ² = %.1f with %d df (99.9%% critical %.1f); counts %v", stat, df, crit, counts)
			if impossible {
				t.Fatalf("drew a filtered-out token: counts %v, want %v", counts, want)
			}
			if stat > crit {
				t.Fatalf("χ² = %.1f > %.1f: counts %v do not match %v", stat, crit, counts, want)
			}
			same := true
			for i := range want {
				same = same && math.Abs(want[i]-unfiltered[i]) < 1e-12
			}
			if wrong, wdf, imp := chiSquare(counts, unfiltered, n); !same && !imp && wrong < chiSquareCritical(wdf) {
				t.Fatalf("the unfiltered distribution fits as well (χ² = %.1f): the test has no power", wrong)
			}
		})
	}
}

// TestFilterKeepsReferenceSet compares the kept token set with the
// reference on larger random vocabularies, where top_p prunes before
// sorting and top_k uses a heap.
func TestFilterKeepsReferenceSet(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	var s Sampler
	for trial := range 200 {
		V := 50 + r.IntN(2000)
		logits := make([]float32, V)
		for i := range logits {
			logits[i] = float32(r.NormFloat64() * (0.5 + 3*r.Float64()))
		}
		p := Sampling{Temperature: 0.3 + 1.5*r.Float64(), TopP: 1, RepetitionPenalty: 1}
		switch trial % 4 {
		case 0:
			p.TopK = 1 + r.IntN(V)
		case 1:
			p.TopP = 0.05 + 0.9*r.Float64()
		case 2:
			p.MinP = 0.3 * r.Float64()
		default:
			p.TopK, p.TopP, p.MinP = 1+r.IntN(V), 0.05+0.95*r.Float64(), 0.2*r.Float64()
		}
		want := referenceDist(logits, p, nil)
		w := make([]float64, V)
		mx := slices.Max(logits)
		for i, v := range logits {
			w[i] = math.Exp(float64(v-mx) / p.Temperature)
		}
		got := s.filter(w, p)
		var wantSet []int32
		for i, q := range want {
			if q > 0 {
				wantSet = append(wantSet, int32(i))
			}
		}
		if !slices.Equal(got, wantSet) {
			t.Fatalf("trial %d (V=%d, %+v): kept %d tokens, reference keeps %d", trial, V, p, len(got), len(wantSet))
		}
	}
}

func TestGreedyPicksArgmaxLowestOnTies(t *testing.T) {
	var s Sampler
	cases := []struct {
		logits []float32
		want   int32
	}{
		{[]float32{0, 3, 1, 3}, 1},
		{[]float32{5, 1, 5}, 0},
		{[]float32{-2, -1, -3}, 1},
	}
	for _, tc := range cases {
		tok, lp := s.Sample(tc.logits, Sampling{TopP: 1, RepetitionPenalty: 1}, 0.99, nil)
		z := make([]float64, len(tc.logits))
		for i, v := range tc.logits {
			z[i] = float64(v)
		}
		if tok != tc.want || math.Abs(float64(lp)-math.Log(softmax(z, 1)[tok])) > 1e-6 {
			t.Errorf("greedy on %v: got %d (log-prob %g), want %d", tc.logits, tok, lp, tc.want)
		}
	}
	// The penalty changes the argmax but not the recorded log-prob.
	tok, _ := s.Sample([]float32{2, 1.5}, Sampling{TopP: 1, RepetitionPenalty: 2}, 0, []int32{0})
	if tok != 1 {
		t.Errorf("greedy with penalty 2 on token 0: got %d, want 1", tok)
	}
}

func TestUniformIsStatelessAndSpread(t *testing.T) {
	if Uniform(1, 2, 3, 4) != Uniform(1, 2, 3, 4) {
		t.Fatal("same coordinates, different draws")
	}
	seenDraws := map[float64]bool{}
	for _, c := range [][4]uint64{{1, 2, 3, 4}, {1, 3, 2, 4}, {2, 2, 3, 4}, {1, 2, 3, 5}, {1, 2, 4, 3}, {0, 0, 0, 0}} {
		u := Uniform(c[0], c[1], c[2], c[3])
		if u < 0 || u >= 1 || seenDraws[u] {
			t.Fatalf("draw %v = %g repeats or is out of [0,1)", c, u)
		}
		seenDraws[u] = true
	}
	// 16 bins over consecutive steps and over consecutive sample indices.
	for _, vary := range []string{"step", "sample"} {
		const n, bins = 64000, 16
		counts := make([]int, bins)
		for i := range uint64(n) {
			u := Uniform(5, 1, i, 0)
			if vary == "step" {
				u = Uniform(5, 1, 0, i)
			}
			counts[int(u*bins)]++
		}
		flat := make([]float64, bins)
		for i := range flat {
			flat[i] = 1.0 / bins
		}
		if stat, df, _ := chiSquare(counts, flat, n); stat > chiSquareCritical(df) {
			t.Errorf("varying %s: χ² = %.1f over %d bins: %v", vary, stat, bins, counts)
		}
	}
}
