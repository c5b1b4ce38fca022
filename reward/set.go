package reward

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rltrain/rltrain/internal/option"
)

// Set is a configured list of rewards and the rule that combines them. It
// isolates failures: a reward that panics, errors, returns NaN/Inf or times
// out marks the affected samples, which get the reward's fallback, and Score
// still returns.
type Set struct {
	entries []*entry
	combine string
	shaping *Shaping
	logf    func(string)
	policy  Policy // for the rewards that score text with it (WithPolicy)
	// GRPO-λ's switch (nil without one): the penalties' indices and the
	// correctness reward's.
	lengthSwitch *LengthSwitch
	penalty      []bool
	correct      int

	seenMu sync.Mutex
	seen   map[string]struct{}
}

type entry struct {
	name     string
	weight   float64
	fallback *float64
	timeout  time.Duration
	shaping  *Shaping
	r        Reward
	// busy is set while a Score call is in flight; a call that timed out and
	// was abandoned keeps it set, and the reward is skipped (its samples
	// errored) until that call returns, so a reward is never run
	// concurrently with itself.
	busy atomic.Bool
}

// Option configures a Set.
type Option func(*Set)

// WithLogger sends error messages (each distinct message once) to logf
// instead of the standard logger.
func WithLogger(logf func(msg string)) Option { return func(s *Set) { s.logf = logf } }

// maxDistinctErrors bounds the memory spent remembering logged messages.
const maxDistinctErrors = 10000

// New checks cfg (errors name the option, e.g. `reward.functions.1.name:
// "fmt" is already the name of reward.functions.0`) and builds every
// reward in it (errors name the reward, e.g. `reward[1] "fmt": unknown
// type "foramt"`).
func New(cfg Config, opts ...Option) (*Set, error) {
	cfg = cfg.withDefaults()
	if err := option.Validate("reward", cfg); err != nil {
		return nil, err
	}
	if len(cfg.Functions) == 0 {
		return nil, errors.New("reward: no reward functions configured")
	}
	s := &Set{
		combine: cfg.Combine,
		shaping: cfg.Shaping,
		logf:    func(msg string) { log.Print(msg) },
		seen:    map[string]struct{}{},
	}
	for _, o := range opts {
		o(s)
	}
	for i, spec := range cfg.Functions {
		r, err := Build(spec)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("reward[%d] %q: %w", i, spec.name(), err)
		}
		fb, _ := spec.fallback() // checked by Validate
		to := spec.Timeout
		if to <= 0 {
			to = cfg.Timeout
		}
		if pu, ok := r.(PolicyUser); ok && s.policy != nil {
			pu.UsePolicy(s.policy)
		}
		s.entries = append(s.entries, &entry{name: spec.name(), weight: spec.weight(), fallback: fb, timeout: to, shaping: spec.Shaping, r: r})
	}
	if ls := cfg.LengthSwitch; ls != nil {
		var err error
		if s.penalty, s.correct, err = ls.resolve(s.Names()); err != nil {
			s.Close()
			return nil, err
		}
		s.lengthSwitch = ls
	}
	return s, nil
}

// Names returns the rewards' names in config order.
func (s *Set) Names() []string {
	out := make([]string, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.name
	}
	return out
}

// Weights returns the rewards' weights in config order.
func (s *Set) Weights() []float64 {
	out := make([]float64, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.weight
	}
	return out
}

// Result holds a scored batch.
type Result struct {
	Names   []string  // reward names, config order
	Weights []float64 // reward weights, config order
	// Components[k][i] is reward k's value for sample i after its own
	// shaping and before weighting: what a per-reward normaliser (GDPO)
	// needs. Failed samples hold the fallback, or NaN when excluded.
	Components [][]float64
	// Failed[k][i] reports that reward k failed on sample i.
	Failed [][]bool
	// Total is the combined reward; NaN where Excluded.
	Total []float64
	// Excluded marks samples that must not contribute to the loss: some
	// reward failed on them and its fallback is "exclude".
	Excluded []bool
	// Metrics: reward, reward_std, reward/excluded, reward/errors/<name>,
	// rewards/<name>/mean, rewards/<name>/std and each reward's own
	// metrics as rewards/<name>/<metric>.
	Metrics map[string]float64
}

