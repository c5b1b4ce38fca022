package cpu_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
)

// plCase is one policy-loss input in host memory.
type plCase struct {
	logp, old, roll, ref, adv, mask, ent []float32
	offsets                              []int
	truncated                            []bool
}

func (c *plCase) args(p kernels.PolicyLossParams) *kernels.PolicyLossArgs {
	n := len(c.logp)
	a := &kernels.PolicyLossArgs{
		Logp: cpu.F32(c.logp), OldLogp: cpu.F32(c.old), Adv: cpu.F32(c.adv), Mask: cpu.F32(c.mask),
		DLogp: make(cpu.F32, n), Offsets: c.offsets, Truncated: c.truncated, P: p,
	}
	if c.roll != nil {
		a.RolloutLogp = cpu.F32(c.roll)
	}
	if c.ref != nil {
		a.RefLogp = cpu.F32(c.ref)
	}
	if c.ent != nil {
		a.Entropy = cpu.F32(c.ent)
		a.DEntropy = make(cpu.F32, n)
	}
	return a
}

// TestPolicyLossClipTable checks single tokens against hand-computed
// surrogate values: ε = 0.2, dual clip c = 3, token-mean over one token.
func TestPolicyLossClipTable(t *testing.T) {
	cases := []struct {
		name           string
		rho, adv       float64
		wantLoss, want float64 // loss and dL/dℓ
		low, high, dc  float64 // clip counters
	}{
		{"inside, A>0", 1.1, 1, -1.1, -1.1, 0, 0, 0},
		{"inside, A<0", 0.9, -2, 1.8, 1.8, 0, 0, 0},
		{"above, A>0 clipped", 1.5, 1, -1.2, 0, 0, 1, 0},
		{"above, A<0 unclipped", 1.5, -1, 1.5, 1.5, 0, 0, 0},
		{"below, A<0 clipped", 0.5, -1, 0.8, 0, 1, 0, 0},
		{"below, A>0 unclipped", 0.5, 1, -0.5, -0.5, 0, 0, 0},
		{"dual clip caps at 3|A|", 5, -1, 3, 0, 0, 0, 1},
		{"below dual cap", 2.5, -1, 2.5, 2.5, 0, 0, 0},
		{"zero advantage", 1.7, 0, 0, 0, 0, 0, 0},
	}
	b := cpu.New(1)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := plCase{
				logp: []float32{float32(math.Log(tc.rho))}, old: []float32{0},
				adv: []float32{float32(tc.adv)}, mask: []float32{1}, offsets: []int{0, 1},
			}
			a := c.args(kernels.PolicyLossParams{EpsLow: 0.2, EpsHigh: 0.2, ClipRatioC: 3,
				Norm: kernels.Normalizers{Tokens: 1, Seqs: 1, MaxLen: 1}})
			st := b.PolicyLoss(a)
			const tol = 1e-6
			if math.Abs(st.Loss-tc.wantLoss) > tol {
				t.Errorf("loss %v, want %v", st.Loss, tc.wantLoss)
			}
			if g := float64(cpu.Data(a.DLogp)[0]); math.Abs(g-tc.want) > tol {
				t.Errorf("dL/dℓ %v, want %v", g, tc.want)
			}
			if st.ClipLow != tc.low || st.ClipHigh != tc.high || st.DualClip != tc.dc {
				t.Errorf("clip counts low %v high %v dual %v, want %v %v %v", st.ClipLow, st.ClipHigh, st.DualClip, tc.low, tc.high, tc.dc)
			}
		})
	}
}

