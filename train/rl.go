package train

import (
	"math"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/optim"
)

// invTemp is the inverse temperature under which log-probs are computed by
// both the sampler and the trainer (greedy sampling scores raw logits).
func (t *Trainer) invTemp() float32 {
	if tt := t.cfg.Rollout.Temperature; tt > 0 {
		return float32(1 / tt)
	}
	return 1
}

// microStats are the losses of one micro-batch.
type microStats struct {
	policy    kernels.PolicyLossStats
	drpo      optim.DRPOStats
	valueLoss float64 // PPO's critic; 0 without one
}

// updateMicro runs forward, loss and backward for a micro-batch of
// sequences, accumulating gradients. Every per-token buffer is in the
// compact layout of the completion tokens (rowBatch).
func (t *Trainer) updateMicro(seqs []*seq, norm kernels.Normalizers, prompts int, haveOld bool, invTemp float32) (microStats, error) {
	be := t.be
	rb := newRowBatch(seqs)
	if _, err := t.pol.Model.Forward(t.ws, rb.batch); err != nil {
		return microStats{}, err
	}
	bufs := []kernels.Buf{}
	up := func(v []float32) kernels.Buf {
		b := upload(be, v)
		bufs = append(bufs, b)
		return b
	}
	defer func() {
		for _, b := range bufs {
			be.Free(b)
		}
	}()
	out := rb.output(invTemp)
	if t.alg.Loss == optim.LossDRPO {
		dst, err := t.updateMicroDRPO(rb, out, norm, prompts, haveOld, up)
		return microStats{policy: kernels.PolicyLossStats{Loss: dst.Loss}, drpo: dst}, err
	}

	params, err := t.alg.PolicyParams(norm)
	if err != nil {
		return microStats{}, err
	}
	truncated := make([]bool, len(seqs))
	for i, s := range seqs {
		truncated[i] = s.truncated
	}
	args := kernels.PolicyLossArgs{
		Mask: up(rb.mask()),
		Adv: up(rb.compact(func(s *seq) []float32 {
			if s.tokAdv != nil {
				return s.tokAdv
			}
			return constant(s.adv, s.completionLen())
		})),
		Offsets:   rb.offsets(),
		Truncated: truncated,
		P:         params,
	}
	if haveOld {
		args.OldLogp = up(rb.compact(func(s *seq) []float32 { return s.oldLogp }))
	}
	if t.ref != nil && params.Beta > 0 {
		args.RefLogp = up(rb.compact(func(s *seq) []float32 { return s.refLogp }))
	}
	if params.TISCap > 0 {
		args.RolloutLogp = up(rb.compact(func(s *seq) []float32 { return s.rolloutLogp }))
	}
	if params.IS != kernels.ISToken && haveOld {
		// GSPO's ratio needs every token of a sequence: one forward pass of
		// the output layer for the sequences' mean log-ratios first. (On
		// policy, with ℓ_old = ℓ, every ratio is 1 and nil says so.)
		logp, _, err := t.pol.Model.LogProbs(t.ws, out)
		if err != nil {
			return microStats{}, err
		}
		args.SeqLogRatio = up(optim.SeqLogRatios(be, up(logp), args.OldLogp, args.Mask, args.Offsets))
	}
	// The clipped surrogate's dL/dℓ of a token needs only that token (and,
	// for GSPO, its sequence's ratio, known by now), so the output layer
	// runs forward and backward in one pass.
	out.Entropy, out.EntropyGrad = true, t.alg.EntropyCoef != 0
	loss := optim.NewPolicyLoss(be, args)
	g, err := t.pol.Model.LossGrad(t.ws, out, loss)
	st := loss.Stats()
	if err != nil || !g.Complete {
		return microStats{policy: st}, err
	}
	if t.logpDiff != nil {
		t.logpDiff.add(download(be, g.Logp), rb.compact(func(s *seq) []float32 { return s.rolloutLogp }))
	}
	if t.vh != nil {
		values, err := t.vh.Forward(t.ws, out.Spans)
		if err != nil {
			return microStats{}, err
		}
		dv := make([]float32, len(values))
		vl, err := optim.ValueLoss(dv, values, rb.compact(func(s *seq) []float32 { return s.oldValues }),
			rb.compact(func(s *seq) []float32 { return s.returns }), rb.mask(), t.alg.ValueClip, t.alg.VFCoef, norm.Tokens)
		if err != nil || !finite(vl) {
			return microStats{policy: st, valueLoss: vl}, err
		}
		if err := t.vh.Backward(t.ws, out.Spans, dv, g.DFinal); err != nil {
			return microStats{}, err
		}
		t.pol.Model.Backward(t.ws, g.DFinal)
		return microStats{policy: st, valueLoss: vl}, nil
	}
	t.pol.Model.Backward(t.ws, g.DFinal)
	return microStats{policy: st}, nil
}

