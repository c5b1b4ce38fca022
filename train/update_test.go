package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rltrain/rltrain/kernels"
)

// TestUpdateMatchesTwoCallReference checks a policy update micro-batch —
// one-pass output layer over the completion rows only, in the compact
// token layout — against the straightforward path: log-probs of every row,
// PolicyLoss in the row layout, then the output layer's backward. Loss to
// 1e-6 relative, every parameter gradient to 1e-5 of the largest, over
// objectives with KL to a reference, entropy bonus, TIS, truncation masks,
// an excluded sequence, on- and off-policy ℓ_old.
func TestUpdateMatchesTwoCallReference(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sets    []string
		haveOld bool
	}{
		{"grpo on-policy", nil, false},
		{"kl+entropy seq-mean-token-mean", []string{"algorithm.beta=0.05", "algorithm.kl_estimator=k2", "algorithm.entropy_coef=0.02", "algorithm.loss_agg_mode=seq-mean-token-mean"}, true},
		{"dapo tis", []string{"algorithm.epsilon_high=0.28", "algorithm.tis_cap=2", "algorithm.mask_truncated=true", "algorithm.loss_agg_mode=seq-mean-token-sum-norm"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parseConfig(t, tinyYAML(t.TempDir()), tc.sets...)
			tr, err := New(c, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			m := tr.pol.Model
			r := rand.New(rand.NewPCG(3, 4))
			vocab := m.Cfg.Vocab
			var idx []int
			for i, shape := range [][2]int{{3, 4}, {5, 2}, {2, 6}, {4, 1}, {6, 3}} {
				s := &seq{prompt: shape[0], group: i / 2, adv: float32(r.NormFloat64()), truncated: i == 2, excluded: i == 3}
				for range shape[0] + shape[1] {
					s.ids = append(s.ids, int32(r.IntN(vocab)))
				}
				for range shape[1] {
					l := float32(-math.Log(float64(vocab)) + 0.3*r.NormFloat64())
					s.oldLogp = append(s.oldLogp, l)
					s.refLogp = append(s.refLogp, l+float32(0.2*r.NormFloat64()))
					s.rolloutLogp = append(s.rolloutLogp, l+float32(0.2*r.NormFloat64()))
				}
				tr.cur = append(tr.cur, s)
				idx = append(idx, i)
			}
			norm := tr.normalizers(idx)
			invTemp := float32(1 / 0.8)

			m.EnableGrads()
			m.ZeroGrads()
			st, _, err := tr.updateMicro(idx, norm, 3, tc.haveOld, invTemp)
			if err != nil {
				t.Fatal(err)
			}
			got := download(tr.be, m.Grads)

			m.ZeroGrads()
			want, wantLoss := twoCallUpdate(t, tr, idx, norm, tc.haveOld, invTemp)
			if math.Abs(st.Loss-wantLoss) > 1e-6*math.Max(1, math.Abs(wantLoss)) || st.Loss == 0 {
				t.Errorf("loss %v, reference %v", st.Loss, wantLoss)
			}
			var num, den float64
			for i := range want {
				num = math.Max(num, math.Abs(float64(got[i]-want[i])))
				den = math.Max(den, math.Abs(float64(want[i])))
			}
			if den == 0 || num > 1e-5*den {
				t.Errorf("gradients differ by %.3g (largest %.3g)", num, den)
			}
		})
	}
}

// twoCallUpdate is the reference: every row's log-prob, PolicyLoss over
// the row layout, TokenLogProbsBackward, trunk backward.
func twoCallUpdate(t *testing.T, tr *Trainer, idx []int, norm kernels.Normalizers, haveOld bool, invTemp float32) ([]float32, float64) {
	be, m := tr.be, tr.pol.Model
	var seqs []*seq
	for _, i := range idx {
		seqs = append(seqs, tr.cur[i])
	}
	rb := newRowBatch(seqs)
	if _, err := m.Forward(tr.ws, rb.batch); err != nil {
		t.Fatal(err)
	}
	logp, ent := m.TokenLogProbs(tr.ws, rb.targets, invTemp, true)
	params, err := tr.alg.PolicyParams(norm)
	if err != nil {
		t.Fatal(err)
	}
	old := logp
	if haveOld {
		old = rb.scatter(func(s *seq) []float32 { return s.oldLogp })
	}
	var truncated []bool
	for _, s := range seqs {
		truncated = append(truncated, s.truncated)
	}
	n := rb.rows()
	args := &kernels.PolicyLossArgs{
		Logp: upload(be, logp), OldLogp: upload(be, old), Mask: upload(be, rb.mask()), DLogp: be.Alloc(n),
		Adv:     upload(be, rb.scatter(func(s *seq) []float32 { return constant(s.adv, s.completionLen()) })),
		Entropy: upload(be, ent), Offsets: rb.offsets(), Truncated: truncated, P: params,
		RefLogp:     upload(be, rb.scatter(func(s *seq) []float32 { return s.refLogp })),
		RolloutLogp: upload(be, rb.scatter(func(s *seq) []float32 { return s.rolloutLogp })),
	}
	if params.EntropyCoef != 0 {
		args.DEntropy = be.Alloc(n)
	}
	if params.Beta == 0 {
		args.RefLogp = nil
	}
	st := be.PolicyLoss(args)
	var dent []float32
	if args.DEntropy != nil {
		dent = download(be, args.DEntropy)
	}
	m.BackwardLogProbs(tr.ws, download(be, args.DLogp), dent)
	return download(be, m.Grads), st.Loss
}
