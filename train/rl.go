package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/rltrain/rltrain/data"
	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/optim"
	"github.com/rltrain/rltrain/reward"
	"github.com/rltrain/rltrain/rollout"
)

// rolledGroup is one prompt with its scored completions.
type rolledGroup struct {
	ex     data.Example
	text   string
	prompt []int32
	comps  []rollout.Completion // by sample index
	totals []float64
	comp   [][]float64 // [reward][sample]
	excl   []bool
}

// invTemp is the inverse temperature under which log-probs are computed by
// both the sampler and the trainer (greedy sampling scores raw logits).
func (t *Trainer) invTemp() float32 {
	if tt := t.cfg.Rollout.Temperature; tt > 0 {
		return float32(1 / tt)
	}
	return 1
}

// rewardFields is what a reward sees of a dataset row: its extra fields
// plus the reference answer under "answer".
func rewardFields(ex data.Example) map[string]any {
	f := make(map[string]any, len(ex.Fields)+1)
	for k, v := range ex.Fields {
		f[k] = v
	}
	if _, ok := f["answer"]; !ok && ex.Answer != "" {
		f["answer"] = ex.Answer
	}
	return f
}

// rollOut samples and scores group_size completions for each example.
func (t *Trainer) rollOut(ctx context.Context, exs []data.Example, firstIndex uint64, opts rollout.Options) ([]*rolledGroup, rollout.Stats, time.Duration, map[string]float64, error) {
	groups := make([]*rolledGroup, len(exs))
	prompts := make([]rollout.Prompt, len(exs))
	for i, ex := range exs {
		text, err := t.pol.promptText(ex, t.chat)
		if err != nil {
			return nil, rollout.Stats{}, 0, nil, err
		}
		ids := t.pol.encodePrompt(text, t.chat)
		if len(ids) == 0 {
			return nil, rollout.Stats{}, 0, nil, fmt.Errorf("example %s: the prompt encodes to no tokens", ex.ID)
		}
		groups[i] = &rolledGroup{ex: ex, text: text, prompt: ids}
		prompts[i] = rollout.Prompt{IDs: ids, Index: firstIndex + uint64(i)}
	}
	comps, st, err := t.engine.GenerateWith(prompts, opts)
	if err != nil {
		return nil, st, 0, nil, fmt.Errorf("rollout: %w", err)
	}
	// Completions come ordered by prompt, then sample.
	for _, c := range comps {
		g := groups[c.Prompt]
		g.comps = append(g.comps, c)
	}
	samples := make([]reward.Sample, 0, len(comps))
	for gi, g := range groups {
		fields := rewardFields(g.ex)
		for _, c := range g.comps {
			finish := reward.FinishStop
			if c.Finish == rollout.FinishLength {
				finish = reward.FinishLength
			}
			samples = append(samples, reward.Sample{Prompt: g.text, Completion: c.Text, CompletionIDs: c.IDs,
				FinishReason: finish, Fields: fields, Group: gi})
		}
	}
	start := time.Now()
	res, err := t.rewards.Score(ctx, samples)
	if err != nil {
		return nil, st, 0, nil, fmt.Errorf("reward: %w", err)
	}
	rewardTime := time.Since(start)
	lo := 0
	for _, g := range groups {
		hi := lo + len(g.comps)
		g.totals = res.Total[lo:hi]
		g.excl = res.Excluded[lo:hi]
		for k := range res.Components {
			g.comp = append(g.comp, res.Components[k][lo:hi])
		}
		lo = hi
	}
	// Error counts, and the metrics reward functions report themselves (an
	// external program's "metrics", as rewards/<name>/<metric>); the
	// per-reward mean and std are computed over the kept groups instead.
	errs := map[string]float64{}
	for k, v := range res.Metrics {
		own := strings.HasPrefix(k, "rewards/") && !strings.HasSuffix(k, "/mean") && !strings.HasSuffix(k, "/std")
		if strings.HasPrefix(k, "reward/errors/") || own {
			errs[k] = v
		}
	}
	return groups, st, rewardTime, errs, nil
}

// informative reports whether a group's rewards differ (its GRPO
// advantages are not all zero).
func informative(g *rolledGroup) bool {
	first := math.NaN()
	for i, r := range g.totals {
		if g.excl[i] || math.IsNaN(r) {
			continue
		}
		if math.IsNaN(first) {
			first = r
		} else if r != first {
			return true
		}
	}
	return false
}

