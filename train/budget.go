package train

import (
	"container/heap"
	"math"

	"github.com/rltrain/rltrain/data"
)

// Budgeted rollouts (rollout.budget: pass_rate), after DUET's idea of
// spending a fixed sampling budget where it informs the update: a GRPO
// group teaches nothing when all its completions are right or all wrong,
// which for a prompt of pass rate p and n completions happens with
// probability pⁿ + (1−p)ⁿ. The step's batch_size × group_size completions
// are shared out so as to maximise the expected number of informative
// groups, Σ_j 1 − p_jⁿʲ − (1−p_j)ⁿʲ, with min_group_size ≤ n_j ≤
// max_group_size: starting from the minimum, each further completion goes
// to the prompt whose expectation it raises most (the gain of an n+1-th is
// pⁿ(1−p) + (1−p)ⁿp, which shrinks with n, so the greedy choice is optimal).
// p_j is the prompt's running pass rate, shrunk towards the run's:
// (correct_j + k·p̄)/(completions_j + k), k = pass_rate_prior, so a prompt
// never seen gets p̄ and one seen often its own rate.

// passCount is a prompt's (or the run's) correct completions and
// completions so far.
type passCount struct {
	Correct float64 `json:"c"`
	Total   float64 `json:"n"`
}

// passKey names a prompt for its pass rate: its text (a built-in task's
// examples have a new id each time a prompt comes back), or its id when it
// is a message list.
func passKey(ex data.Example) string {
	if ex.Prompt != "" {
		return ex.System + "\x00" + ex.Prompt
	}
	return ex.ID
}

// passRate is the prompt's shrunk pass rate.
func (t *Trainer) passRate(key string) float64 {
	run := t.state.PassRun
	mean := 0.5
	if run.Total > 0 {
		mean = run.Correct / run.Total
	}
	k := t.cfg.Rollout.PassRatePrior
	c := t.state.PassRates[key]
	return (c.Correct + k*mean) / (c.Total + k)
}

// groupSizes returns the completions of each example under the step's
// budget (nil with a fixed group size, which the engine then applies).
func (t *Trainer) groupSizes(exs []data.Example) []int {
	r := t.cfg.Rollout
	if r.Budget != "pass_rate" {
		return nil
	}
	p := make([]float64, len(exs))
	for i, ex := range exs {
		p[i] = t.passRate(passKey(ex))
	}
	return allocateGroups(p, len(exs)*r.GroupSize, r.MinGroupSize, r.MaxGroup())
}

// recordPasses adds the scored groups to the running pass rates.
func (t *Trainer) recordPasses(groups []*rolledGroup) {
	if t.cfg.Rollout.Budget != "pass_rate" {
		return
	}
	if t.state.PassRates == nil {
		t.state.PassRates = map[string]passCount{}
	}
	for _, g := range groups {
		key := passKey(g.ex)
		c := t.state.PassRates[key]
		for si := range g.comps {
			if !t.judged(g, si) {
				continue
			}
			c.Total++
			t.state.PassRun.Total++
			if t.isCorrect(g, si) {
				c.Correct++
				t.state.PassRun.Correct++
			}
		}
		t.state.PassRates[key] = c
	}
}

// informativeGain is the rise in P(a group has both outcomes) from a
// prompt's n+1-th completion at pass rate p.
func informativeGain(p float64, n int) float64 {
	return math.Pow(p, float64(n))*(1-p) + math.Pow(1-p, float64(n))*p
}

// allocateGroups shares total completions among prompts of pass rates p,
// each getting between lo and hi, to maximise the expected number of
// informative groups (ties go to the earlier prompt). If hi·len(p) <
// total the rest is not spent.
func allocateGroups(p []float64, total, lo, hi int) []int {
	n := make([]int, len(p))
	q := &gainHeap{}
	left := total
	for i := range p {
		n[i] = lo
		left -= lo
		if lo < hi {
			*q = append(*q, gainItem{i: i, gain: informativeGain(p[i], lo)})
		}
	}
	heap.Init(q)
	for left > 0 && q.Len() > 0 {
		it := heap.Pop(q).(gainItem)
		n[it.i]++
		left--
		if n[it.i] < hi {
			heap.Push(q, gainItem{i: it.i, gain: informativeGain(p[it.i], n[it.i])})
		}
	}
	return n
}

type gainItem struct {
	i    int
	gain float64
}

// gainHeap pops the largest gain first, the lowest index on ties.
type gainHeap []gainItem

func (h gainHeap) Len() int { return len(h) }
func (h gainHeap) Less(a, b int) bool {
	if h[a].gain != h[b].gain {
		return h[a].gain > h[b].gain
	}
	return h[a].i < h[b].i
}
func (h gainHeap) Swap(a, b int) { h[a], h[b] = h[b], h[a] }
func (h *gainHeap) Push(x any)   { *h = append(*h, x.(gainItem)) }
func (h *gainHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