// Score scores a batch with every reward (rewards run concurrently, each
// using all cores) and combines the results. It returns an error only when
// ctx is cancelled; reward failures are recorded in the Result.
func (s *Set) Score(ctx context.Context, samples []Sample) (*Result, error) {
	n := len(samples)
	K := len(s.entries)
	res := &Result{
		Names:      s.Names(),
		Weights:    s.Weights(),
		Components: make([][]float64, K),
		Failed:     make([][]bool, K),
		Total:      make([]float64, n),
		Excluded:   make([]bool, n),
		Metrics:    map[string]float64{},
	}
	outs := make([]Scores, K)
	batchErrs := make([]error, K)
	var wg sync.WaitGroup
	for k, e := range s.entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[k], batchErrs[k] = e.run(ctx, samples)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	for k, e := range s.entries {
		vals, failed, errCount := s.component(e, outs[k], batchErrs[k], samples)
		for i, f := range failed {
			if f && e.fallback == nil {
				res.Excluded[i] = true
			}
		}
		res.Components[k] = vals
		res.Failed[k] = failed
		res.Metrics["reward/errors/"+e.name] = float64(errCount)
		mean, std := meanStd(vals, nil)
		res.Metrics["rewards/"+e.name+"/mean"] = mean
		res.Metrics["rewards/"+e.name+"/std"] = std
		for m, v := range outs[k].Metrics {
			res.Metrics["rewards/"+e.name+"/"+m] = v
		}
	}

	keep := s.keepPenalties(samples, res)
	for i := 0; i < n; i++ {
		if res.Excluded[i] {
			res.Total[i] = math.NaN()
			continue
		}
		var drop []bool
		if keep != nil && !keep[i] {
			drop = s.penalty
		}
		res.Total[i] = combine(s.combine, res.Weights, res.Components, drop, i)
	}
	if s.shaping != nil {
		applyShaping(s.shaping, samples, res.Total, res.Excluded)
	}
	excluded := 0
	for _, x := range res.Excluded {
		if x {
			excluded++
		}
	}
	mean, std := meanStd(res.Total, res.Excluded)
	res.Metrics["reward"] = mean
	res.Metrics["reward_std"] = std
	res.Metrics["reward/excluded"] = float64(excluded)
	return res, nil
}

// component turns one reward's batch result into its column of scores: a
// batch error, a sample's error or a non-finite score fails the sample
// (logged once per message), shaping applies to the rest, and a failed
// sample gets the reward's fallback, or NaN when it has none (the caller
// then excludes it). It returns the column, which samples failed and how
// many.
func (s *Set) component(e *entry, out Scores, berr error, samples []Sample) (vals []float64, failed []bool, errCount int) {
	n := len(samples)
	vals, failed = make([]float64, n), make([]bool, n)
	if berr == nil && len(out.Values) != n {
		berr = fmt.Errorf("returned %d scores for %d samples", len(out.Values), n)
	}
	if berr == nil && out.Errs != nil && len(out.Errs) != n {
		berr = fmt.Errorf("returned %d errors for %d samples", len(out.Errs), n)
	}
	fail := func(i int, err error) {
		failed[i] = true
		errCount++
		s.logOnce(fmt.Sprintf("reward %q: %v", e.name, err))
	}
	for i := 0; i < n; i++ {
		switch {
		case berr != nil:
			fail(i, berr)
		case out.Errs != nil && out.Errs[i] != nil:
			fail(i, out.Errs[i])
		case !finite(out.Values[i]):
			fail(i, fmt.Errorf("non-finite score %v", out.Values[i]))
		default:
			vals[i] = out.Values[i]
		}
	}
	if e.shaping != nil {
		applyShaping(e.shaping, samples, vals, failed)
	}
	for i, f := range failed {
		if !f {
			continue
		}
		if e.fallback != nil {
			vals[i] = *e.fallback
		} else {
			vals[i] = math.NaN()
		}
	}
	return vals, failed, errCount
}

// combine is sample i's combined reward, leaving out the rewards marked in
// drop (nil: none).
func combine(mode string, w []float64, comps [][]float64, drop []bool, i int) float64 {
	switch mode {
	case CombineMin:
		m := math.Inf(1)
		for k := range comps {
			if drop == nil || !drop[k] {
				m = math.Min(m, w[k]*comps[k][i])
			}
		}
		return m
	default:
		t := 0.0
		for k := range comps {
			if drop == nil || !drop[k] {
				t += w[k] * comps[k][i]
			}
		}
		return t
	}
}

// keepPenalties is GRPO-λ's switch: for each sample, whether its group's
// combined reward keeps the length penalties — its fraction of correct
// completions (excluded samples left out) is at least the threshold and,
// with top_fraction < 1, the group is among the ⌈top_fraction·groups⌉
// highest fractions of the batch (ties in order of first appearance). It
// records reward/length_switch/kept_groups, the fraction of groups that
// kept them. nil without a switch.
func (s *Set) keepPenalties(samples []Sample, res *Result) []bool {
	ls := s.lengthSwitch
	if ls == nil {
		return nil
	}
	type group struct {
		correct, n float64
		keep       bool
	}
	byID := map[int]*group{}
	var order []*group
	for i, smp := range samples {
		g := byID[smp.Group]
		if g == nil {
			g = &group{}
			byID[smp.Group] = g
			order = append(order, g)
		}
		if res.Excluded[i] {
			continue
		}
		g.n++
		if res.Components[s.correct][i] >= ls.CorrectThreshold {
			g.correct++
		}
	}
	ratio := func(g *group) float64 {
		if g.n == 0 {
			return 0
		}
		return g.correct / g.n
	}
	ranked := slices.Clone(order)
	slices.SortStableFunc(ranked, func(a, b *group) int { return cmp.Compare(ratio(b), ratio(a)) })
	allowed := int(math.Ceil(ls.TopFraction*float64(len(ranked)) - 1e-9))
	kept := 0
	for r, g := range ranked {
		g.keep = r < allowed && ratio(g) >= ls.Threshold
		if g.keep {
			kept++
		}
	}
	keep := make([]bool, len(samples))
	for i, smp := range samples {
		keep[i] = byID[smp.Group].keep
	}
	if len(order) > 0 {
		res.Metrics["reward/length_switch/kept_groups"] = float64(kept) / float64(len(order))
	}
	return keep
}

