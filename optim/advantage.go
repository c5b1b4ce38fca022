package optim

import (
	"fmt"
	"math"
)

// stdEps is added to a standard deviation before dividing by it.
const stdEps = 1e-4

// AdvantageStats are the batch metrics the estimators report.
type AdvantageStats struct {
	// FracZeroStd is the fraction of groups whose (finite) rewards are all
	// equal, groups of one included: they carry no learning signal.
	FracZeroStd float64 `json:"frac_reward_zero_std"`
	// Reward and RewardStd are the mean and (unbiased) std of the finite
	// rewards.
	Reward    float64 `json:"reward"`
	RewardStd float64 `json:"reward_std"`
	// Excluded counts NaN rewards.
	Excluded int `json:"excluded"`
}

// Advantages computes per-sample advantages for the outcome-reward
// estimators (all but gae). rewards[k][i] is reward k of sample i; every
// estimator except gdpo needs exactly one reward (the combined total).
// groups[i] is sample i's prompt group; group ids need not be contiguous.
// weights are gdpo's per-reward weights (nil means all 1).
//
// NaN handling: a NaN reward marks a sample that could not be scored. For
// grpo, dr_grpo, rloo and reinforce_pp it is left out of every mean and std
// and its own advantage is 0, so it contributes no gradient. For gdpo a NaN
// counts as 0 (as in GDPO's reference implementation), since a sample may
// still have valid values for other rewards.
//
// A group with a single (finite) sample has no baseline and gets advantage 0,
// like a group whose rewards are all equal.
func Advantages(a Algorithm, rewards [][]float64, weights []float64, groups []int) ([]float64, AdvantageStats, error) {
	if len(rewards) == 0 {
		return nil, AdvantageStats{}, fmt.Errorf("advantages: no rewards")
	}
	n := len(rewards[0])
	for k, r := range rewards {
		if len(r) != n {
			return nil, AdvantageStats{}, fmt.Errorf("advantages: reward %d has %d samples, reward 0 has %d", k, len(r), n)
		}
	}
	if len(groups) != n {
		return nil, AdvantageStats{}, fmt.Errorf("advantages: %d group ids for %d samples", len(groups), n)
	}
	if a.Advantage != AdvGDPO && len(rewards) != 1 {
		return nil, AdvantageStats{}, fmt.Errorf("advantages: %s takes one combined reward, got %d", a.Advantage, len(rewards))
	}
	var adv []float64
	switch a.Advantage {
	case AdvGRPO:
		adv = GRPO(rewards[0], groups, a.ScaleRewards)
	case AdvDrGRPO:
		adv = GRPO(rewards[0], groups, "none")
	case AdvRLOO:
		adv = RLOO(rewards[0], groups)
	case AdvGDPO:
		if weights != nil && len(weights) != len(rewards) {
			return nil, AdvantageStats{}, fmt.Errorf("advantages: %d gdpo weights for %d rewards", len(weights), len(rewards))
		}
		adv = GDPO(rewards, weights, groups)
	case AdvReinforcePP:
		adv = ReinforcePP(rewards[0], a.Whiten)
	default:
		return nil, AdvantageStats{}, fmt.Errorf("advantages: estimator %q needs per-token values (use GAE)", a.Advantage)
	}
	total := rewards[0]
	if len(rewards) > 1 {
		total = WeightedSum(rewards, weights)
	}
	return adv, RewardStats(total, groups), nil
}

// WeightedSum returns Σ_k w_k r_k per sample, NaN counting as 0 (nil
// weights mean all 1).
func WeightedSum(rewards [][]float64, weights []float64) []float64 {
	out := make([]float64, len(rewards[0]))
	for k, r := range rewards {
		w := 1.0
		if weights != nil {
			w = weights[k]
		}
		for i, v := range r {
			if !math.IsNaN(v) {
				out[i] += w * v
			}
		}
	}
	return out
}

// RewardStats computes the logged reward metrics.
func RewardStats(rewards []float64, groups []int) AdvantageStats {
	var st AdvantageStats
	var vals []float64
	for _, r := range rewards {
		if math.IsNaN(r) {
			st.Excluded++
			continue
		}
		vals = append(vals, r)
	}
	st.Reward, st.RewardStd = meanStd(vals)
	gs := groupIndex(groups)
	if len(gs) == 0 {
		return st
	}
	zero := 0
	for _, idx := range gs {
		if allEqual(finite(rewards, idx)) {
			zero++
		}
	}
	st.FracZeroStd = float64(zero) / float64(len(gs))
	return st
}

