package reward

import (
	"context"
	"math"
	"strings"
	"testing"
)

// TestLengthSwitchHand checks GRPO-λ's switch by hand. Rewards: acc (0/1,
// weight 1) and len (a penalty, weight 0.5). Group 0 has 1 correct of 4
// (ratio 0.25), group 1 has 3 of 4 (0.75), group 2 has 2 of 4 (0.5).
// Threshold 0.5: group 0 is scored by acc alone, groups 1 and 2 by
// acc + 0.5·len. With top_fraction 1/3 only ⌈1⌉ group, the best (1), keeps
// len.
func TestLengthSwitchHand(t *testing.T) {
	acc := [][]float64{{1, 0, 0, 0}, {1, 1, 0, 1}, {0, 1, 1, 0}}
	pen := [][]float64{{-0.2, -0.4, -0.6, -0.8}, {-0.1, -0.3, -0.5, -0.7}, {-1, -0.2, -0.4, 0}}
	var samples []Sample
	for g := range acc {
		for i := range acc[g] {
			samples = append(samples, Sample{Group: g, Fields: map[string]any{"c": acc[g][i], "l": pen[g][i]}})
		}
	}
	half := 0.5
	fns := []Spec{
		{Name: "acc", Type: "test_field", Params: map[string]any{"key": "c"}},
		{Name: "len", Type: "test_field", Params: map[string]any{"key": "l"}, Weight: &half},
	}
	for _, tc := range []struct {
		name string
		ls   *LengthSwitch
		keep []bool // by group
		kept float64
	}{
		{"no switch", nil, []bool{true, true, true}, -1},
		{"threshold 0.5", &LengthSwitch{Penalties: []string{"len"}, Threshold: 0.5}, []bool{false, true, true}, 2.0 / 3},
		{"threshold 0.8", &LengthSwitch{Penalties: []string{"len"}, Threshold: 0.8}, []bool{false, false, false}, 0},
		{"top third", &LengthSwitch{Penalties: []string{"len"}, Threshold: 0.5, TopFraction: 1.0 / 3}, []bool{false, true, false}, 1.0 / 3},
		{"correct_reward by name, threshold 0.25", &LengthSwitch{Penalties: []string{"len"}, Threshold: 0.25, CorrectReward: "acc", CorrectThreshold: 1}, []bool{true, true, true}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Config{Functions: fns, LengthSwitch: tc.ls})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			res, err := s.Score(context.Background(), samples)
			if err != nil {
				t.Fatal(err)
			}
			for i, smp := range samples {
				g, k := smp.Group, i%4
				want := acc[g][k]
				if tc.keep[g] {
					want += 0.5 * pen[g][k]
				}
				if math.Abs(res.Total[i]-want) > 1e-12 {
					t.Errorf("group %d sample %d: total %v, want %v", g, k, res.Total[i], want)
				}
				if res.Components[1][i] != pen[g][k] {
					t.Errorf("group %d sample %d: the len component changed to %v", g, k, res.Components[1][i])
				}
			}
			got, ok := res.Metrics["reward/length_switch/kept_groups"]
			if tc.kept < 0 && ok || tc.kept >= 0 && math.Abs(got-tc.kept) > 1e-12 {
				t.Errorf("kept_groups %v (logged %v), want %v", got, ok, tc.kept)
			}
		})
	}
}

// TestLengthSwitchErrors: unknown or inconsistent names are refused when
// the set is built, naming the option.
func TestLengthSwitchErrors(t *testing.T) {
	fns := []Spec{{Name: "acc", Type: "test_field", Params: map[string]any{"key": "c"}}, {Name: "len", Type: "test_field", Params: map[string]any{"key": "l"}}}
	for _, tc := range []struct {
		ls   LengthSwitch
		want string
	}{
		{LengthSwitch{Penalties: []string{"length"}}, `reward.length_switch.penalties: no reward is named "length"`},
		{LengthSwitch{Penalties: []string{"len"}, CorrectReward: "ac"}, `reward.length_switch.correct_reward: no reward is named "ac"`},
		{LengthSwitch{Penalties: []string{"len", "acc"}}, "cannot be a penalty"},
		{LengthSwitch{}, "reward.length_switch.penalties: name at least one reward"},
		{LengthSwitch{Penalties: []string{"len"}, Threshold: 2}, "reward.length_switch.threshold"},
	} {
		ls := tc.ls
		_, err := New(Config{Functions: fns, LengthSwitch: &ls})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to contain %q", tc.ls, err, tc.want)
		}
	}
}