// rlStep runs one RL step and returns its metrics.
func (t *Trainer) rlStep(ctx context.Context) (map[string]float64, error) {
	c := t.cfg
	start := time.Now()
	m := map[string]float64{}
	B, G := c.Rollout.BatchSize, c.Rollout.GroupSize

	// 1. Rollouts and rewards, with dynamic sampling (DAPO) when asked.
	var kept []*rolledGroup
	var genTime, rewardTime time.Duration
	var stats rollout.Stats
	sampledGroups, filtered, rounds := 0, 0, 0
	for round := 0; len(kept) < B; round++ {
		rounds++
		need := B - len(kept)
		exs := t.src.Train.Next(need)
		genStart := time.Now()
		groups, st, rt, errs, err := t.rollOut(ctx, exs, t.state.PromptIndex, rollout.Options{})
		if err != nil {
			return nil, err
		}
		t.state.PromptIndex += uint64(need)
		genTime += time.Since(genStart) - rt
		rewardTime += rt
		stats.PrefillTokens += st.PrefillTokens
		stats.GeneratedTokens += st.GeneratedTokens
		for k, v := range errs {
			m[k] += v
		}
		sampledGroups += len(groups)
		lastRound := round >= c.Rollout.MaxFilterRounds
		for _, g := range groups {
			if c.Rollout.FilterZeroStd && !lastRound && !informative(g) {
				filtered++
				continue
			}
			kept = append(kept, g)
		}
	}
	for k := range m {
		if strings.HasPrefix(k, "rewards/") {
			m[k] /= float64(rounds) // a reward's own metrics: the mean over the rounds
		}
	}
	if c.Rollout.FilterZeroStd {
		m["rollout/filtered_groups"] = float64(filtered)
		m["rollout/sampled_groups"] = float64(sampledGroups)
	}
	m["timing_s/rollout"] = seconds(genTime)
	m["timing_s/reward"] = seconds(rewardTime)

	// 2. Sequences and advantages.
	var seqs []*seq
	totals := make([]float64, 0, B*G)
	groupIDs := make([]int, 0, B*G)
	comps := make([][]float64, len(kept[0].comp))
	var lenSum, clipped, maxLen float64
	for gi, g := range kept {
		for si, cpl := range g.comps {
			s := &seq{ids: append(append([]int32(nil), g.prompt...), cpl.IDs...), prompt: len(g.prompt), group: gi,
				excluded: g.excl[si], truncated: cpl.Finish == rollout.FinishLength, rolloutLogp: cpl.Logprobs}
			seqs = append(seqs, s)
			r := g.totals[si]
			if s.excluded {
				r = math.NaN()
			}
			totals = append(totals, r)
			groupIDs = append(groupIDs, gi)
			for k := range comps {
				comps[k] = append(comps[k], g.comp[k][si])
			}
			n := float64(len(cpl.IDs))
			lenSum += n
			maxLen = max(maxLen, n)
			if s.truncated {
				clipped++
			}
		}
	}
	ns := float64(len(seqs))
	m["completions/mean_length"] = lenSum / ns
	m["completions/max_length"] = maxLen
	m["completions/clipped_ratio"] = clipped / ns
	rs := optim.RewardStats(totals, groupIDs)
	m["reward"], m["reward_std"], m["frac_reward_zero_std"] = rs.Reward, rs.RewardStd, rs.FracZeroStd
	if rs.Excluded > 0 {
		m["reward/excluded"] = float64(rs.Excluded)
	}
	for k, name := range t.rewards.Names() {
		sum, sq, n := 0.0, 0.0, 0
		for _, v := range comps[k] {
			if !math.IsNaN(v) {
				sum += v
				sq += v * v
				n++
			}
		}
		if n > 0 {
			mean := sum / float64(n)
			m["rewards/"+name+"/mean"] = mean
			std := 0.0 // the unbiased sample std, as reward_std
			if n > 1 {
				std = math.Sqrt(max(0, (sq-float64(n)*mean*mean)/float64(n-1)))
			}
			m["rewards/"+name+"/std"] = std
		}
	}

	invTemp := t.invTemp()
	micro := c.Train.MicroBatchSize
	if micro <= 0 {
		micro = c.Train.MiniBatchSize
	}
	// 3. Reference log-probs.
	if t.ref != nil {
		rs := time.Now()
		refWS := t.ref.NewWorkspace()
		lps, err := sequenceLogProbs(t.ref, refWS, seqs, micro, invTemp)
		refWS.Free()
		if err != nil {
			return nil, err
		}
		for i, s := range seqs {
			s.refLogp = lps[i]
		}
		m["timing_s/ref"] = seconds(time.Since(rs))
	}
	if t.alg.Advantage == optim.AdvGAE {
		gs := time.Now()
		if err := t.gaeAdvantages(seqs, totals, micro, invTemp, m); err != nil {
			return nil, err
		}
		m["timing_s/old_logprob"] = seconds(time.Since(gs))
	} else if err := t.sequenceAdvantages(seqs, totals, comps, groupIDs, m); err != nil {
		return nil, err
	}
	if t.alg.Loss == optim.LossDRPO {
		// The same judgement as eval accuracy (eval.correct_reward).
		i := 0
		for _, g := range kept {
			for si := range g.comps {
				seqs[i].correct = t.isCorrect(g, si)
				i++
			}
		}
	}

	// 4. Old log-probs: recomputed by the trainer when the policy moves
	// between updates of this step, or for truncated importance sampling;
	// otherwise the current forward pass is its own old policy (ratio 1).
	mini := c.Train.MiniBatchSize
	if mini <= 0 || mini > len(seqs) {
		mini = len(seqs)
	}
	nMini := (len(seqs) + mini - 1) / mini
	needOld := c.Train.PPOEpochs > 1 || nMini > 1 || t.alg.TISCap > 0 || t.vh != nil
	if needOld && t.vh == nil {
		os := time.Now()
		lps, err := sequenceLogProbs(t.pol.Model, t.ws, seqs, micro, invTemp)
		if err != nil {
			return nil, err
		}
		for i, s := range seqs {
			s.oldLogp = lps[i]
		}
		m["timing_s/old_logprob"] = seconds(time.Since(os))
	}

	// 5. Updates.
	t.cur = seqs
	us := time.Now()
	var pm optim.PolicyMetrics
	var gradNorm float64
	updates, skipped := 0, 0
	var drpoObj, drpoKL float64
	totalUpdates := c.Train.Steps * c.Train.PPOEpochs * nMini
	for epoch := 0; epoch < c.Train.PPOEpochs; epoch++ {
		order := t.groupOrder(len(kept), G, epoch)
		for _, mb := range chunks(len(order), mini) {
			batch := order[mb[0]:mb[1]]
			bad := false
			norm := t.normalizers(batch)
			for _, mc := range chunks(len(batch), micro) {
				st, dst, err := t.updateMicro(batch[mc[0]:mc[1]], norm, len(batch)/G, needOld, invTemp)
				if err != nil {
					return nil, err
				}
				if !finite(st.Loss) || !finite(dst.Loss) {
					bad = true
					break
				}
				pm.Add(st)
				drpoObj += dst.Objective
				drpoKL += dst.KL
			}
			if bad {
				t.opt.ZeroGrad()
				skipped++
				continue
			}
			upd, err := t.opt.Update(totalUpdates)
			m["learning_rate"] = upd.LR
			if err != nil {
				t.logf("step %d: %v", t.state.Step+1, err)
				skipped++
				continue
			}
			gradNorm += upd.GradNorm
			updates++
		}
	}
	if updates > 0 {
		m["grad_norm"] = gradNorm / float64(updates)
	}
	if skipped > 0 {
		m["skipped_updates"] = float64(skipped)
		t.logf("step %d: skipped %d of %d updates (non-finite loss or gradient)", t.state.Step+1, skipped, skipped+updates)
	}
	if updates == 0 {
		t.badRun++
		if t.badRun >= maxBadSteps {
			return nil, fmt.Errorf("%d consecutive steps had only non-finite losses or gradients; stopping (the last good checkpoint is step %d)", t.badRun, t.lastCkp)
		}
	} else {
		t.badRun = 0
	}
	for k, v := range pm.Map() {
		m[k] = v
	}
	if t.vh != nil {
		m["vf_loss"] = t.vfLoss
		t.vfLoss = 0
	}
	if t.alg.Loss == optim.LossDRPO {
		m["drpo/objective"] = drpoObj
		m["drpo/kl"] = drpoKL
	}
	m["timing_s/update"] = seconds(time.Since(us))
	tokens := float64(stats.PrefillTokens + stats.GeneratedTokens)
	for _, s := range seqs {
		tokens += float64(len(s.ids)) * float64(c.Train.PPOEpochs)
	}
	m["perf/throughput"] = tokens / time.Since(start).Seconds()
	m["perf/generated_tokens"] = float64(stats.GeneratedTokens)
	t.curGroups = kept
	return m, nil
}

