package reward

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rltrain/rltrain/internal/option"
)

// Config is the `reward` section of a run config: the reward functions
// and how they combine. Each option is declared here once (see package
// internal/option for the tags). In YAML, a bare list under reward: is
// the functions:
//
//	reward:
//	  combine: sum            # sum (default) or min
//	  timeout: 60s            # per reward per batch
//	  functions:
//	    - {name: acc, type: math_answer, weight: 1.0}
//	    - name: len
//	      type: length
//	      weight: 0.1
//	      fallback: 0         # score for samples this reward fails on; default exclude
//	      params: {mode: overlong, max_length: 1024, buffer: 256}
//
// Go callers may leave options at their zero values: Weight nil is 1,
// Fallback "" excludes, Timeout 0 is DefaultTimeout, Combine "" sums and a
// Shaping's zero Type and Scale are sigmoid and 1.
type Config struct {
	Functions []Spec   `yaml:"functions" shorthand:"list" doc:"Reward functions, combined by weight; a bare list under reward: is this list. Empty with a built-in task means the task's own verifier."`
	Combine   string   `yaml:"combine" default:"sum" enum:"sum,min" doc:"How weighted rewards combine: their sum, or their minimum (the worst case over an ensemble)."`
	Shaping   *Shaping `yaml:"shaping" doc:"Optional bounded shaping of the combined reward (as reward.functions.N.shaping); unset or {} for none."`
	// LengthSwitch is GRPO-λ (see LengthSwitch).
	LengthSwitch *LengthSwitch `yaml:"length_switch" doc:"GRPO-λ: drop the length penalties from the combined reward of groups with few correct completions; unset or {} for none."`
	Timeout      time.Duration `yaml:"timeout" default:"60s" doc:"Time limit of one reward's scoring call on a batch, unless the reward sets its own."`
	// MaxFailedSteps is read by the trainer: a reward that fails on every
	// sample (a missing program, say) must not pass for a reward of 0.
	MaxFailedSteps int `yaml:"max_failed_steps" default:"3" resume:"harmless" doc:"Consecutive RL steps in which every sample was excluded (the rewards failed on all of them) before the run stops with an error; such steps log reward as null and warn. 0 never stops."`
}

// Spec configures one reward function.
type Spec struct {
	Name string `yaml:"name" default:"" doc:"Name used in metrics (rewards/<name>/mean); defaults to the type."`
	Type string `yaml:"type" default:"" doc:"Reward function, e.g. math_answer, format, length, checklist, external (see the reward package)."`
	// Weight nil means 1.
	Weight *float64 `yaml:"weight" default:"1.0" doc:"Weight in the combined reward (or in gdpo's sum of normalised rewards)."`
	// Params is nil (all defaults), a mapping (unknown keys are errors),
	// or the type's params struct (value or pointer), e.g.
	// MathAnswerParams.
	Params any `yaml:"params" doc:"Parameters of the reward function."`
	// Fallback is "exclude" (or "") or a number.
	Fallback string `yaml:"fallback" default:"exclude" doc:"Score of a sample the reward fails on (error, NaN, timeout): a number, or exclude to drop the sample from the loss."`
	// Timeout 0 uses Config.Timeout.
	Timeout time.Duration `yaml:"timeout" default:"0s" doc:"Time limit of one scoring call, e.g. 30s; 0 uses reward.timeout."`
	Shaping *Shaping      `yaml:"shaping" doc:"Optional bounded shaping of this reward, e.g. {type: sigmoid, ref: group_mean, scale: 1}; unset or {} for none."`
}

// LengthSwitch is GRPO-λ's reward switch (Dai, Liu and Si, "Stable
// Reinforcement Learning for Efficient Reasoning", arXiv 2505.18086):
// length penalties cut accuracy when applied to groups the policy mostly
// fails, so a group whose fraction of correct completions is below
// Threshold is scored without the Penalties rewards (length-agnostic,
// typically 0/1 correctness), and a group at or above it keeps them. With
// TopFraction < 1 only that fraction of the batch's groups, highest
// correctness ratio first, may keep them (the paper's top-λ selection).
// Go callers may leave TopFraction and CorrectThreshold at zero (1 and
// 0.5).
type LengthSwitch struct {
	Penalties        []string `yaml:"penalties" doc:"Names of the rewards (reward.functions.N.name) a low-correctness group is scored without: the length penalties."`
	Threshold        float64  `yaml:"threshold" default:"0.5" doc:"A group keeps its penalties when at least this fraction of its completions is correct."`
	TopFraction      float64  `yaml:"top_fraction" default:"1.0" doc:"At most this fraction of a batch's groups, highest correctness ratio first, keeps its penalties (GRPO-λ's top-λ); 1 means every group at or above threshold."`
	CorrectReward    string   `yaml:"correct_reward" default:"" doc:"Reward that judges a completion correct; empty means the first reward that is not a penalty."`
	CorrectThreshold float64  `yaml:"correct_threshold" default:"0.5" doc:"A completion is correct when correct_reward scores at least this."`
}

