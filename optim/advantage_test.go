package optim

import (
	"math"
	"strings"
	"testing"
)

func closeSlice(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol {
			t.Errorf("%s[%d] = %.9g, want %.9g (tolerance %g)", name, i, got[i], want[i], tol)
		}
	}
}

// TestAdvantageTables checks every outcome estimator on hand-computed
// batches: a mixed group, a group with equal rewards, a group of one, NaN
// rewards, and the batch-level variants.
func TestAdvantageTables(t *testing.T) {
	nan := math.NaN()
	// Group 0 = {1, 0, 1, 0}: mean ½, unbiased std √(1/3).
	g0 := 0.5 / (math.Sqrt(1.0/3) + 1e-4)
	// All eight rewards: mean 13/8, Σ(r − mean)² = 17.875.
	b8 := 0.5 / (math.Sqrt(17.875/7) + 1e-4)
	// {1, NaN, 0}: finite values {1, 0}, std √½.
	gn := 0.5 / (math.Sqrt(0.5) + 1e-4)
	// GDPO: per-reward group normalisation gives ±x with x = ½/(√½+1e-4).
	x := 0.5 / (math.Sqrt(0.5) + 1e-4)
	// pre = [x − x/2, −x + x/2, 0, 0] = [x/2, −x/2, 0, 0]; batch std
	// √((x²/4·2)/3) = x/√6.
	gd := (x / 2) / (x/math.Sqrt(6) + 1e-4)
	mixed := []float64{1, 0, 1, 0, 2, 2, 2, 5}
	mixedGroups := []int{0, 0, 0, 0, 1, 1, 1, 2}

	cases := []struct {
		name     string
		adv      string
		scale    string
		whiten   bool
		rewards  [][]float64
		weights  []float64
		groups   []int
		want     []float64
		zeroStd  float64
		excluded int
	}{
		{"grpo group scale", AdvGRPO, "group", false, [][]float64{mixed}, nil, mixedGroups,
			[]float64{g0, -g0, g0, -g0, 0, 0, 0, 0}, 2.0 / 3, 0},
		{"grpo batch scale", AdvGRPO, "batch", false, [][]float64{mixed}, nil, mixedGroups,
			[]float64{b8, -b8, b8, -b8, 0, 0, 0, 0}, 2.0 / 3, 0},
		{"grpo no scale", AdvGRPO, "none", false, [][]float64{mixed}, nil, mixedGroups,
			[]float64{0.5, -0.5, 0.5, -0.5, 0, 0, 0, 0}, 2.0 / 3, 0},
		{"dr_grpo", AdvDrGRPO, "group", false, [][]float64{mixed}, nil, mixedGroups,
			[]float64{0.5, -0.5, 0.5, -0.5, 0, 0, 0, 0}, 2.0 / 3, 0},
		{"rloo", AdvRLOO, "group", false, [][]float64{mixed}, nil, mixedGroups,
			[]float64{2.0 / 3, -2.0 / 3, 2.0 / 3, -2.0 / 3, 0, 0, 0, 0}, 2.0 / 3, 0},
		{"grpo with NaN", AdvGRPO, "group", false, [][]float64{{1, nan, 0}}, nil, []int{7, 7, 7},
			[]float64{gn, 0, -gn}, 0, 1},
		{"rloo with NaN", AdvRLOO, "group", false, [][]float64{{1, nan, 0}}, nil, []int{7, 7, 7},
			[]float64{1, 0, -1}, 0, 1},
		{"grpo all NaN group", AdvGRPO, "group", false, [][]float64{{nan, nan, 1, 0}}, nil, []int{1, 1, 2, 2},
			[]float64{0, 0, gn, -gn}, 0.5, 2},
		{"reinforce_pp", AdvReinforcePP, "group", false, [][]float64{{1, 0, 3}}, nil, []int{0, 1, 2},
			[]float64{-1.0 / 3, -4.0 / 3, 5.0 / 3}, 1, 0},
		{"reinforce_pp whitened", AdvReinforcePP, "group", true, [][]float64{{1, 0, 3}}, nil, []int{0, 1, 2},
			[]float64{-1.0 / 3 / (math.Sqrt(7.0/3) + 1e-4), -4.0 / 3 / (math.Sqrt(7.0/3) + 1e-4), 5.0 / 3 / (math.Sqrt(7.0/3) + 1e-4)}, 1, 0},
		{"reinforce_pp equal", AdvReinforcePP, "group", true, [][]float64{{0.3, 0.3, 0.3}}, nil, []int{0, 0, 0},
			[]float64{0, 0, 0}, 1, 0},
		{"gdpo", AdvGDPO, "group", false, [][]float64{{1, 0, 1, 1}, {0, 1, nan, 0}}, []float64{1, 0.5}, []int{0, 0, 1, 1},
			[]float64{gd, -gd, 0, 0}, 0.5, 0},
		{"gdpo all equal", AdvGDPO, "group", false, [][]float64{{1, 1}, {0.1, 0.1}}, nil, []int{0, 0},
			[]float64{0, 0}, 1, 0},
		{"equal rewards of 0.1 give exact zeros", AdvGRPO, "group", false, [][]float64{{0.1, 0.1, 0.1}}, nil, []int{0, 0, 0},
			[]float64{0, 0, 0}, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := DefaultAlgorithm()
			a.Advantage, a.ScaleRewards, a.Whiten = tc.adv, tc.scale, tc.whiten
			adv, st, err := Advantages(a, tc.rewards, tc.weights, tc.groups)
			if err != nil {
				t.Fatal(err)
			}
			closeSlice(t, "advantage", adv, tc.want, 1e-9)
			for i, v := range adv {
				if tc.want[i] == 0 && v != 0 {
					t.Errorf("advantage[%d] = %g, want exactly 0", i, v)
				}
			}
			if math.Abs(st.FracZeroStd-tc.zeroStd) > 1e-12 {
				t.Errorf("frac_reward_zero_std = %v, want %v", st.FracZeroStd, tc.zeroStd)
			}
			if st.Excluded != tc.excluded {
				t.Errorf("excluded = %d, want %d", st.Excluded, tc.excluded)
			}
		})
	}
}

