package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/model"
)

// TestUpdateMatchesTwoCallReference checks a policy update micro-batch —
// one-pass output layer over the completion rows only, in the compact
// token layout — against the straightforward path: log-probs of every row,
// PolicyLoss in the row layout, then the output layer's backward. Loss to
// 1e-6 relative, every parameter gradient to 1e-5 of the largest, over
// objectives with KL to a reference, entropy bonus, TIS, truncation masks,
// an excluded sequence, on- and off-policy ℓ_old, and GSPO's sequence
// ratios (computed here from the downloaded log-probs).
func TestUpdateMatchesTwoCallReference(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sets    []string
		haveOld bool
	}{
		{"grpo on-policy", nil, false},
		{"kl+entropy seq-mean-token-mean", []string{"algorithm.beta=0.05", "algorithm.kl_estimator=k2", "algorithm.entropy_coef=0.02", "algorithm.loss_agg_mode=seq-mean-token-mean"}, true},
		{"dapo tis", []string{"algorithm.epsilon_high=0.28", "algorithm.tis_cap=2", "algorithm.mask_truncated=true", "algorithm.loss_agg_mode=seq-mean-token-sum-norm"}, true},
		{"gspo on-policy", []string{"algorithm.importance_sampling_level=sequence"}, false},
		{"gspo tis", []string{"algorithm.importance_sampling_level=sequence", "algorithm.epsilon=0.05", "algorithm.tis_cap=2", "algorithm.loss_agg_mode=seq-mean-token-mean"}, true},
		{"gspo-token kl", []string{"algorithm.importance_sampling_level=sequence_token", "algorithm.epsilon=0.05", "algorithm.beta=0.05"}, true},
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
			var seqs []*seq
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
				seqs = append(seqs, s)
			}
			norm := tr.normalizers(seqs)
			invTemp := float32(1 / 0.8)

			m.EnableGrads()
			m.ZeroGrads()
			ms, err := tr.updateMicro(seqs, norm, 3, tc.haveOld, invTemp)
			st := ms.policy
			if err != nil {
				t.Fatal(err)
			}
			got := download(tr.be, m.Grads)

			m.ZeroGrads()
			want, wantLoss := twoCallUpdate(t, tr, seqs, norm, tc.haveOld, invTemp)
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

// twoCallUpdate is the reference: every row's log-prob (TokenLogProbs
// kernel), PolicyLoss over the padded row layout, the TokenLogProbsBackward
// kernel, trunk backward.
func twoCallUpdate(t *testing.T, tr *Trainer, seqs []*seq, norm kernels.Normalizers, haveOld bool, invTemp float32) ([]float32, float64) {
	be, m := tr.be, tr.pol.Model
	rb := newRowBatch(seqs)
	final, err := m.Forward(tr.ws, rb.batch)
	if err != nil {
		t.Fatal(err)
	}
	T := rb.batch.T
	targets := model.NextTokenTargets(rb.batch)
	n, D, V := len(targets), m.Cfg.Hidden, m.Cfg.Vocab
	// The padded row layout: completion token k of sequence i is predicted
	// by row i·T + prompt − 1 + k.
	row := func(i, k int) int { return i*T + seqs[i].prompt - 1 + k }
	scatter := func(get func(s *seq) []float32) []float32 {
		out := make([]float32, n)
		for i, s := range seqs {
			copy(out[row(i, 0):], get(s)[:s.completionLen()])
		}
		return out
	}
	mask := make([]float32, n)
	offsets := make([]int, len(seqs)+1)
	var truncated []bool
	for i, s := range seqs {
		offsets[i+1] = (i + 1) * T
		truncated = append(truncated, s.truncated)
		for k := range s.completionLen() {
			if !s.excluded {
				mask[row(i, k)] = 1
			}
		}
	}
	logp, ent, lse := be.Alloc(n), be.Alloc(n), be.Alloc(n)
	be.TokenLogProbs(logp, ent, lse, final, m.LMHead(), targets, n, D, V, invTemp)
	params, err := tr.alg.PolicyParams(norm)
	if err != nil {
		t.Fatal(err)
	}
	old := logp
	if haveOld {
		old = upload(be, scatter(func(s *seq) []float32 { return s.oldLogp }))
	}
	args := &kernels.PolicyLossArgs{
		Logp: logp, OldLogp: old, Mask: upload(be, mask), DLogp: be.Alloc(n),
		Adv:     upload(be, scatter(func(s *seq) []float32 { return constant(s.adv, s.completionLen()) })),
		Entropy: ent, Offsets: offsets, Truncated: truncated, P: params,
		RefLogp:     upload(be, scatter(func(s *seq) []float32 { return s.refLogp })),
		RolloutLogp: upload(be, scatter(func(s *seq) []float32 { return s.rolloutLogp })),
	}
	if params.IS != kernels.ISToken {
		lp, ol := download(be, logp), download(be, old)
		ratios := make([]float32, len(seqs))
		for i := range seqs {
			var sum, cnt float64
			for r := offsets[i]; r < offsets[i+1]; r++ {
				sum += float64(mask[r]) * (float64(lp[r]) - float64(ol[r]))
				cnt += float64(mask[r])
			}
			if cnt > 0 {
				ratios[i] = float32(sum / cnt)
			}
		}
		args.SeqLogRatio = upload(be, ratios)
	}
	if params.EntropyCoef != 0 {
		args.DEntropy = be.Alloc(n)
	}
	if params.Beta == 0 {
		args.RefLogp = nil
	}
	st := be.PolicyLoss(args)
	var entBuf kernels.Buf
	if args.DEntropy != nil {
		entBuf = ent
	}
	dfinal := be.Alloc(n * D)
	be.TokenLogProbsBackward(dfinal, lmHeadGrad(m), args.DLogp, args.DEntropy, final, m.LMHead(), lse, entBuf, targets, n, D, V, invTemp)
	m.Backward(tr.ws, dfinal)
	return download(be, m.Grads), st.Loss
}

// lmHeadGrad is the LM head's view of m.Grads (the embedding's when tied).
func lmHeadGrad(m *model.Model) kernels.Buf {
	var head model.Tensor
	for _, t := range m.Tensors() {
		if t.Name == "lm_head.weight" || (head.Name == "" && t.Name == "model.embed_tokens.weight") {
			head = t
		}
	}
	return m.Backend().View(m.Grads, head.Offset, head.Size())
}