// applyShaping replaces vals[i] by σ((vals[i] − ref)/scale) for samples not
// marked in skip.
func applyShaping(sh *Shaping, samples []Sample, vals []float64, skip []bool) {
	scale := sh.Scale
	var groupMean map[int]float64
	if sh.Ref.GroupMean {
		sum := map[int]float64{}
		cnt := map[int]int{}
		for i, v := range vals {
			if skip[i] {
				continue
			}
			sum[samples[i].Group] += v
			cnt[samples[i].Group]++
		}
		groupMean = make(map[int]float64, len(sum))
		for g, s := range sum {
			groupMean[g] = s / float64(cnt[g])
		}
	}
	for i, v := range vals {
		if skip[i] {
			continue
		}
		ref := sh.Ref.Value
		switch {
		case sh.Ref.GroupMean:
			ref = groupMean[samples[i].Group]
		case sh.RefField != "":
			if f, ok := fieldFloat(samples[i].Fields, sh.RefField); ok {
				ref = f
			}
		}
		vals[i] = 1 / (1 + math.Exp(-(v-ref)/scale))
	}
}

// meanStd returns the mean and population standard deviation of the values
// not skipped and not NaN.
func meanStd(vals []float64, skip []bool) (float64, float64) {
	sum, n := 0.0, 0
	for i, v := range vals {
		if (skip != nil && skip[i]) || math.IsNaN(v) {
			continue
		}
		sum += v
		n++
	}
	if n == 0 {
		return 0, 0
	}
	mean := sum / float64(n)
	ss := 0.0
	for i, v := range vals {
		if (skip != nil && skip[i]) || math.IsNaN(v) {
			continue
		}
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / float64(n))
}

// run calls the reward with a deadline and turns a panic into an error. When
// the deadline passes and the reward does not return promptly, the call is
// abandoned (Go cannot stop a goroutine) and the whole batch counts as timed
// out.
func (e *entry) run(ctx context.Context, samples []Sample) (Scores, error) {
	if !e.busy.CompareAndSwap(false, true) {
		return Scores{}, errors.New("skipped: a previous call that timed out is still running")
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	type outcome struct {
		s   Scores
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		func() {
			defer func() {
				if r := recover(); r != nil {
					o.err = fmt.Errorf("panic: %v", r)
				}
			}()
			o.s, o.err = e.r.Score(ctx, samples)
		}()
		// Clear busy before handing over the result, so the caller's
		// next batch never sees this finished call as still running.
		e.busy.Store(false)
		done <- o
	}()
	select {
	case o := <-done:
		return o.s, o.err
	case <-ctx.Done():
	}
	// Give a reward that honours ctx a moment to hand back partial
	// results (the built-ins return at once with the unfinished samples
	// marked).
	grace := time.NewTimer(100 * time.Millisecond)
	defer grace.Stop()
	select {
	case o := <-done:
		return o.s, o.err
	case <-grace.C:
		return Scores{}, fmt.Errorf("timed out after %s", e.timeout)
	}
}

func (s *Set) logOnce(msg string) {
	s.seenMu.Lock()
	_, dup := s.seen[msg]
	full := len(s.seen) >= maxDistinctErrors
	if !dup && !full {
		s.seen[msg] = struct{}{}
	}
	s.seenMu.Unlock()
	if !dup && !full {
		s.logf(msg)
	}
}

// Close releases resources held by rewards (external processes).
func (s *Set) Close() error {
	var errs []error
	for _, e := range s.entries {
		if c, ok := e.r.(Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("reward %q: %w", e.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// MarshalState returns the learned state of every Stateful reward, keyed by
// reward name, for checkpoints.
func (s *Set) MarshalState() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, e := range s.entries {
		if st, ok := e.r.(Stateful); ok {
			b, err := st.MarshalState()
			if err != nil {
				return nil, fmt.Errorf("reward %q: save state: %w", e.name, err)
			}
			out[e.name] = b
		}
	}
	return out, nil
}

// UnmarshalState restores state saved by MarshalState. Names with no
// matching Stateful reward are errors, so a renamed reward is noticed.
func (s *Set) UnmarshalState(state map[string][]byte) error {
	byName := map[string]*entry{}
	for _, e := range s.entries {
		byName[e.name] = e
	}
	for name, b := range state {
		e, ok := byName[name]
		if !ok {
			return fmt.Errorf("reward state for %q: no such reward", name)
		}
		st, ok := e.r.(Stateful)
		if !ok {
			return fmt.Errorf("reward state for %q: reward keeps no state", name)
		}
		if err := st.UnmarshalState(b); err != nil {
			return fmt.Errorf("reward %q: load state: %w", name, err)
		}
	}
	return nil
}
