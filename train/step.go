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
	"github.com/rltrain/rltrain/optim"
	"github.com/rltrain/rltrain/reward"
	"github.com/rltrain/rltrain/rollout"
)

// rlStep is one RL step's state, built up by its phases in order:
//
//	collect     prompts → rollouts → rewards, until batch_size groups are kept
//	sequences   the groups as training sequences, with reward statistics
//	reference   the frozen reference model's log-probs (beta > 0)
//	advantages  per-sequence or per-token advantages
//	oldPolicy   the sampling policy's log-probs, when the policy moves
//	            during the step
//	empg        EMPG's entropy scaling of the advantages (empg_k > 0)
//	plan        the epochs' minibatches and their loss normalisers
//	update      forward, loss, backward and an optimizer step per minibatch
//	finish      throughput metrics
//
// Everything computed over "the batch" (reward statistics, advantages
// normalised over the batch, the loss normalisers of a minibatch) is
// computed in sequences, advantages and plan from all of the step's
// sequences; a data-parallel run, whose sequences are split across
// processes, all-reduces there.
type rlStep struct {
	start   time.Time
	metrics map[string]float64

	// Filled by collect: the kept groups, in order. Groups may differ in
	// size.
	groups []*rolledGroup
	stats  rollout.Stats // tokens prefilled and generated over all rounds

	// Filled by sequences: one entry per completion, group by group.
	seqs    []*seq
	totals  []float64   // combined reward; NaN where excluded
	comps   [][]float64 // [reward][sequence]
	groupOf []int       // index of each sequence's group in groups

	invTemp float32 // inverse sampling temperature of every log-prob
	micro   int     // sequences per forward/backward pass (0: a whole minibatch)
	haveOld bool    // oldPolicy recorded the log-probs of the sampling policy
	// diffInUpdate: rollout/logp_diff_* come from the first minibatch's
	// forward passes (no recomputation ran before the updates).
	diffInUpdate bool

	minibatches []minibatch // filled by plan
}

// minibatch is the sequences of one optimizer update and the counts its
// loss is normalised by (whole-minibatch values every micro-batch uses).
type minibatch struct {
	seqs    []*seq
	norm    kernels.Normalizers
	prompts int // distinct groups in it
}

// step runs one RL step and returns it; its metrics are in metrics.
func (t *Trainer) step(ctx context.Context) (*rlStep, error) {
	s := &rlStep{start: time.Now(), metrics: map[string]float64{}, invTemp: t.invTemp()}
	s.micro = t.cfg.Train.MicroBatchSize
	if s.micro <= 0 {
		s.micro = t.cfg.Train.MiniBatchSize
	}
	if err := t.collect(ctx, s); err != nil {
		return nil, err
	}
	t.sequences(s)
	for _, phase := range []func(*rlStep) error{t.reference, t.advantages, t.oldPolicy, t.empg} {
		if err := phase(s); err != nil {
			return nil, err
		}
	}
	t.plan(s)
	if err := t.update(s); err != nil {
		return nil, err
	}
	t.finish(s)
	return s, nil
}

