package reward

import (
	"context"
	"fmt"
	"math"
)

// ChecklistParams configures checklist.
type ChecklistParams struct {
	// Field holds each sample's own criteria (a list of Criterion
	// objects). Default "checklist". Samples without it use Criteria only.
	Field string `json:"field"`
	// Criteria apply to every sample, before the sample's own.
	Criteria []Criterion `json:"criteria"`
	// Adaptive re-weights criteria within each group: a criterion's
	// weight is multiplied by floor + 2·sqrt(p(1−p)), p its pass rate in
	// the group, so criteria that separate the group's completions count
	// more and criteria every completion passes (or fails) count less.
	// Groups whose samples have different checklists keep static weights.
	Adaptive      bool    `json:"adaptive"`
	AdaptiveFloor float64 `json:"adaptive_floor"` // default 0.1; must be > 0
}

// DefaultChecklistParams returns checklist's defaults.
func DefaultChecklistParams() ChecklistParams {
	return ChecklistParams{Field: "checklist", AdaptiveFloor: 0.1}
}

// Checklist scores the weighted fraction of criteria passed. Range [0, 1].
type Checklist struct{ p ChecklistParams }

// NewChecklist validates params and builds the reward.
func NewChecklist(p ChecklistParams) (*Checklist, error) {
	for i, c := range p.Criteria {
		if err := c.validate(); err != nil {
			return nil, fmt.Errorf("param \"criteria\"[%d]: %w", i, err)
		}
	}
	if p.AdaptiveFloor <= 0 || !finite(p.AdaptiveFloor) {
		return nil, fmt.Errorf("param \"adaptive_floor\": want > 0, got %v", p.AdaptiveFloor)
	}
	return &Checklist{p: p}, nil
}

// Range implements Ranged.
func (c *Checklist) Range() (float64, float64) { return 0, 1 }

// checkResults are one sample's criteria and which of them passed.
type checkResults struct {
	crit []Criterion
	pass []bool
}

// evalCriteria evaluates every sample's criteria in parallel. Failed
// samples get an error in the returned Scores (whose values are unset).
func evalCriteria(ctx context.Context, samples []Sample, global []Criterion, field string) ([]checkResults, Scores) {
	res := make([]checkResults, len(samples))
	out := runEach(ctx, len(samples), func(i int) (float64, error) {
		s := &samples[i]
		own, err := criteriaList(s.Fields, field)
		if err != nil {
			return 0, err
		}
		crit := global
		if len(own) > 0 {
			crit = append(append(make([]Criterion, 0, len(global)+len(own)), global...), own...)
		}
		if len(crit) == 0 {
			return 0, fmt.Errorf("no criteria: neither params nor field %q give any", field)
		}
		t := &targets{s: s}
		pass := make([]bool, len(crit))
		for j, c := range crit {
			ok, err := c.pass(t)
			if err != nil {
				return 0, fmt.Errorf("criterion %d (%s): %w", j, c.Type, err)
			}
			pass[j] = ok
		}
		res[i] = checkResults{crit: crit, pass: pass}
		return 0, nil
	})
	// Copy only the finished samples' results: an evaluation abandoned at
	// the deadline may still write its own entry of res.
	kept := make([]checkResults, len(samples))
	for i := range kept {
		if !out.failed(i) {
			kept[i] = res[i]
		}
	}
	return kept, out
}

// Score implements Reward.
func (c *Checklist) Score(ctx context.Context, samples []Sample) (Scores, error) {
	res, out := evalCriteria(ctx, samples, c.p.Criteria, c.p.Field)
	weights := make([][]float64, len(samples))
	for i, r := range res {
		if r.crit == nil {
			continue
		}
		w := make([]float64, len(r.crit))
		for j, cr := range r.crit {
			w[j] = cr.weight()
		}
		weights[i] = w
	}
	if c.p.Adaptive {
		c.adapt(samples, res, weights)
	}
	passed, total := 0, 0
	for i, r := range res {
		if r.crit == nil {
			continue
		}
		num, den := 0.0, 0.0
		for j, ok := range r.pass {
			den += weights[i][j]
			if ok {
				num += weights[i][j]
				passed++
			}
			total++
		}
		if den > 0 {
			out.Values[i] = num / den
		}
	}
	if total > 0 {
		out.Metrics = map[string]float64{"pass_rate": float64(passed) / float64(total)}
	}
	return out, nil
}

// adapt multiplies weights by floor + 2·sqrt(p(1−p)) per group.
func (c *Checklist) adapt(samples []Sample, res []checkResults, weights [][]float64) {
	groups := map[int][]int{}
	for i, r := range res {
		if r.crit != nil {
			groups[samples[i].Group] = append(groups[samples[i].Group], i)
		}
	}
	for _, idx := range groups {
		m := len(res[idx[0]].crit)
		same := true
		for _, i := range idx[1:] {
			if len(res[i].crit) != m {
				same = false
				break
			}
			for j := range res[i].crit {
				if res[i].crit[j].Type != res[idx[0]].crit[j].Type {
					same = false
				}
			}
		}
		if !same || len(idx) < 2 {
			continue
		}
		for j := 0; j < m; j++ {
			p := 0.0
			for _, i := range idx {
				if res[i].pass[j] {
					p++
				}
			}
			p /= float64(len(idx))
			f := c.p.AdaptiveFloor + 2*math.Sqrt(p*(1-p))
			for _, i := range idx {
				weights[i][j] *= f
			}
		}
	}
}

func init() {
	Register("checklist", "weighted fraction of programmatic criteria passed (contains, regex, length, json, number range), optional adaptive weights",
		func() any { p := DefaultChecklistParams(); return &p },
		func(p any) (Reward, error) { return NewChecklist(*p.(*ChecklistParams)) })
}
