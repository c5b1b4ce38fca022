package data

import (
	"fmt"
	"math"
	"sort"
)

// SplitEval holds out part of a training set for evaluation, deterministically
// from seed: either size examples or round(fraction·N) (at least one when
// fraction > 0). Both halves keep file order. Setting both, or holding out
// everything, is an error.
func SplitEval(examples []Example, fraction float64, size int, seed uint64) (train, eval []Example, err error) {
	n := len(examples)
	switch {
	case fraction < 0 || fraction >= 1 || math.IsNaN(fraction):
		return nil, nil, fmt.Errorf("eval_fraction must be in [0, 1), got %v", fraction)
	case size < 0:
		return nil, nil, fmt.Errorf("eval_size must be >= 0, got %d", size)
	case fraction > 0 && size > 0:
		return nil, nil, fmt.Errorf("set eval_fraction or eval_size, not both")
	}
	k := size
	if fraction > 0 {
		k = max(1, int(math.Round(fraction*float64(n))))
	}
	if k == 0 {
		return examples, nil, nil
	}
	if k >= n {
		return nil, nil, fmt.Errorf("holding out %d of %d examples leaves none to train on", k, n)
	}
	perm := newRNG(deriveSeed(seed, tagSplit)).Perm(n)
	held := perm[:k]
	sort.Ints(held)
	isEval := make([]bool, n)
	for _, i := range held {
		isEval[i] = true
	}
	train = make([]Example, 0, n-k)
	eval = make([]Example, 0, k)
	for i, ex := range examples {
		if isEval[i] {
			eval = append(eval, ex)
		} else {
			train = append(train, ex)
		}
	}
	return train, eval, nil
}