// TestPolicyLossAggregationTable uses ρ = 1 everywhere so each token's loss
// is −A, and checks every aggregation mode by hand. Sequence 0 has 1 token
// (A=1), sequence 1 has 3 loss tokens (A=2, 4, 6) and one padding token,
// sequence 2 is truncated with 2 tokens (A=−3, −5).
func TestPolicyLossAggregationTable(t *testing.T) {
	c := plCase{
		logp:      []float32{0, 0, 0, 0, 0, 0, 0},
		old:       []float32{0, 0, 0, 0, 0, 0, 0},
		adv:       []float32{1, 2, 4, 6, 9, -3, -5},
		mask:      []float32{1, 1, 1, 1, 0, 1, 1},
		offsets:   []int{0, 1, 5, 7},
		truncated: []bool{false, false, true},
	}
	c.truncated = []bool{false, false, true}
	const lmax = 4
	cases := []struct {
		name      string
		agg       kernels.AggMode
		maskTrunc bool
		want      float64
	}{
		// (−1 −2 −4 −6 +3 +5)/6
		{"token-mean", kernels.AggTokenMean, false, -5.0 / 6},
		// mean(−1, −12/3, 8/2)
		{"seq-mean-token-mean", kernels.AggSeqMeanTokenMean, false, (-1 - 4 + 4) / 3.0},
		// mean(−1, −12, 8)
		{"seq-mean-token-sum", kernels.AggSeqMeanTokenSum, false, (-1 - 12 + 8) / 3.0},
		// (−1 −12 +8)/(3·4)
		{"seq-mean-token-sum-norm", kernels.AggSeqMeanTokenSumNorm, false, -5.0 / 12},
		// truncated sequence dropped: (−1 −12)/4
		{"token-mean, mask_truncated", kernels.AggTokenMean, true, -13.0 / 4},
		{"seq-mean-token-mean, mask_truncated", kernels.AggSeqMeanTokenMean, true, (-1 - 4) / 2.0},
		{"seq-mean-token-sum, mask_truncated", kernels.AggSeqMeanTokenSum, true, (-1 - 12) / 2.0},
		{"seq-mean-token-sum-norm, mask_truncated", kernels.AggSeqMeanTokenSumNorm, true, -13.0 / 8},
	}
	b := cpu.New(1)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			norm := kernels.Normalizers{Tokens: 6, Seqs: 3, MaxLen: lmax}
			if tc.maskTrunc {
				norm = kernels.Normalizers{Tokens: 4, Seqs: 2, MaxLen: lmax}
			}
			a := c.args(kernels.PolicyLossParams{EpsLow: 0.2, EpsHigh: 0.2, Agg: tc.agg,
				MaskTruncated: tc.maskTrunc, Norm: norm})
			st := b.PolicyLoss(a)
			if math.Abs(st.Loss-tc.want) > 1e-6 {
				t.Errorf("loss %v, want %v", st.Loss, tc.want)
			}
			// At ρ = 1 the loss is linear in ρ with slope −A, so dL/dℓ is
			// the loss divided token by token: Σ dL/dℓ · 1 = loss.
			var sum float64
			for i, g := range cpu.Data(a.DLogp) {
				sum += float64(g)
				if c.mask[i] == 0 && g != 0 {
					t.Errorf("padding token %d has gradient %v", i, g)
				}
			}
			if math.Abs(sum-tc.want) > 1e-6 {
				t.Errorf("Σ dL/dℓ %v, want %v", sum, tc.want)
			}
		})
	}
}

// plRandom draws a batch whose ratios stay clear of the clip boundaries by
// more than the finite-difference step, so the loss is smooth there.
func plRandom(r *rand.Rand, lens []int) plCase {
	var c plCase
	c.offsets = []int{0}
	for _, n := range lens {
		for range n {
			old := float32(-3 * r.Float64())
			var lr float64
			for {
				lr = 0.6 * (r.Float64() - 0.5)
				rho := math.Exp(lr)
				if math.Abs(rho-0.8) > 0.02 && math.Abs(rho-1.2) > 0.02 {
					break
				}
			}
			c.old = append(c.old, old)
			c.logp = append(c.logp, old+float32(lr))
			c.roll = append(c.roll, old+float32(0.4*(r.Float64()-0.5)))
			c.ref = append(c.ref, old+float32(r.NormFloat64()*0.5))
			c.adv = append(c.adv, float32(r.NormFloat64()))
			c.ent = append(c.ent, float32(2*r.Float64()))
			m := float32(1)
			if r.IntN(5) == 0 {
				m = 0
			}
			c.mask = append(c.mask, m)
		}
		c.offsets = append(c.offsets, len(c.logp))
		c.truncated = append(c.truncated, r.IntN(3) == 0)
	}
	return c
}

