package optim

import (
	"fmt"
	"math"
)

// GAE computes generalised advantage estimates for one completion from its
// per-token rewards and value predictions: δ_t = r_t + γV_{t+1} − V_t with
// V_T = 0 after the last token, A_t = Σ_l (γλ)^l δ_{t+l}, and the value
// targets R_t = A_t + V_t.
func GAE(rewards, values []float64, gamma, lam float64) (adv, returns []float64) {
	n := len(rewards)
	adv = make([]float64, n)
	returns = make([]float64, n)
	var next, acc float64 // V_{t+1}, A_{t+1}
	for t := n - 1; t >= 0; t-- {
		delta := rewards[t] + gamma*next - values[t]
		acc = delta + gamma*lam*acc
		adv[t] = acc
		returns[t] = acc + values[t]
		next = values[t]
	}
	return adv, returns
}

// TokenRewards builds PPO's per-token rewards for one completion: the
// sequence score on the last token and, when beta > 0, −β·k1 on every token
// (k1 = ℓ − ℓ_ref), i.e. the KL penalty folded into the reward. It also
// returns the completion's summed k1, for the adaptive controller.
func TokenRewards(score float64, logp, refLogp []float64, beta float64) (r []float64, kl float64) {
	r = make([]float64, len(logp))
	for t := range logp {
		if refLogp != nil {
			k1 := logp[t] - refLogp[t]
			kl += k1
			r[t] = -beta * k1
		}
	}
	if len(r) > 0 {
		r[len(r)-1] += score
	}
	return r, kl
}

// AdaptiveKL is the adaptive KL coefficient of Ziegler et al. (2019): after
// each batch, β is multiplied by 1 + clip(KL/target − 1, ±0.2)·n/horizon,
// which steers the observed KL towards the target.
type AdaptiveKL struct {
	Beta    float64
	Target  float64
	Horizon int
}

// Update adapts Beta to the mean KL per sequence observed over n samples
// and returns the new value. A fixed controller (Target 0) is unchanged.
func (c *AdaptiveKL) Update(kl float64, n int) float64 {
	if c.Target <= 0 || c.Horizon <= 0 {
		return c.Beta
	}
	e := math.Max(-0.2, math.Min(0.2, kl/c.Target-1))
	c.Beta *= 1 + e*float64(n)/float64(c.Horizon)
	return c.Beta
}

// ValueLoss is the clipped PPO value loss, aggregated as a token mean over
// the global token count norm (so micro-batches add up) and weighted by
// coef: coef · Σ m·½·max((V−R)², (clip(V, V_old±clip) − R)²) / norm. A clip
// ≤ 0 disables clipping. It returns this micro-batch's loss contribution and
// writes dL/dV into dv.
func ValueLoss(dv, v, vOld, ret, mask []float32, clip, coef, norm float64) (float64, error) {
	n := len(v)
	if len(vOld) != n || len(ret) != n || len(mask) != n || len(dv) != n {
		return 0, fmt.Errorf("value loss: lengths v %d, v_old %d, returns %d, mask %d, dv %d differ", n, len(vOld), len(ret), len(mask), len(dv))
	}
	if norm <= 0 {
		clear(dv)
		return 0, nil
	}
	var loss float64
	for t := range v {
		m := float64(mask[t])
		if m == 0 {
			dv[t] = 0
			continue
		}
		V, R := float64(v[t]), float64(ret[t])
		l, g := 0.5*(V-R)*(V-R), V-R
		if clip > 0 {
			lo, hi := float64(vOld[t])-clip, float64(vOld[t])+clip
			vc, dvc := V, 1.0
			if V < lo {
				vc, dvc = lo, 0
			} else if V > hi {
				vc, dvc = hi, 0
			}
			if lc := 0.5 * (vc - R) * (vc - R); lc > l {
				l, g = lc, (vc-R)*dvc
			}
		}
		w := coef * m / norm
		loss += w * l
		dv[t] = float32(w * g)
	}
	return loss, nil
}

// Whiten normalises the masked entries of x in place to zero mean and unit
// (unbiased) std over the batch, as PPO implementations do with GAE
// advantages; entries with mask 0 are left untouched. Fewer than two masked
// entries, or a zero std, only remove the mean.
func Whiten(x, mask []float32) {
	var n, sum float64
	for i, m := range mask {
		if m != 0 {
			n++
			sum += float64(x[i])
		}
	}
	if n == 0 {
		return
	}
	mean := sum / n
	var ss float64
	for i, m := range mask {
		if m != 0 {
			d := float64(x[i]) - mean
			ss += d * d
		}
	}
	scale := 1.0
	if n > 1 && ss > 0 {
		scale = 1 / (math.Sqrt(ss/(n-1)) + 1e-8)
	}
	for i, m := range mask {
		if m != 0 {
			x[i] = float32((float64(x[i]) - mean) * scale)
		}
	}
}
