package train

import (
	"math"

	"github.com/rltrain/rltrain/internal/dist"
)

// logpDiff accumulates |ℓ_trainer − ℓ_rollout| over completion tokens: how
// far the sampler's log-probs are from the trainer's recomputation of the
// same policy (verl's training/rollout_probs_diff_*), logged every step as
// rollout/logp_diff_max and rollout/logp_diff_mean.
type logpDiff struct {
	max, sum, n float64
}

// add compares the trainer's log-probs with the sampler's, token by token.
func (d *logpDiff) add(trainer, rollout []float32) {
	for i, l := range trainer {
		x := math.Abs(float64(l) - float64(rollout[i]))
		if math.IsNaN(x) {
			x = math.Inf(1)
		}
		d.max = max(d.max, x)
		d.sum += x
		d.n++
	}
}

// report writes the metrics. With sharded, each rank compared its own
// share of the sequences: the sums and the maximum are taken across ranks
// first.
func (t *Trainer) reportLogpDiff(d logpDiff, sharded bool, m map[string]float64) error {
	if sharded && t.world().Size() > 1 {
		w := t.world()
		sums := []float64{d.sum, d.n}
		if err := t.sumFloats(sums); err != nil {
			return err
		}
		maxes := make([]float64, w.Size())
		counts := make([]int, w.Size())
		for r := range counts {
			counts[r] = 8
		}
		if err := w.AllGatherV(dist.Float64Bytes([]float64{d.max}), dist.Float64Bytes(maxes), counts); err != nil {
			return err
		}
		d.sum, d.n, d.max = sums[0], sums[1], 0
		for _, x := range maxes {
			d.max = max(d.max, x)
		}
	}
	if d.n == 0 {
		return nil
	}
	m["rollout/logp_diff_max"] = d.max
	m["rollout/logp_diff_mean"] = d.sum / d.n
	return nil
}