// TestPolicyLossFiniteDifferences checks dL/dℓ and dL/dH of every
// objective variant against central differences of the kernel's own
// float64 loss (step 2⁻¹⁰ on ℓ, tolerance 1e-4 absolute on gradients of
// order 1e-2).
func TestPolicyLossFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := plRandom(r, []int{3, 5, 1, 4})
	norm := kernels.Normalizers{Tokens: 30, Seqs: 6, MaxLen: 5}
	type variant struct {
		name string
		p    kernels.PolicyLossParams
		tis  bool
	}
	var vs []variant
	for _, agg := range []kernels.AggMode{kernels.AggTokenMean, kernels.AggSeqMeanTokenMean, kernels.AggSeqMeanTokenSum, kernels.AggSeqMeanTokenSumNorm} {
		for _, kl := range []kernels.KLEstimator{kernels.KLK1, kernels.KLK2, kernels.KLK3} {
			vs = append(vs, variant{"agg/kl", kernels.PolicyLossParams{EpsLow: 0.2, EpsHigh: 0.2, ClipRatioC: 3,
				Beta: 0.3, KL: kl, EntropyCoef: 0.01, Agg: agg, Norm: norm}, false})
		}
		vs = append(vs, variant{"tis+dapo", kernels.PolicyLossParams{EpsLow: 0.2, EpsHigh: 0.28, TISCap: 1.1,
			MaskTruncated: true, Agg: agg, Norm: norm}, true})
	}
	b := cpu.New(2)
	const h = 1.0 / 1024
	for _, v := range vs {
		cc := c
		if !v.tis {
			cc.roll = nil
		}
		a := cc.args(v.p)
		base := b.PolicyLoss(a)
		if base.Tokens == 0 {
			t.Fatal("no loss tokens drawn")
		}
		g := append([]float32(nil), cpu.Data(a.DLogp)...)
		ge := append([]float32(nil), cpu.Data(a.DEntropy)...)
		for i := range cc.logp {
			fd := func(x []float32) float64 {
				keep := x[i]
				x[i] = keep + h
				up := b.PolicyLoss(cc.args(v.p)).Loss
				x[i] = keep - h
				down := b.PolicyLoss(cc.args(v.p)).Loss
				x[i] = keep
				return (up - down) / (2 * h)
			}
			if want := fd(cc.logp); math.Abs(float64(g[i])-want) > 1e-4 {
				t.Errorf("%s agg %d kl %d: dL/dℓ[%d] = %v, finite difference %v", v.name, v.p.Agg, v.p.KL, i, g[i], want)
			}
			if want := fd(cc.ent); math.Abs(float64(ge[i])-want) > 1e-6 {
				t.Errorf("%s agg %d: dL/dH[%d] = %v, finite difference %v", v.name, v.p.Agg, i, ge[i], want)
			}
		}
	}
}

// TestPolicyLossKLEstimators checks the three estimators at x = ℓ_ref − ℓ
// = 0.5 against their closed forms, with β = 1 and A = 0.
func TestPolicyLossKLEstimators(t *testing.T) {
	x := 0.5
	cases := []struct {
		est     kernels.KLEstimator
		kl, dkl float64
	}{
		{kernels.KLK1, -x, 1},
		{kernels.KLK2, x * x / 2, -x},
		{kernels.KLK3, math.Exp(x) - x - 1, 1 - math.Exp(x)},
	}
	b := cpu.New(1)
	for _, tc := range cases {
		c := plCase{logp: []float32{-1}, old: []float32{-1}, ref: []float32{float32(-1 + x)},
			adv: []float32{0}, mask: []float32{1}, offsets: []int{0, 1}}
		a := c.args(kernels.PolicyLossParams{EpsLow: 0.2, EpsHigh: 0.2, Beta: 1, KL: tc.est,
			Norm: kernels.Normalizers{Tokens: 1, Seqs: 1, MaxLen: 1}})
		st := b.PolicyLoss(a)
		if math.Abs(st.Loss-tc.kl) > 1e-6 || math.Abs(st.KL-tc.kl) > 1e-6 {
			t.Errorf("estimator %d: loss %v kl %v, want %v", tc.est, st.Loss, st.KL, tc.kl)
		}
		if g := float64(cpu.Data(a.DLogp)[0]); math.Abs(g-tc.dkl) > 1e-6 {
			t.Errorf("estimator %d: gradient %v, want %v", tc.est, g, tc.dkl)
		}
	}
}

// TestPolicyLossThreadsAgree checks that the split across threads changes
// neither the gradients (bit for bit) nor the sums (beyond rounding).
func TestPolicyLossThreadsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	lens := make([]int, 64)
	for i := range lens {
		lens[i] = 200 + r.IntN(300)
	}
	c := plRandom(r, lens)
	p := kernels.PolicyLossParams{EpsLow: 0.2, EpsHigh: 0.28, ClipRatioC: 3, Beta: 0.1, KL: kernels.KLK3,
		EntropyCoef: 0.01, Norm: kernels.Normalizers{Tokens: float64(len(c.logp)), Seqs: 64, MaxLen: 500}}
	a1, a4 := c.args(p), c.args(p)
	s1, s4 := cpu.New(1).PolicyLoss(a1), cpu.New(4).PolicyLoss(a4)
	for i, g := range cpu.Data(a1.DLogp) {
		if g != cpu.Data(a4.DLogp)[i] {
			t.Fatalf("token %d: %v with 1 thread, %v with 4", i, g, cpu.Data(a4.DLogp)[i])
		}
	}
	if math.Abs(s1.Loss-s4.Loss) > 1e-12 || s1.Tokens != s4.Tokens || s1.ClipHigh != s4.ClipHigh {
		t.Errorf("stats differ: %+v vs %+v", s1, s4)
	}
}
