package reward

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
)

// PartialCreditParams configures partial_credit.
type PartialCreditParams struct {
	// Field holds each sample's checks (a list of Criterion objects).
	// Default "tests".
	Field string `json:"field"`
	// Alpha weighs the all-pass outcome against the difficulty-weighted
	// partial score: score = α·[all pass] + (1−α)·partial. Default 0.5.
	Alpha float64 `json:"alpha"`
	// Prior is the pseudo-count added to passes and to failures when
	// estimating a check's pass rate, so unseen checks start at 1/2.
	// Default 1.
	Prior float64 `json:"prior"`
	// Decay discounts a check's past counts each time it is seen again,
	// so the estimate follows the policy as it improves. Default 0.9; 1
	// keeps all history.
	Decay float64 `json:"decay"`
	// Floor is added to every check's difficulty weight so that easy
	// checks still count a little. Default 0.05.
	Floor float64 `json:"floor"`
	// MaxTracked bounds the number of checks with running statistics;
	// checks beyond it are weighted by the prior alone. Default 100000.
	MaxTracked int `json:"max_tracked"`
}

// DefaultPartialCreditParams returns partial_credit's defaults.
func DefaultPartialCreditParams() PartialCreditParams {
	return PartialCreditParams{Field: "tests", Alpha: 0.5, Prior: 1, Decay: 0.9, Floor: 0.05, MaxTracked: 100000}
}

// PartialCredit weights each check by its difficulty, 1 − (running pass
// rate), and mixes the weighted fraction passed with the all-pass outcome.
// Weights use the statistics from before the batch, so a batch's scores do
// not depend on sample order. Range [0, 1].
type PartialCredit struct {
	p     PartialCreditParams
	mu    sync.Mutex
	stats map[string]*passStat
}

type passStat struct {
	Pass float64 `json:"pass"`
	N    float64 `json:"n"`
}

// NewPartialCredit validates params and builds the reward.
func NewPartialCredit(p PartialCreditParams) (*PartialCredit, error) {
	switch {
	case p.Alpha < 0 || p.Alpha > 1:
		return nil, fmt.Errorf("param \"alpha\": want in [0, 1], got %v", p.Alpha)
	case p.Prior <= 0 || !finite(p.Prior):
		return nil, fmt.Errorf("param \"prior\": want > 0, got %v", p.Prior)
	case p.Decay <= 0 || p.Decay > 1:
		return nil, fmt.Errorf("param \"decay\": want in (0, 1], got %v", p.Decay)
	case p.Floor < 0 || !finite(p.Floor):
		return nil, fmt.Errorf("param \"floor\": want >= 0, got %v", p.Floor)
	case p.MaxTracked < 0:
		return nil, fmt.Errorf("param \"max_tracked\": want >= 0, got %v", p.MaxTracked)
	}
	return &PartialCredit{p: p, stats: map[string]*passStat{}}, nil
}

// Range implements Ranged.
func (pc *PartialCredit) Range() (float64, float64) { return 0, 1 }

func checkKey(s *Sample, j int, c Criterion) string {
	if c.ID != "" {
		return c.ID
	}
	h := fnv.New64a()
	h.Write([]byte(s.Prompt))
	return strconv.FormatUint(h.Sum64(), 16) + "/" + strconv.Itoa(j)
}

// passRate is the smoothed running pass rate; callers hold mu.
func (pc *PartialCredit) passRate(key string) float64 {
	st := pc.stats[key]
	pass, n := 0.0, 0.0
	if st != nil {
		pass, n = st.Pass, st.N
	}
	return (pass + pc.p.Prior) / (n + 2*pc.p.Prior)
}

// Score implements Reward.
func (pc *PartialCredit) Score(ctx context.Context, samples []Sample) (Scores, error) {
	res, out := evalCriteria(ctx, samples, nil, pc.p.Field)
	keys := make([][]string, len(samples))
	for i, r := range res {
		keys[i] = make([]string, len(r.crit))
		for j, c := range r.crit {
			keys[i][j] = checkKey(&samples[i], j, c)
		}
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	allPass, checks, passed := 0, 0, 0
	for i, r := range res {
		if r.crit == nil {
			continue
		}
		num, den := 0.0, 0.0
		all := true
		for j, ok := range r.pass {
			w := (pc.p.Floor + 1 - pc.passRate(keys[i][j])) * r.crit[j].weight()
			den += w
			checks++
			if ok {
				num += w
				passed++
			} else {
				all = false
			}
		}
		partial := 0.0
		if den > 0 {
			partial = num / den
		}
		outcome := 0.0
		if all {
			outcome = 1
			allPass++
		}
		out.Values[i] = pc.p.Alpha*outcome + (1-pc.p.Alpha)*partial
	}
	// Update running statistics with this batch, one decay per check per
	// batch.
	type count struct{ pass, n float64 }
	batch := map[string]*count{}
	for i, r := range res {
		for j, ok := range r.pass {
			c := batch[keys[i][j]]
			if c == nil {
				c = &count{}
				batch[keys[i][j]] = c
			}
			c.n++
			if ok {
				c.pass++
			}
		}
	}
	for k, c := range batch {
		st := pc.stats[k]
		if st == nil {
			if len(pc.stats) >= pc.p.MaxTracked {
				continue
			}
			st = &passStat{}
			pc.stats[k] = st
		}
		st.Pass = st.Pass*pc.p.Decay + c.pass
		st.N = st.N*pc.p.Decay + c.n
	}
	out.Metrics = map[string]float64{"tracked_checks": float64(len(pc.stats))}
	if n := len(samples); n > 0 {
		out.Metrics["all_pass_rate"] = float64(allPass) / float64(n)
	}
	if checks > 0 {
		out.Metrics["check_pass_rate"] = float64(passed) / float64(checks)
	}
	return out, nil
}

// MarshalState implements Stateful.
func (pc *PartialCredit) MarshalState() ([]byte, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return json.Marshal(pc.stats)
}

// UnmarshalState implements Stateful.
func (pc *PartialCredit) UnmarshalState(b []byte) error {
	stats := map[string]*passStat{}
	if err := json.Unmarshal(b, &stats); err != nil {
		return fmt.Errorf("partial_credit state: %w", err)
	}
	pc.mu.Lock()
	pc.stats = stats
	pc.mu.Unlock()
	return nil
}

func init() {
	Register("partial_credit", "checks weighted by difficulty from running pass rates, mixed with the all-pass outcome",
		func() any { p := DefaultPartialCreditParams(); return &p },
		func(p any) (Reward, error) { return NewPartialCredit(*p.(*PartialCreditParams)) })
}