// GRPO computes (r − mean_g r)/(std + 1e-4) with std taken over the group
// (scale "group"), over the whole batch ("batch"), or no division ("none",
// which is Dr. GRPO). std is the unbiased sample std, as in TRL and verl.
func GRPO(rewards []float64, groups []int, scale string) []float64 {
	adv := make([]float64, len(rewards))
	_, batchStd := meanStd(finite(rewards, nil))
	for _, idx := range groupIndex(groups) {
		vals := finite(rewards, idx)
		mean, sd := meanStd(vals)
		for _, i := range idx {
			r := rewards[i]
			if math.IsNaN(r) || allEqual(vals) {
				continue
			}
			d := r - mean
			switch scale {
			case "group":
				d /= sd + stdEps
			case "batch":
				d /= batchStd + stdEps
			}
			adv[i] = d
		}
	}
	return adv
}

// RLOO computes r_i − mean_{j≠i} r_j within each group.
func RLOO(rewards []float64, groups []int) []float64 {
	adv := make([]float64, len(rewards))
	for _, idx := range groupIndex(groups) {
		vals := finite(rewards, idx)
		if allEqual(vals) {
			continue
		}
		var sum float64
		for _, v := range vals {
			sum += v
		}
		k := float64(len(vals))
		for _, i := range idx {
			if r := rewards[i]; !math.IsNaN(r) {
				adv[i] = r - (sum-r)/(k-1)
			}
		}
	}
	return adv
}

// GDPO normalises each reward within its group, sums the normalised values
// with the weights, and normalises the sums over the whole batch:
// pre_i = Σ_k w_k (r_ki − mean_g r_k)/(std_g r_k + 1e-4),
// A_i = (pre_i − mean pre)/(std pre + 1e-4). NaN rewards count as 0.
func GDPO(rewards [][]float64, weights []float64, groups []int) []float64 {
	n := len(rewards[0])
	pre := make([]float64, n)
	gs := groupIndex(groups)
	for k, r := range rewards {
		w := 1.0
		if weights != nil {
			w = weights[k]
		}
		clean := make([]float64, n)
		for i, v := range r {
			if !math.IsNaN(v) {
				clean[i] = v
			}
		}
		for _, idx := range gs {
			vals := make([]float64, len(idx))
			for j, i := range idx {
				vals[j] = clean[i]
			}
			if allEqual(vals) {
				continue
			}
			mean, sd := meanStd(vals)
			for _, i := range idx {
				pre[i] += w * (clean[i] - mean) / (sd + stdEps)
			}
		}
	}
	mean, sd := meanStd(pre)
	adv := make([]float64, n)
	if allEqual(pre) {
		return adv
	}
	for i, p := range pre {
		adv[i] = (p - mean) / (sd + stdEps)
	}
	return adv
}

// ReinforcePP computes r − mean_batch r, optionally divided by the batch
// std (+1e-4).
func ReinforcePP(rewards []float64, whiten bool) []float64 {
	vals := finite(rewards, nil)
	mean, sd := meanStd(vals)
	adv := make([]float64, len(rewards))
	if allEqual(vals) {
		return adv
	}
	for i, r := range rewards {
		if math.IsNaN(r) {
			continue
		}
		adv[i] = r - mean
		if whiten {
			adv[i] /= sd + stdEps
		}
	}
	return adv
}

// BroadcastTokens writes each sample's advantage to its tokens
// [offsets[i], offsets[i+1]) of a per-token buffer of n floats.
func BroadcastTokens(adv []float64, offsets []int, n int) []float32 {
	out := make([]float32, n)
	for i, a := range adv {
		for t := offsets[i]; t < offsets[i+1]; t++ {
			out[t] = float32(a)
		}
	}
	return out
}

// groupIndex lists the sample indices of each group, groups in order of
// first appearance.
func groupIndex(groups []int) [][]int {
	pos := map[int]int{}
	var out [][]int
	for i, g := range groups {
		k, ok := pos[g]
		if !ok {
			k = len(out)
			pos[g] = k
			out = append(out, nil)
		}
		out[k] = append(out[k], i)
	}
	return out
}

// finite returns the non-NaN values of r at idx (all of r when idx is nil).
func finite(r []float64, idx []int) []float64 {
	var out []float64
	if idx == nil {
		for _, v := range r {
			if !math.IsNaN(v) {
				out = append(out, v)
			}
		}
		return out
	}
	for _, i := range idx {
		if !math.IsNaN(r[i]) {
			out = append(out, r[i])
		}
	}
	return out
}

// meanStd returns the mean and the unbiased std (0 for fewer than two
// values).
func meanStd(v []float64) (mean, sd float64) {
	if len(v) == 0 {
		return 0, 0
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}

// allEqual reports whether v has fewer than two distinct values. Groups
// like that get an exact zero advantage rather than the rounding residue of
// r − mean.
func allEqual(v []float64) bool {
	for _, x := range v {
		if x != v[0] {
			return false
		}
	}
	return true
}

// InformativeGroups reports, per group id, whether the group's finite
// rewards differ; dynamic sampling (DAPO's filter_zero_std) keeps only
// those groups.
func InformativeGroups(rewards []float64, groups []int) map[int]bool {
	out := map[int]bool{}
	for _, idx := range groupIndex(groups) {
		out[groups[idx[0]]] = !allEqual(finite(rewards, idx))
	}
	return out
}