// groupOrder returns the sequence indices of an epoch, whole groups kept
// together; with several minibatches the group order is shuffled with a
// stream seeded by (seed, step, epoch).
func (t *Trainer) groupOrder(groups, G, epoch int) []int {
	perm := make([]int, groups)
	for i := range perm {
		perm[i] = i
	}
	if t.cfg.Train.MiniBatchSize > 0 && t.cfg.Train.MiniBatchSize < groups*G {
		r := rand.New(rand.NewPCG(uint64(t.cfg.Train.Seed), uint64(t.state.Step)<<16|uint64(epoch)))
		r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	}
	out := make([]int, 0, groups*G)
	for _, g := range perm {
		for s := 0; s < G; s++ {
			out = append(out, g*G+s)
		}
	}
	return out
}

// normalizers are the whole-minibatch counts every micro-batch divides by.
func (t *Trainer) normalizers(batch []int) kernels.Normalizers {
	info := make([]optim.Sequence, len(batch))
	for i, si := range batch {
		s := t.cur[si]
		if !s.excluded {
			info[i] = optim.Sequence{Tokens: s.completionLen(), Truncated: s.truncated}
		}
	}
	return optim.BatchNormalizers(info, t.cfg.Rollout.MaxNewTokens, t.alg.MaskTruncated)
}