// Check implements option.Section.
func (ls LengthSwitch) Check(ck *option.Checker) {
	ck.Within("threshold", ls.Threshold, 0, 1, true)
	if !(ls.TopFraction > 0 && ls.TopFraction <= 1) {
		ck.Bad("top_fraction", "must be in (0, 1], got %v", ls.TopFraction)
	}
	if len(ls.Penalties) == 0 {
		ck.Bad("penalties", "name at least one reward (the length penalties)")
	}
}

func (ls *LengthSwitch) withDefaults() *LengthSwitch {
	if ls == nil {
		return nil
	}
	out := *ls
	if out.TopFraction == 0 {
		out.TopFraction = 1
	}
	if out.CorrectThreshold == 0 {
		out.CorrectThreshold = 0.5
	}
	return &out
}

// resolve returns the indices of the penalties and of the correctness
// reward among names, or an error naming the option.
func (ls *LengthSwitch) resolve(names []string) (penalty []bool, correct int, err error) {
	penalty = make([]bool, len(names))
	for _, p := range ls.Penalties {
		k := slices.Index(names, p)
		if k < 0 {
			return nil, 0, fmt.Errorf("reward.length_switch.penalties: no reward is named %q (rewards: %s)", p, strings.Join(names, ", "))
		}
		penalty[k] = true
	}
	correct = -1
	if ls.CorrectReward != "" {
		correct = slices.Index(names, ls.CorrectReward)
		if correct < 0 {
			return nil, 0, fmt.Errorf("reward.length_switch.correct_reward: no reward is named %q (rewards: %s)", ls.CorrectReward, strings.Join(names, ", "))
		}
	} else {
		correct = slices.Index(penalty, false)
	}
	if correct < 0 || penalty[correct] {
		return nil, 0, fmt.Errorf("reward.length_switch: the reward judging correctness cannot be a penalty; add a correctness reward or set correct_reward")
	}
	return penalty, correct, nil
}

// Shaping maps a raw reward r to σ((r − ref)/scale), a bounded value in
// (0, 1) that stops a policy from gaining by pushing one reward ever higher
// (preference-as-reward style shaping).
type Shaping struct {
	Type     string  `yaml:"type" default:"sigmoid" enum:"sigmoid" doc:"Shaping function."`
	Ref      Ref     `yaml:"ref" default:"0" doc:"Reference reward: a number, or group_mean (the mean raw reward of the sample's group)."`
	RefField string  `yaml:"ref_field" default:"" doc:"Sample field holding the reference reward; overrides ref."`
	Scale    float64 `yaml:"scale" default:"1.0" doc:"Temperature of the sigmoid."`
}

// Ref is the reference reward of a Shaping: a constant, or the mean raw
// reward of the sample's group.
type Ref struct {
	Value     float64
	GroupMean bool
}

// UnmarshalText reads a number or "group_mean".
func (r *Ref) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "group_mean" {
		*r = Ref{GroupMean: true}
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !finite(f) {
		return fmt.Errorf("want a number or group_mean, got %q", s)
	}
	*r = Ref{Value: f}
	return nil
}

// MarshalText writes what UnmarshalText reads.
func (r Ref) MarshalText() ([]byte, error) {
	if r.GroupMean {
		return []byte("group_mean"), nil
	}
	return []byte(strconv.FormatFloat(r.Value, 'g', -1, 64)), nil
}

// Combine modes.
const (
	CombineSum = "sum" // total = Σ_k w_k r_k (default)
	CombineMin = "min" // total = min_k w_k r_k: worst case over an ensemble
)

// DefaultTimeout bounds one reward's Score call on one batch.
const DefaultTimeout = 60 * time.Second

// Validate reports every invalid option, naming its key.
func (c Config) Validate() error { return option.Validate("reward", c.withDefaults()) }

