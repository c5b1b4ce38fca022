package train

import (
	"slices"
	"testing"
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