// collect samples and scores groups until the step has rollout.batch_size
// of them. With dynamic sampling (DAPO's filter_zero_std) groups whose
// rewards are all equal are dropped and more prompts are sampled, for at
// most max_filter_rounds extra rounds.
func (t *Trainer) collect(ctx context.Context, s *rlStep) error {
	r := t.cfg.Rollout
	var genTime, rewardTime time.Duration
	sampled, filtered, rounds := 0, 0, 0
	for round := 0; len(s.groups) < r.BatchSize; round++ {
		rounds++
		need := r.BatchSize - len(s.groups)
		exs := t.src.Train.Next(need)
		genStart := time.Now()
		sizes := t.groupSizes(exs)
		groups, st, err := t.generate(exs, sizes, t.state.PromptIndex, rollout.Options{})
		if err != nil {
			return err
		}
		t.state.PromptIndex += uint64(need)
		genTime += time.Since(genStart)
		rewardStart := time.Now()
		errs, err := t.score(ctx, groups)
		if err != nil {
			return err
		}
		rewardTime += time.Since(rewardStart)
		t.recordPasses(groups)
		for _, n := range sizes {
			s.metrics["rollout/completions"] += float64(n)
			s.metrics["rollout/group_size_max"] = max(s.metrics["rollout/group_size_max"], float64(n))
			if m, ok := s.metrics["rollout/group_size_min"]; !ok || float64(n) < m {
				s.metrics["rollout/group_size_min"] = float64(n)
			}
		}
		s.stats.PrefillTokens += st.PrefillTokens
		s.stats.GeneratedTokens += st.GeneratedTokens
		s.stats.Completions += st.Completions
		s.stats.PeakBlocks = max(s.stats.PeakBlocks, st.PeakBlocks)
		s.stats.Forks += st.Forks
		s.stats.ForkDepths += st.ForkDepths
		s.stats.Aborted += st.Aborted
		s.stats.Continued += st.Continued
		for k, v := range errs {
			s.metrics[k] += v
		}
		sampled += len(groups)
		lastRound := round >= r.MaxFilterRounds
		for _, g := range groups {
			if r.FilterZeroStd && !lastRound && !informative(g) {
				filtered++
				continue
			}
			s.groups = append(s.groups, g)
		}
	}
	for k := range s.metrics {
		if strings.HasPrefix(k, "rewards/") || strings.HasPrefix(k, "reward/length_switch/") {
			s.metrics[k] /= float64(rounds) // the mean over the rounds
		}
	}
	if r.FilterZeroStd {
		s.metrics["rollout/filtered_groups"] = float64(filtered)
		s.metrics["rollout/sampled_groups"] = float64(sampled)
	}
	s.metrics["timing_s/rollout"] = seconds(genTime)
	s.metrics["timing_s/reward"] = seconds(rewardTime)
	return nil
}

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

// generate samples completions for each example: rollout.group_size, or
// what opts asks for.
func (t *Trainer) generate(exs []data.Example, sizes []int, firstIndex uint64, opts rollout.Options) ([]*rolledGroup, rollout.Stats, error) {
	groups := make([]*rolledGroup, len(exs))
	prompts := make([]rollout.Prompt, len(exs))
	for i, ex := range exs {
		text, err := t.pol.promptText(ex, t.chat)
		if err != nil {
			return nil, rollout.Stats{}, err
		}
		ids, err := t.fitPrompt(ex, t.pol.encodePrompt(ex, text, t.chat))
		if err != nil {
			return nil, rollout.Stats{}, err
		}
		if len(ids) == 0 {
			return nil, rollout.Stats{}, fmt.Errorf("example %s: the prompt encodes to no tokens", ex.ID)
		}
		groups[i] = &rolledGroup{ex: ex, text: text, prompt: ids}
		prompts[i] = rollout.Prompt{IDs: ids, Index: firstIndex + uint64(i)}
		if sizes != nil {
			prompts[i].Samples = sizes[i] // budgeted rollouts (budget.go)
		}
	}
	// Each rank samples a contiguous share of the prompts and every rank
	// gathers all the completions. The sampling streams are keyed by the
	// global prompt index, so which rank samples a prompt does not change
	// its completions.
	plo, phi := t.myShard(len(prompts))
	var comps []rollout.Completion
	var st rollout.Stats
	if phi > plo {
		var err error
		if comps, st, err = t.engine.GenerateWith(prompts[plo:phi], opts); err != nil {
			return nil, st, fmt.Errorf("rollout: %w", err)
		}
	}
	comps, err := t.gatherCompletions(comps, plo)
	if err != nil {
		return nil, st, fmt.Errorf("rollout: %w", err)
	}
	if st, err = t.reduceStats(st); err != nil {
		return nil, st, fmt.Errorf("rollout: %w", err)
	}
	// Completions come ordered by prompt, then sample.
	for _, c := range comps {
		g := groups[c.Prompt]
		g.comps = append(g.comps, c)
	}
	return groups, st, nil
}