// withDefaults fills the options a Go caller may leave at zero.
func (c Config) withDefaults() Config {
	if c.Combine == "" {
		c.Combine = CombineSum
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	c.Shaping = c.Shaping.withDefaults()
	c.LengthSwitch = c.LengthSwitch.withDefaults()
	c.Functions = slices.Clone(c.Functions)
	for i := range c.Functions {
		c.Functions[i].Shaping = c.Functions[i].Shaping.withDefaults()
	}
	return c
}

func (sh *Shaping) withDefaults() *Shaping {
	if sh == nil {
		return nil
	}
	out := *sh
	if out.Type == "" {
		out.Type = "sigmoid"
	}
	if out.Scale == 0 {
		out.Scale = 1
	}
	return &out
}

// Check implements option.Section.
func (c Config) Check(ck *option.Checker) {
	if c.Timeout < 0 {
		ck.Bad("timeout", "must be >= 0, got %s", c.Timeout)
	}
	ck.AtLeast("max_failed_steps", c.MaxFailedSteps, 0)
	names := map[string]int{}
	for i, s := range c.Functions {
		p := fmt.Sprintf("functions.%d", i)
		if s.Type == "" {
			ck.Bad(p+".type", "required")
		}
		name := s.name()
		if j, dup := names[name]; dup && name != "" {
			ck.Bad(p+".name", "%q is already the name of reward.functions.%d; give each reward a distinct name", name, j)
		}
		names[name] = i
		if s.Weight != nil && !finite(*s.Weight) {
			ck.Bad(p+".weight", "must be finite, got %v", *s.Weight)
		}
		if _, err := s.fallback(); err != nil {
			ck.Bad(p+".fallback", "%v", err)
		}
		if s.Timeout < 0 {
			ck.Bad(p+".timeout", "must be >= 0, got %s", s.Timeout)
		}
		// The params as the run will decode them: a misspelt param is
		// caught by --print-config, not at the first step.
		if s.Type != "" {
			var pe *ParamError
			switch err := CheckParams(s.Type, s.Params); {
			case err == nil:
			case errors.As(err, &pe) && pe.Key != "":
				ck.Bad(p+".params."+pe.Key, "%s", pe.Msg)
			case errors.As(err, &pe):
				ck.Bad(p+".params", "%s", pe.Msg)
			default:
				ck.Bad(p+".type", "%v", err)
			}
		}
	}
}

// Check implements option.Section.
func (sh Shaping) Check(ck *option.Checker) {
	ck.Positive("scale", sh.Scale)
}

// Names lists the functions' names in metrics, in order.
func (c Config) Names() []string {
	out := make([]string, len(c.Functions))
	for i, s := range c.Functions {
		out[i] = s.name()
	}
	return out
}

// name is the reward's name in metrics.
func (s Spec) name() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Type
}

// weight is the reward's weight (nil: 1).
func (s Spec) weight() float64 {
	if s.Weight == nil {
		return 1
	}
	return *s.Weight
}

// fallback parses Fallback: nil means exclude.
func (s Spec) fallback() (*float64, error) {
	t := strings.TrimSpace(s.Fallback)
	if t == "" || t == "exclude" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || !finite(f) {
		return nil, fmt.Errorf("want exclude or a finite number, got %q", s.Fallback)
	}
	return &f, nil
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

func durationFrom(v any) (time.Duration, error) {
	if v == nil || v == "" {
		return 0, nil // unset: the default applies
	}
	if s, ok := v.(string); ok {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, err
		}
		if d < 0 {
			return 0, fmt.Errorf("negative duration %s", s)
		}
		return d, nil
	}
	if f, ok := toFloat(v); ok && f >= 0 && f < math.MaxInt64/1e9 {
		return time.Duration(f * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("want a duration like \"30s\" or seconds, got %v", v)
}

// Duration is a time.Duration that decodes from "1.5s" or a number of
// seconds; params structs use it.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string ("10s").
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts a Go duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	dd, err := durationFrom(v)
	if err != nil {
		return err
	}
	*d = Duration(dd)
	return nil
}

// decodeParams decodes params (nil, a map, or the typed struct) into dst, a
// pointer to the type's params struct that already holds the defaults.
func decodeParams(params any, dst any) error {
	if params == nil {
		return nil
	}
	dv := reflect.ValueOf(dst).Elem()
	pv := reflect.ValueOf(params)
	if pv.Type() == dv.Type() {
		dv.Set(pv)
		return nil
	}
	if pv.Kind() == reflect.Pointer && pv.Type().Elem() == dv.Type() {
		if pv.IsNil() {
			return nil
		}
		dv.Set(pv.Elem())
		return nil
	}
	m, ok := params.(map[string]any)
	if !ok {
		return fmt.Errorf("want a mapping or %s, got %T", dv.Type(), params)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return cleanJSONError(err)
	}
	return nil
}

// cleanJSONError rewrites encoding/json's messages into config vocabulary.
func cleanJSONError(err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		if key, err := strconv.Unquote(rest); err == nil {
			return &unknownParamError{key: key}
		}
		return fmt.Errorf("unknown param %s", rest)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("param %q: cannot use a %s as %s", te.Field, te.Value, te.Type)
	}
	return errors.New(strings.TrimPrefix(msg, "json: "))
}

// Build constructs one reward from its spec. It is what New uses; call it
// directly to use a single reward without a Set.
func Build(s Spec) (Reward, error) {
	reg, ok := lookup(s.Type)
	if !ok {
		return nil, fmt.Errorf("unknown type %q", s.Type)
	}
	p := reg.newParams()
	if err := decodeParams(s.Params, p); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	r, err := reg.build(p)
	if err != nil {
		return nil, err
	}
	return r, nil
}