// updateMicro runs forward, loss and backward for the sequences t.cur[idx],
// accumulating gradients. Every per-token buffer is in the compact layout
// of the completion tokens (rowBatch).
func (t *Trainer) updateMicro(idx []int, norm kernels.Normalizers, prompts int, haveOld bool, invTemp float32) (kernels.PolicyLossStats, optim.DRPOStats, error) {
	be := t.be
	seqs := make([]*seq, len(idx))
	for i, si := range idx {
		seqs[i] = t.cur[si]
	}
	rb := newRowBatch(seqs)
	if _, err := t.pol.Model.Forward(t.ws, rb.batch); err != nil {
		return kernels.PolicyLossStats{}, optim.DRPOStats{}, err
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
		return kernels.PolicyLossStats{Loss: dst.Loss}, dst, err
	}

	params, err := t.alg.PolicyParams(norm)
	if err != nil {
		return kernels.PolicyLossStats{}, optim.DRPOStats{}, err
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
	// The clipped surrogate's dL/dℓ of a token needs only that token, so
	// the output layer runs forward and backward in one pass.
	out.Entropy, out.EntropyGrad = true, t.alg.EntropyCoef != 0
	loss := optim.NewPolicyLoss(be, args)
	g, err := t.pol.Model.LossGrad(t.ws, out, loss)
	st := loss.Stats()
	if err != nil || !g.Complete {
		return st, optim.DRPOStats{}, err
	}
	if t.vh != nil {
		values, err := t.vh.Forward(t.ws, out.Spans)
		if err != nil {
			return st, optim.DRPOStats{}, err
		}
		dv := make([]float32, len(values))
		vl, err := optim.ValueLoss(dv, values, rb.compact(func(s *seq) []float32 { return s.oldValues }),
			rb.compact(func(s *seq) []float32 { return s.returns }), rb.mask(), t.alg.ValueClip, t.alg.VFCoef, norm.Tokens)
		if err != nil {
			return st, optim.DRPOStats{}, err
		}
		if !finite(vl) {
			st.Loss = vl
			return st, optim.DRPOStats{}, nil
		}
		t.vfLoss += vl
		if err := t.vh.Backward(t.ws, out.Spans, dv, g.DFinal); err != nil {
			return st, optim.DRPOStats{}, err
		}
	}
	t.pol.Model.Backward(t.ws, g.DFinal)
	return st, optim.DRPOStats{}, nil
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
	lps, vals, err := sequenceLogProbsValues(t.pol.Model, t.ws, seqs, micro, invTemp, t.vh)
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