func TestAdvantageErrors(t *testing.T) {
	a := DefaultAlgorithm()
	cases := []struct {
		name    string
		adv     string
		rewards [][]float64
		groups  []int
		want    string
	}{
		{"group ids", AdvGRPO, [][]float64{{1, 2}}, []int{0}, "group ids"},
		{"several rewards", AdvGRPO, [][]float64{{1}, {2}}, []int{0}, "one combined reward"},
		{"ragged", AdvGDPO, [][]float64{{1, 2}, {2}}, []int{0, 0}, "samples"},
		{"gae", AdvGAE, [][]float64{{1}}, []int{0}, "per-token"},
	}
	for _, tc := range cases {
		a.Advantage = tc.adv
		if _, _, err := Advantages(a, tc.rewards, nil, tc.groups); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestRewardStats(t *testing.T) {
	st := RewardStats([]float64{1, 0, 1, 0, math.NaN()}, []int{0, 0, 1, 1, 1})
	if st.Reward != 0.5 || math.Abs(st.RewardStd-math.Sqrt(1.0/3)) > 1e-12 || st.Excluded != 1 || st.FracZeroStd != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestBroadcastTokens(t *testing.T) {
	got := BroadcastTokens([]float64{2, -1}, []int{1, 3, 4}, 5)
	want := []float32{0, 2, 2, -1, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// TestGAETables checks GAE on a three-token completion by hand.
func TestGAETables(t *testing.T) {
	cases := []struct {
		name         string
		gamma, lam   float64
		r, v         []float64
		adv, returns []float64
	}{
		// δ = [0.1, 0.1, 0.3]; A2 = 0.3, A1 = 0.1+0.95·0.3, A0 = 0.1+0.95·A1.
		{"γ=1 λ=0.95", 1, 0.95, []float64{0, 0, 1}, []float64{0.5, 0.6, 0.7},
			[]float64{0.46575, 0.385, 0.3}, []float64{0.96575, 0.985, 1.0}},
		// λ = 1 gives discounted Monte-Carlo returns: 0.81, 0.9, 1.
		{"γ=0.9 λ=1", 0.9, 1, []float64{0, 0, 1}, []float64{0.5, 0.6, 0.7},
			[]float64{0.31, 0.3, 0.3}, []float64{0.81, 0.9, 1.0}},
		// λ = 0 is one-step TD: A_t = δ_t.
		{"γ=1 λ=0", 1, 0, []float64{0.5, -1}, []float64{1, 2},
			[]float64{1.5, -3}, []float64{2.5, -1}},
		{"empty", 1, 0.95, nil, nil, []float64{}, []float64{}},
	}
	for _, tc := range cases {
		adv, ret := GAE(tc.r, tc.v, tc.gamma, tc.lam)
		closeSlice(t, tc.name+" advantage", adv, tc.adv, 1e-12)
		closeSlice(t, tc.name+" returns", ret, tc.returns, 1e-12)
	}
}

func TestTokenRewardsAndAdaptiveKL(t *testing.T) {
	r, kl := TokenRewards(1, []float64{-1, -2, -0.5}, []float64{-1.5, -2, -1}, 0.1)
	closeSlice(t, "rewards", r, []float64{-0.05, 0, 1 - 0.05}, 1e-12)
	if math.Abs(kl-1) > 1e-12 {
		t.Errorf("kl %v, want 1", kl)
	}
	r, _ = TokenRewards(2, []float64{-1, -2}, nil, 0.1)
	closeSlice(t, "rewards without reference", r, []float64{0, 2}, 0)

	c := AdaptiveKL{Beta: 0.1, Target: 6, Horizon: 100}
	// KL 12 is 100% over target: the error clips at +0.2; 10 samples.
	if got := c.Update(12, 10); math.Abs(got-0.1*1.02) > 1e-15 {
		t.Errorf("beta %v, want %v", got, 0.1*1.02)
	}
	// KL 5.4 is 10% under: β·(1 − 0.1·10/100).
	if got := c.Update(5.4, 10); math.Abs(got-0.1*1.02*0.99) > 1e-15 {
		t.Errorf("beta %v, want %v", got, 0.1*1.02*0.99)
	}
	fixed := AdaptiveKL{Beta: 0.1}
	if fixed.Update(100, 10) != 0.1 {
		t.Error("a controller without a target changed β")
	}
}

// TestValueLossTable checks the clipped value loss by hand (clip 0.2,
// vf_coef 0.1, two loss tokens).
func TestValueLossTable(t *testing.T) {
	cases := []struct {
		name     string
		v, vo, r float32
		loss, dv float64
	}{
		{"inside the clip range", 0.6, 0.5, 2, 0.5 * 1.4 * 1.4, -1.4},
		{"clipped term larger, above", 1.0, 0.5, 2, 0.5 * 1.3 * 1.3, 0},
		{"clipped term larger, below", 0.2, 0.5, 0, 0.5 * 0.3 * 0.3, 0},
		{"unclipped term larger", 0, 0.5, 1, 0.5, -1},
	}
	for _, tc := range cases {
		dv := make([]float32, 2)
		loss, err := ValueLoss(dv, []float32{tc.v, 7}, []float32{tc.vo, 7}, []float32{tc.r, 9}, []float32{1, 0}, 0.2, 0.1, 2)
		if err != nil {
			t.Fatal(err)
		}
		// Weight of one token: vf_coef / tokens = 0.1/2.
		if math.Abs(loss-0.05*tc.loss) > 1e-7 || math.Abs(float64(dv[0])-0.05*tc.dv) > 1e-7 || dv[1] != 0 {
			t.Errorf("%s: loss %v dv %v, want %v %v", tc.name, loss, dv, 0.05*tc.loss, 0.05*tc.dv)
		}
	}
	if _, err := ValueLoss(make([]float32, 1), []float32{1, 2}, nil, nil, nil, 0, 1, 1); err == nil {
		t.Error("mismatched lengths accepted")
	}
}

func TestInformativeGroups(t *testing.T) {
	got := InformativeGroups([]float64{1, 0, 1, 1, 5, math.NaN(), 2, math.NaN(), 3}, []int{4, 4, 9, 9, 2, 2, 7, 7, 8})
	want := map[int]bool{4: true, 9: false, 2: false, 7: false, 8: false}
	for g, w := range want {
		if got[g] != w {
			t.Errorf("group %d: informative %v, want %v", g, got[g], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d groups, want %d", len(got), len(want))
	}
}

func TestWhiten(t *testing.T) {
	x := []float32{1, 100, 2, 3}
	Whiten(x, []float32{1, 0, 1, 1})
	// Masked values {1, 2, 3}: mean 2, unbiased std 1.
	want := []float64{-1, 100, 0, 1}
	closeSlice(t, "whitened", to64(x), want, 1e-6)
}