// updateMicroDRPO is DRPO's micro-batch: its per-token gradients depend on
// whole-sequence scores, so the log-probs of every token come first, then
// the two DRPO passes, then the output layer with that known gradient.
func (t *Trainer) updateMicroDRPO(rb *rowBatch, out model.Output, norm kernels.Normalizers, prompts int, haveOld bool, up func([]float32) kernels.Buf) (optim.DRPOStats, error) {
	be, m := t.be, t.pol.Model
	logp, _, err := m.LogProbs(t.ws, out)
	if err != nil {
		return optim.DRPOStats{}, err
	}
	if t.logpDiff != nil {
		t.logpDiff.add(logp, rb.compact(func(s *seq) []float32 { return s.rolloutLogp }))
	}
	lpBuf := up(logp)
	oldBuf := lpBuf
	if haveOld {
		oldBuf = up(rb.compact(func(s *seq) []float32 { return s.oldLogp }))
	}
	dlogp := up(make([]float32, len(logp)))
	correct := make([]bool, len(rb.seqs))
	groups := make([]int, len(rb.seqs))
	for i, s := range rb.seqs {
		correct[i], groups[i] = s.correct, s.group
	}
	dst, err := t.alg.DRPOLoss(be, optim.DRPOInput{Logp: lpBuf, OldLogp: oldBuf, Mask: up(rb.mask()), DLogp: dlogp,
		Offsets: rb.offsets(), Correct: correct, Groups: groups, Prompts: max(prompts, 1), Tokens: max(norm.Tokens, 1), MaxLen: norm.MaxLen})
	if err != nil || !finite(dst.Loss) {
		return dst, err
	}
	g, err := m.LossGrad(t.ws, out, m.KnownGrad(download(be, dlogp), nil))
	if err != nil {
		return dst, err
	}
	m.Backward(t.ws, g.DFinal)
	return dst, nil
}

func constant(v float32, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// sequenceAdvantages computes one advantage per completion with the
// configured group estimator (optionally after subtracting the KL from the
// reward).
func (t *Trainer) sequenceAdvantages(seqs []*seq, totals []float64, comps [][]float64, groupIDs []int, m map[string]float64) error {
	rewardsForAdv := [][]float64{totals}
	var weights []float64
	if t.alg.Advantage == optim.AdvGDPO {
		rewardsForAdv, weights = comps, t.rewards.Weights()
		for _, comp := range comps {
			for i := range comp {
				if seqs[i].excluded {
					comp[i] = math.NaN()
				}
			}
		}
	}
	if t.alg.Beta > 0 && t.alg.KLIn == "reward" {
		// r −= β·Σ_t (ℓ_t − ℓ_ref,t) over the completion.
		var klSum float64
		for i, s := range seqs {
			var kl float64
			for k, lp := range s.rolloutLogp {
				kl += float64(lp - s.refLogp[k])
			}
			klSum += kl
			for _, r := range rewardsForAdv {
				r[i] -= t.state.KLCoef * kl
			}
		}
		t.updateKLCoef(klSum/float64(len(seqs)), len(seqs), m)
	}
	adv, _, err := optim.Advantages(t.alg, rewardsForAdv, weights, groupIDs)
	if err != nil {
		return err
	}
	for i, s := range seqs {
		s.adv = float32(adv[i])
		if math.IsNaN(adv[i]) {
			s.adv = 0
		}
	}
	return nil
}

func (t *Trainer) updateKLCoef(meanKL float64, n int, m map[string]float64) {
	m["kl_reward"] = meanKL
	m["kl_coef"] = t.state.KLCoef
	if t.alg.TargetKL > 0 {
		ctl := optim.AdaptiveKL{Beta: t.state.KLCoef, Target: t.alg.TargetKL, Horizon: t.alg.KLHorizon}
		t.state.KLCoef = ctl.Update(meanKL, n)
	}
}

// gaeAdvantages runs the critic over the rollouts and computes PPO's
// per-token advantages (GAE, whitened over the batch) and returns. The
// reward sits on the last token; with kl_in: reward each token also pays
// β·(ℓ − ℓ_ref).
func (t *Trainer) gaeAdvantages(seqs []*seq, totals []float64, micro int, invTemp float32, m map[string]float64) error {
	lps, vals, err := t.shardedPass(t.pol.Model, t.ws, seqs, micro, invTemp, t.vh)
	if err != nil {
		return err
	}
	beta := 0.0
	if t.alg.Beta > 0 && t.alg.KLIn == "reward" {
		beta = t.state.KLCoef
	}
	var klSum, valSum, retSum float64
	var flat, mask []float32
	for i, s := range seqs {
		s.oldLogp, s.oldValues = lps[i], vals[i]
		n := s.completionLen()
		s.tokAdv, s.returns = make([]float32, n), make([]float32, n)
		if s.excluded {
			continue
		}
		lp64, v64 := make([]float64, n), make([]float64, n)
		var ref64 []float64
		if beta > 0 {
			ref64 = make([]float64, n)
		}
		for k := range n {
			lp64[k], v64[k] = float64(s.oldLogp[k]), float64(s.oldValues[k])
			if ref64 != nil {
				ref64[k] = float64(s.refLogp[k])
			}
		}
		r, kl := optim.TokenRewards(totals[i], lp64, ref64, beta)
		klSum += kl
		adv, ret := optim.GAE(r, v64, t.alg.Gamma, t.alg.Lam)
		for k := range n {
			s.tokAdv[k], s.returns[k] = float32(adv[k]), float32(ret[k])
			valSum += v64[k]
			retSum += ret[k]
		}
		flat = append(flat, s.tokAdv...)
		mask = append(mask, constant(1, n)...)
	}
	optim.Whiten(flat, mask)
	off := 0
	for _, s := range seqs {
		if s.excluded {
			continue
		}
		copy(s.tokAdv, flat[off:off+len(s.tokAdv)])
		off += len(s.tokAdv)
	}
	if len(flat) > 0 {
		m["values/mean"] = valSum / float64(len(flat))
		m["returns/mean"] = retSum / float64(len(flat))
	}
	if beta > 0 {
		t.updateKLCoef(klSum/float64(len(seqs)), len(seqs), m)
	}
	return nil
}