// score runs the rewards over every completion of the groups and returns
// the reward error counts (reward/errors/<name>), GRPO-λ's
// reward/length_switch/kept_groups and the metrics reward functions report
// themselves (an external program's "metrics", as
// rewards/<name>/<metric>); the per-reward mean and std are computed over
// the kept groups instead (sequences). Completions cut by the
// marker-gated abort are not scored: they are excluded, with NaN rewards.
func (t *Trainer) score(ctx context.Context, groups []*rolledGroup) (map[string]float64, error) {
	var samples []reward.Sample
	at := make([][]int, len(groups)) // each completion's index in samples; -1 when aborted
	for gi, g := range groups {
		fields := rewardFields(g.ex)
		at[gi] = make([]int, len(g.comps))
		for si, c := range g.comps {
			if c.Finish == rollout.FinishAbort {
				at[gi][si] = -1
				continue
			}
			at[gi][si] = len(samples)
			finish := reward.FinishStop
			if c.Finish == rollout.FinishLength {
				finish = reward.FinishLength
			}
			samples = append(samples, reward.Sample{Prompt: g.text, PromptIDs: g.prompt, Completion: c.Text, CompletionIDs: c.IDs,
				FinishReason: finish, Fields: fields, Group: gi})
		}
	}
	res := &reward.Result{} // every completion aborted: nothing to score
	if len(samples) > 0 {
		var err error
		if res, err = t.scoreAll(ctx, samples); err != nil {
			return nil, fmt.Errorf("reward: %w", err)
		}
	}
	nr := len(t.rewards.Names())
	for gi, g := range groups {
		n := len(g.comps)
		g.totals, g.excl, g.comp = make([]float64, n), make([]bool, n), make([][]float64, nr)
		for k := range g.comp {
			g.comp[k] = make([]float64, n)
		}
		for si, j := range at[gi] {
			if j < 0 {
				g.totals[si], g.excl[si] = math.NaN(), true
				for k := range g.comp {
					g.comp[k][si] = math.NaN()
				}
				continue
			}
			g.totals[si], g.excl[si] = res.Total[j], res.Excluded[j]
			for k := range g.comp {
				g.comp[k][si] = res.Components[k][j]
			}
		}
	}
	errs := map[string]float64{}
	for k, v := range res.Metrics {
		own := strings.HasPrefix(k, "rewards/") && !strings.HasSuffix(k, "/mean") && !strings.HasSuffix(k, "/std")
		if strings.HasPrefix(k, "reward/errors/") || strings.HasPrefix(k, "reward/length_switch/") || own {
			errs[k] = v
		}
	}
	return errs, nil
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

// sequences lays the groups out as training sequences and records the
// completion and reward statistics of the batch.
func (t *Trainer) sequences(s *rlStep) {
	s.comps = make([][]float64, len(s.groups[0].comp))
	var lenSum, clipped, maxLen float64
	nAborted := 0
	for gi, g := range s.groups {
		for si, c := range g.comps {
			q := &seq{ids: append(append([]int32(nil), g.prompt...), c.IDs...), prompt: len(g.prompt), group: gi,
				excluded: g.excl[si], truncated: c.Finish == rollout.FinishLength, rolloutLogp: c.Logprobs,
				shared: c.Shared, branch: c.Branch, weight: 1}
			if c.Continued {
				q.weight = float32(1 / t.cfg.Rollout.AbortKeepProb)
			}
			if c.Finish == rollout.FinishAbort {
				nAborted++
			}
			if t.alg.TreeMaskShared {
				q.lossFrom = c.Shared
			}
			s.seqs = append(s.seqs, q)
			r := g.totals[si]
			if q.excluded {
				r = math.NaN()
			}
			s.totals = append(s.totals, r)
			s.groupOf = append(s.groupOf, gi)
			for k := range s.comps {
				s.comps[k] = append(s.comps[k], g.comp[k][si])
			}
			n := float64(len(c.IDs))
			lenSum += n
			maxLen = max(maxLen, n)
			if q.truncated {
				clipped++
			}
		}
	}
	m := s.metrics
	ns := float64(len(s.seqs))
	m["completions/mean_length"] = lenSum / ns
	m["completions/max_length"] = maxLen
	m["completions/clipped_ratio"] = clipped / ns
	rs := optim.RewardStats(s.totals, s.groupOf)
	m["reward"], m["reward_std"], m["frac_reward_zero_std"] = rs.Reward, rs.RewardStd, rs.FracZeroStd
	if rs.Excluded == len(s.seqs) {
		// No sample has a reward: null in metrics.jsonl, not 0.
		m["reward"], m["reward_std"] = math.NaN(), math.NaN()
	}
	// Aborted completions have no reward by design; reward/excluded
	// counts the samples the rewards failed on.
	if n := rs.Excluded - nAborted; n > 0 {
		m["reward/excluded"] = float64(n)
	}
	for k, name := range t.rewards.Names() {
		sum, sq, n := 0.0, 0.0, 0
		for _, v := range s.comps[k] {
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
}

// reference records the frozen reference model's log-probs, for the KL
// penalty (in the loss or in the reward).
func (t *Trainer) reference(s *rlStep) error {
	if t.ref == nil {
		return nil
	}
	start := time.Now()
	ws := t.ref.NewWorkspace()
	lps, err := t.shardedLogProbs(t.ref, ws, s.seqs, s.micro, s.invTemp)
	ws.Free()
	if err != nil {
		return err
	}
	for i, q := range s.seqs {
		q.refLogp = lps[i]
	}
	s.metrics["timing_s/ref"] = seconds(time.Since(start))
	return nil
}

// advantages computes the advantages: per token with GAE (running the
// critic, which records the old log-probs too), else one per sequence from
// the group estimator; DRPO also splits the sequences into correct and
// incorrect ones (as eval accuracy judges them).
func (t *Trainer) advantages(s *rlStep) error {
	if t.alg.Advantage == optim.AdvGAE {
		start := time.Now()
		if err := t.gaeAdvantages(s.seqs, s.totals, s.micro, s.invTemp, s.metrics); err != nil {
			return err
		}
		s.haveOld = true
		s.metrics["timing_s/old_logprob"] = seconds(time.Since(start))
	} else if err := t.sequenceAdvantages(s.seqs, s.totals, s.comps, t.advantageGroups(s), s.metrics); err != nil {
		return err
	}
	// The marker-gated abort's importance weights: a continued
	// completion stands for the 1/abort_keep_prob like it that were
	// aborted. The clipped surrogate is positively homogeneous in the
	// advantage, so this weights its whole policy-gradient term.
	for _, q := range s.seqs {
		if q.weight != 1 {
			q.adv *= q.weight
			for k := range q.tokAdv {
				q.tokAdv[k] *= q.weight
			}
		}
	}
	if t.alg.Loss == optim.LossDRPO {
		// The same judgement as eval accuracy (eval.correct_reward).
		i := 0
		for _, g := range s.groups {
			for si := range g.comps {
				s.seqs[i].correct = t.isCorrect(g, si)
				i++
			}
		}
	}
	return nil
}

// minibatchSize is the number of sequences per optimizer update.
func (t *Trainer) minibatchSize(n int) int {
	mini := t.cfg.Train.MiniBatchSize
	if mini <= 0 || mini > n {
		mini = n
	}
	return mini
}

// oldPolicy records the sampling policy's log-probs when the policy moves
// between the step's updates (several epochs or minibatches) or for
// truncated importance sampling; otherwise each update's forward pass is
// its own old policy (ratio 1) and this pass is skipped. With
// algorithm.old_logprobs: rollout the sampler's log-probs are used and the
// pass is skipped too. It also arranges for rollout/logp_diff_*: from this
// pass's recomputation when it runs, else from the first minibatch's
// forward passes (still at the sampling policy's weights).
func (t *Trainer) oldPolicy(s *rlStep) error {
	n := len(s.seqs)
	mini := t.minibatchSize(n)
	moves := t.cfg.Train.PPOEpochs > 1 || (n+mini-1)/mini > 1
	if !s.haveOld && (moves || t.alg.TISCap > 0) {
		if t.alg.OldLogprobs == optim.OldLogprobsRollout {
			for _, q := range s.seqs {
				q.oldLogp = q.rolloutLogp
			}
			s.haveOld = true
			s.diffInUpdate = true
			return nil
		}
		start := time.Now()
		lps, err := t.shardedLogProbs(t.pol.Model, t.ws, s.seqs, s.micro, s.invTemp)
		if err != nil {
			return err
		}
		for i, q := range s.seqs {
			q.oldLogp = lps[i]
		}
		s.haveOld = true
		s.metrics["timing_s/old_logprob"] = seconds(time.Since(start))
	}
	if !s.haveOld {
		s.diffInUpdate = true
		return nil
	}
	// Every rank holds every sequence's recomputed log-probs.
	var d logpDiff
	for _, q := range s.seqs {
		d.add(q.oldLogp, q.rolloutLogp)
	}
	return t.reportLogpDiff(d, false, s.metrics)
}

// plan splits each epoch's sequences into minibatches, whole groups kept
// together (with several minibatches the group order is shuffled by a
// stream seeded by (seed, step, epoch)), and computes each minibatch's
// loss normalisers.
func (t *Trainer) plan(s *rlStep) {
	mini := t.minibatchSize(len(s.seqs))
	shuffle := t.cfg.Train.MiniBatchSize > 0 && t.cfg.Train.MiniBatchSize < len(s.seqs)
	for epoch := 0; epoch < t.cfg.Train.PPOEpochs; epoch++ {
		order := t.groupOrder(s, epoch, shuffle)
		for _, c := range chunks(len(order), mini) {
			mb := minibatch{seqs: order[c[0]:c[1]]}
			seen := map[int]bool{}
			for _, q := range mb.seqs {
				seen[q.group] = true
			}
			mb.norm, mb.prompts = t.normalizers(mb.seqs), len(seen)
			s.minibatches = append(s.minibatches, mb)
		}
	}
}

// normalizers are the counts a minibatch's loss is normalised by.
func (t *Trainer) normalizers(seqs []*seq) kernels.Normalizers {
	info := make([]optim.Sequence, len(seqs))
	for i, q := range seqs {
		if !q.excluded {
			info[i] = optim.Sequence{Tokens: q.lossLen(), Truncated: q.truncated}
		}
	}
	return optim.BatchNormalizers(info, t.cfg.Rollout.MaxNewTokens, t.alg.MaskTruncated)
}

// groupOrder returns an epoch's sequences, group by group.
func (t *Trainer) groupOrder(s *rlStep, epoch int, shuffle bool) []*seq {
	perm := make([]int, len(s.groups))
	for i := range perm {
		perm[i] = i
	}
	if shuffle {
		r := rand.New(rand.NewPCG(uint64(t.cfg.Train.Seed), uint64(t.state.Step)<<16|uint64(epoch)))
		r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	}
	first := make([]int, len(s.groups)+1) // first sequence of each group
	for gi, g := range s.groups {
		first[gi+1] = first[gi] + len(g.comps)
	}
	out := make([]*seq, 0, len(s.seqs))
	for _, g := range perm {
		out = append(out, s.seqs[first[g]:first[g+1]]...)
	}
	return out
}

// stepLosses sums the loss statistics of a step's micro-batches.
type stepLosses struct {
	policy    optim.PolicyMetrics
	drpo      optim.DRPOStats // Objective and KL summed
	valueLoss float64
}

// update runs every planned minibatch: forward, loss and backward per
// micro-batch, then an optimizer step. An update whose loss or gradient is
// not finite is skipped; a run of steps with no valid update stops.
func (t *Trainer) update(s *rlStep) error {
	start := time.Now()
	m := s.metrics
	var losses stepLosses
	var gradNorm float64
	updates, skipped := 0, 0
	totalUpdates := t.cfg.Train.Steps * len(s.minibatches)
	for i, mb := range s.minibatches {
		if i == 0 && s.diffInUpdate {
			t.logpDiff = &logpDiff{}
		}
		ok, err := t.accumulate(s, mb, &losses)
		if t.logpDiff != nil {
			if err == nil {
				err = t.reportLogpDiff(*t.logpDiff, true, m)
			}
			t.logpDiff = nil
		}
		if err != nil {
			return err
		}
		if !ok {
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
			return fmt.Errorf("%d consecutive steps had only non-finite losses or gradients; stopping (the last good checkpoint is step %d)", t.badRun, t.lastCkp)
		}
	} else {
		t.badRun = 0
	}
	if err := t.reduceUpdateStats(&losses.policy, &losses.valueLoss, &losses.drpo.Objective, &losses.drpo.KL); err != nil {
		return err
	}
	if w := t.world(); w.Size() > 1 {
		rs := t.gradSync().stats()
		m["timing_s/allreduce"] = seconds(rs.Busy)
		m["timing_s/allreduce_wait"] = seconds(rs.Waited)
		if rs.Busy > 0 {
			m["perf/allreduce_overlap"] = rs.Overlapped.Seconds() / rs.Busy.Seconds()
		}
	}
	for k, v := range losses.policy.Map() {
		m[k] = v
	}
	if t.vh != nil {
		m["vf_loss"] = losses.valueLoss
	}
	if t.alg.Loss == optim.LossDRPO {
		m["drpo/objective"] = losses.drpo.Objective
		m["drpo/kl"] = losses.drpo.KL
	}
	m["timing_s/update"] = seconds(time.Since(start))
	return nil
}

// accumulate runs this rank's share of a minibatch's micro-batches (whole
// groups; all of them in one process), adding their gradients, then sums
// the gradients across ranks; it reports whether every loss was finite on
// every rank (a rank stops at its first that is not).
func (t *Trainer) accumulate(s *rlStep, mb minibatch, losses *stepLosses) (bool, error) {
	gs := t.gradSync()
	mine := t.minibatchShare(mb.seqs)
	ok := true
	mcs := chunks(len(mine), s.micro)
	for i, c := range mcs {
		if i == len(mcs)-1 {
			// Gradients are final during the last backward pass: their
			// sums across ranks start as its layers finish.
			gs.arm()
		}
		st, err := t.updateMicro(mine[c[0]:c[1]], mb.norm, mb.prompts, s.haveOld, s.invTemp)
		gs.disarm()
		if err != nil {
			return false, err
		}
		if !finite(st.policy.Loss) || !finite(st.drpo.Loss) || !finite(st.valueLoss) {
			ok = false
			break
		}
		losses.policy.Add(st.policy)
		losses.drpo.Objective += st.drpo.Objective
		losses.drpo.KL += st.drpo.KL
		losses.valueLoss += st.valueLoss
	}
	if err := gs.finish(); err != nil {
		return false, err
	}
	if gradsSummed != nil {
		gradsSummed(t)
	}
	bad, err := t.anyRank(!ok)
	return !bad, err
}

// finish records the step's throughput: every token the step ran through
// the model (prefill, decode and training) per second.
func (t *Trainer) finish(s *rlStep) {
	tokens := float64(s.stats.PrefillTokens + s.stats.GeneratedTokens)
	tokens += float64(t.trainTokens(s))
	s.metrics["perf/throughput"] = tokens / time.Since(s.start).Seconds()
	s.metrics["perf/generated_tokens"] = float64(s.stats.GeneratedTokens)
	if s.stats.Completions > 0 {
		// Tree rollouts generate a shared prefix once for its siblings.
		s.metrics["rollout/tokens_per_completion"] = float64(s.stats.GeneratedTokens) / float64(s.stats.Completions)
	}
	if s.stats.Forks > 0 {
		// Where tree rollouts branched: fixed with tree_branch_at: depth,
		// earlier where the policy is uncertain with entropy.
		s.metrics["rollout/tree_branch_position"] = float64(s.stats.ForkDepths) / float64(s.stats.Forks)
	}
	if t.cfg.Rollout.AbortHorizon > 0 {
		s.metrics["rollout/aborted"] = float64(s.stats.Aborted)
		s.metrics["rollout/abort_continued"] = float64(s.stats.Continued)
	}
	s.metrics["rollout/peak_kv_blocks"] = float64(s.stats.PeakBlocks)
	s.metrics["perf/world_size"] = float64(t.world().Size())
}

// trainTokens counts the tokens a step ran forward and backward.
func (t *Trainer) trainTokens(s *rlStep) int {
	n := 0
	for _, q := range s.seqs {
		n += len(q.ids)
	}
	return n * t.cfg.Train.PPOEpochs
}

// rowInvariantRollouts, with algorithm.old_logprobs: rollout, makes the
// policy's forward passes compute every row as a decoding step does, so
// that the sampler's log-probs are the trainer's to the bit and can stand
// for the old policy's (oldPolicy). A backend without row-invariant
// products gets a warning: the two then differ in the last bits, as
// rollout/logp_diff_max shows.
func (t *Trainer) rowInvariantRollouts() {
	if t.alg.OldLogprobs != optim.OldLogprobsRollout || t.pol.Model.RowInvariant() {
		return
	}
	if !t.pol.Model.SetRowInvariant(true) {
		t.logf("algorithm.old_logprobs: rollout: the %s backend cannot compute the forward pass as decoding does; the sampler's log-probs will differ from the trainer's in the last bits (see rollout/logp_diff_max)", t.be.Name())
	}
}

// advantageGroups are the sets advantages are normalised over: the
// prompts' groups, or with algorithm.tree_advantage: sibling each group's
// sibling sets of tree rollouts (completions forked from one partial
// completion).
func (t *Trainer) advantageGroups(s *rlStep) []int {
	if t.alg.TreeAdvantage != "sibling" || len(t.cfg.Rollout.TreeDepths) == 0 {
		return s.groupOf
	}
	ids := map[[2]int]int{}
	out := make([]int, len(s.seqs))
	for i, q := range s.seqs {
		key := [2]int{s.groupOf[i], q.branch}
		id, ok := ids[key]
		if !ok {
			id = len(ids)
			ids[key] = id
		}
		out[i] = id
	}
	return out
}
