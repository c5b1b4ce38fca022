package train

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/rltrain/rltrain/optim"
	"github.com/rltrain/rltrain/rollout"
)

// TestAllocateGroups checks the budget's shares by hand. Equal pass rates
// share equally. With pass rates 0.99, 0.5, 0.01, 12 completions and
// 2..8 each, the 6 beyond the minimum go to the uncertain prompt while its
// gain (0.25, 0.125, … halving) beats the others' 0.0099 — five of them —
// and the sixth to the first certain prompt (the lower index of a tie).
func TestAllocateGroups(t *testing.T) {
	for _, tc := range []struct {
		p             []float64
		total, lo, hi int
		want          []int
	}{
		{[]float64{0.5, 0.5}, 8, 2, 8, []int{4, 4}},
		{[]float64{0.99, 0.5, 0.01}, 12, 2, 8, []int{3, 7, 2}},
		{[]float64{0.5, 0.5, 0.5}, 20, 2, 4, []int{4, 4, 4}},
		{[]float64{0.2, 0.9}, 6, 3, 6, []int{3, 3}},
		{[]float64{1, 0.3}, 10, 1, 9, []int{1, 9}},
	} {
		if got := allocateGroups(tc.p, tc.total, tc.lo, tc.hi); !slices.Equal(got, tc.want) {
			t.Errorf("allocate(%v, total %d, %d..%d) = %v, want %v", tc.p, tc.total, tc.lo, tc.hi, got, tc.want)
		}
	}
}

// TestBudgetedRollouts runs a few steps with pass-rate budgets on five
// repeated prompts: group sizes vary between the bounds and every step
// spends exactly batch_size x group_size completions.
func TestBudgetedRollouts(t *testing.T) {
	dir := t.TempDir()
	c := parseConfig(t, tinyYAML(dir), "rollout.budget=pass_rate", "rollout.min_group_size=2", "rollout.max_group_size=6",
		"rollout.batch_size=4", "train.steps=6", "checkpoint.every=0", "data.task_params={difficulty: 1, holdout: 0.98}")
	runConfig(t, c, Options{})
	steps := stepMetrics(t, dir)
	varied := false
	for _, m := range steps {
		lo, hi := m["rollout/group_size_min"], m["rollout/group_size_max"]
		if lo < 2 || hi > 6 || lo > 4 || hi < 4 {
			t.Errorf("step %v: group sizes %v..%v", m["step"], lo, hi)
		}
		varied = varied || lo != hi
		t.Logf("step %v: group sizes %v..%v", m["step"], lo, hi)
		if n := m["rollout/completions"]; n != 16 {
			t.Errorf("step %v: %v completions, want the budget of 16", m["step"], n)
		}
	}
	if !varied {
		t.Error("every group had the same size")
	}
}

// TestEMPGRun: with algorithm.empg_k the step's advantages are scaled
// around 1 (the scales' extremes are logged) at the cost of one entropy
// pass.
func TestEMPGRun(t *testing.T) {
	dir := t.TempDir()
	runConfig(t, parseConfig(t, tinyYAML(dir), "algorithm.empg_k=1", "train.steps=3", "checkpoint.every=0"), Options{})
	for _, m := range stepMetrics(t, dir) {
		lo, hi := m["empg/scale_min"], m["empg/scale_max"]
		if !(lo > 0 && lo <= 1 && hi >= 1 && hi <= 3) || m["timing_s/empg"] == 0 {
			t.Errorf("step %v: scales %v..%v, pass %vs", m["step"], lo, hi, m["timing_s/empg"])
		}
	}
}

// oneRLStep takes the first RL step (no warm-up) of tinyYAML with the
// overrides sets; the trainer is closed when the test ends.
func oneRLStep(t *testing.T, sets ...string) (*Trainer, *rlStep) {
	t.Helper()
	sets = append([]string{"train.steps=1", "checkpoint.every=0", "sft.steps=0"}, sets...)
	tr, err := New(parseConfig(t, tinyYAML(t.TempDir()), sets...), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	s, err := tr.step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tr, s
}

// TestTreeRolloutRun: tree rollouts with sibling advantages and the
// shared prefixes left out of the loss: each step's loss covers exactly
// the completion tokens after the last branch point.
func TestTreeRolloutRun(t *testing.T) {
	_, s := oneRLStep(t, "rollout.tree_depths=[1]", "rollout.tree_branch=2", "algorithm.tree_advantage=sibling",
		"algorithm.tree_mask_shared=true")
	var want float64
	branches := map[[2]int]bool{}
	for i, q := range s.seqs {
		if q.lossFrom != q.shared || q.shared < 1 {
			t.Errorf("sequence %d: loss from token %d, shared %d", i, q.lossFrom, q.shared)
		}
		if !q.excluded {
			want += float64(q.lossLen())
		}
		branches[[2]int{q.group, q.branch}] = true
	}
	if got := s.metrics["loss_tokens"]; got != want {
		t.Errorf("loss tokens %v, want %v (the tokens after each branch point)", got, want)
	}
	if len(branches) != 2*len(s.groups) {
		t.Errorf("%d sibling sets in %d groups, want 2 per group", len(branches), len(s.groups))
	}
}

// TestTreeBranchPositionMetric: rollout/tree_branch_position is the mean
// number of tokens shared at a branch point: tree_depths[0] with fixed
// depths, the first token with tree_branch_at: entropy and a threshold
// every distribution reaches.
func TestTreeBranchPositionMetric(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want float64
	}{
		{nil, 3},
		{[]string{"rollout.tree_branch_at=entropy", "rollout.tree_entropy_threshold=1e-9"}, 1},
	} {
		_, s := oneRLStep(t, append([]string{"rollout.tree_depths=[3]", "rollout.tree_branch=2"}, tc.sets...)...)
		if got, ok := s.metrics["rollout/tree_branch_position"]; !ok || got != tc.want {
			t.Errorf("%v: rollout/tree_branch_position = %v (present %v), want %v", tc.sets, got, ok, tc.want)
		}
	}
}

// TestMarkerGatedAbortStep: completions aborted at rollout.abort_horizon
// are left out of the update (no reward, no advantage, not counted as
// reward failures) and completions continued past it without a marker
// carry 1/abort_keep_prob times the advantage the estimator gives them
// over the remaining samples.
func TestMarkerGatedAbortStep(t *testing.T) {
	const keep = 0.5
	tr, s := oneRLStep(t, "rollout.batch_size=4", "rollout.group_size=8", "rollout.abort_horizon=2",
		`rollout.abort_markers=["0","1","2","3","4"]`, "rollout.abort_keep_prob=0.5")
	adv, _, err := optim.Advantages(tr.alg, [][]float64{s.totals}, nil, tr.advantageGroups(s))
	if err != nil {
		t.Fatal(err)
	}
	i, aborted, continued := 0, 0, 0
	for _, g := range s.groups {
		for _, comp := range g.comps {
			q := s.seqs[i]
			switch {
			case comp.Finish == rollout.FinishAbort:
				aborted++
				if !q.excluded || q.completionLen() != 2 || !math.IsNaN(s.totals[i]) {
					t.Errorf("aborted completion %d: excluded %v, %d tokens, reward %v", i, q.excluded, q.completionLen(), s.totals[i])
				}
			case q.excluded:
				t.Errorf("completion %d (%s) excluded", i, comp.Finish)
			default:
				w := float32(1)
				if comp.Continued {
					continued++
					w = float32(1 / keep)
				}
				if want := float32(adv[i]) * w; q.adv != want {
					t.Errorf("completion %d (continued %v): advantage %v, want %v", i, comp.Continued, q.adv, want)
				}
			}
			i++
		}
	}
	t.Logf("%d aborted, %d continued of %d", aborted, continued, len(s.seqs))
	if aborted == 0 || continued == 0 {
		t.Fatalf("%d aborted and %d continued: the test needs both", aborted, continued)
	}
	if s.metrics["rollout/aborted"] != float64(aborted) || s.metrics["rollout/abort_continued"] != float64(continued) {
		t.Errorf("metrics rollout/aborted %v, rollout/abort_continued %v", s.metrics["rollout/aborted"], s.metrics["rollout/abort_continued"])
	}
	if v, ok := s.metrics["reward/excluded"]; ok {
		t.Errorf("reward/excluded = %v: aborted completions are not reward failures", v)
	}
	// A batch whose every completion was aborted scores nothing.
	g := &rolledGroup{ex: s.groups[0].ex, comps: []rollout.Completion{{Finish: rollout.FinishAbort}, {Finish: rollout.FinishAbort}}}
	if _, err := tr.score(context.Background(), []*rolledGroup{g}); err != nil {
		t.Fatal(err)
	}
	if !g.excl[0] || !g.excl[1] || !math.IsNaN(g.totals[0]) || len(g.comp) != 1 || !math.IsNaN(g.comp[0][1]) {
		t.Errorf("all aborted: excluded %v, totals %v, components %v", g.excl, g.totals, g.comp)
	}
}
