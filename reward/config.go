package reward

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Spec configures one reward function: which type, under which name, with
// which weight and params. In YAML, one entry of the reward list:
//
//	functions:
//	  - name: acc
//	    type: math_answer
//	    weight: 1.0
//	    fallback: exclude     # or a number
//	    timeout: 30s
//	    params: {tolerance: 1e-6}
type Spec struct {
	Name   string   // metric and log name; defaults to Type
	Type   string   // a registered type, e.g. "math_answer"
	Weight *float64 // nil means 1
	// Params is nil (all defaults), a map decoded from a config file
	// (unknown keys are errors), or the type's params struct (value or
	// pointer), e.g. MathAnswerParams.
	Params any
	// Fallback is the score given to a sample the reward failed on (panic,
	// error, NaN/Inf, timeout). nil excludes the sample from the loss.
	Fallback *float64
	// Timeout bounds one Score call on a batch; 0 uses Config.Timeout.
	Timeout time.Duration
	// Shaping, when set, bounds this reward's value before weighting.
	Shaping *Shaping
}

// Shaping maps a raw reward r to σ((r − ref)/scale), a bounded value in
// (0, 1) that stops a policy from gaining by pushing one reward ever higher
// (preference-as-reward style shaping).
type Shaping struct {
	Ref      float64 // constant reference reward
	RefField string  // if set, the sample field holding the reference reward (overrides Ref)
	RefGroup bool    // if set, the mean raw reward of the sample's group is the reference
	Scale    float64 // temperature; 0 means 1
}

// Combine modes.
const (
	CombineSum = "sum" // total = Σ_k w_k r_k (default)
	CombineMin = "min" // total = min_k w_k r_k: worst case over an ensemble
)

// Config is the reward section of a run config: the list of reward functions
// and how to combine them. In YAML it is either a bare list of Specs or a
// mapping with keys functions, combine, shaping and timeout.
type Config struct {
	Functions []Spec
	Combine   string        // CombineSum (default) or CombineMin
	Shaping   *Shaping      // optional bounded shaping of the combined total
	Timeout   time.Duration // per-reward batch timeout; 0 means DefaultTimeout
}

// DefaultTimeout bounds one reward's Score call on one batch.
const DefaultTimeout = 60 * time.Second

// UnmarshalYAML decodes a Config from YAML. It uses the callback form of the
// interface so that this package needs no YAML dependency of its own; the
// YAML decoder's strictness settings still apply.
func (c *Config) UnmarshalYAML(unmarshal func(any) error) error {
	var raw any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	cfg, err := ConfigFromMap(raw)
	if err != nil {
		return err
	}
	*c = cfg
	return nil
}

// UnmarshalJSON decodes a Config from JSON, with the same rules as YAML.
func (c *Config) UnmarshalJSON(b []byte) error {
	var raw any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	cfg, err := ConfigFromMap(raw)
	if err != nil {
		return err
	}
	*c = cfg
	return nil
}

// ConfigFromMap builds a Config from generic decoded data (a []any of specs
// or a map[string]any), as produced by a YAML or JSON decoder. Unknown keys
// are errors naming the key.
func ConfigFromMap(raw any) (Config, error) {
	var cfg Config
	var list any
	switch v := raw.(type) {
	case nil:
		return cfg, nil
	case []any:
		list = v
	case map[string]any:
		for k, val := range v {
			switch k {
			case "functions":
				list = val
			case "combine":
				s, ok := val.(string)
				if !ok {
					return cfg, fmt.Errorf("reward.combine: want a string, got %T", val)
				}
				cfg.Combine = s
			case "shaping":
				sh, err := shapingFromMap(val)
				if err != nil {
					return cfg, fmt.Errorf("reward.shaping: %w", err)
				}
				cfg.Shaping = sh
			case "timeout":
				d, err := durationFrom(val)
				if err != nil {
					return cfg, fmt.Errorf("reward.timeout: %w", err)
				}
				cfg.Timeout = d
			default:
				return cfg, fmt.Errorf("reward: unknown key %q (want functions, combine, shaping, timeout)", k)
			}
		}
	default:
		return cfg, fmt.Errorf("reward: want a list of reward functions or a mapping, got %T", raw)
	}
	if list == nil {
		return cfg, nil
	}
	items, ok := list.([]any)
	if !ok {
		return cfg, fmt.Errorf("reward.functions: want a list, got %T", list)
	}
	for i, it := range items {
		s, err := specFromMap(it)
		if err != nil {
			return cfg, fmt.Errorf("reward[%d]: %w", i, err)
		}
		cfg.Functions = append(cfg.Functions, s)
	}
	return cfg, nil
}

// UnmarshalYAML decodes one Spec (see Spec for the keys).
func (s *Spec) UnmarshalYAML(unmarshal func(any) error) error {
	var raw any
	if err := unmarshal(&raw); err != nil {
		return err
	}
	spec, err := specFromMap(raw)
	if err != nil {
		return err
	}
	*s = spec
	return nil
}

func specFromMap(raw any) (Spec, error) {
	var s Spec
	m, ok := raw.(map[string]any)
	if !ok {
		return s, fmt.Errorf("want a mapping with name, type, weight, params; got %T", raw)
	}
	keys := sortedKeys(m)
	for _, k := range keys {
		v := m[k]
		switch k {
		case "name":
			str, ok := v.(string)
			if !ok {
				return s, fmt.Errorf("name: want a string, got %T", v)
			}
			s.Name = str
		case "type":
			str, ok := v.(string)
			if !ok {
				return s, fmt.Errorf("type: want a string, got %T", v)
			}
			s.Type = str
		case "weight":
			f, ok := toFloat(v)
			if !ok {
				return s, fmt.Errorf("weight: want a number, got %v", v)
			}
			s.Weight = &f
		case "params":
			if v != nil {
				if _, ok := v.(map[string]any); !ok {
					return s, fmt.Errorf("params: want a mapping, got %T", v)
				}
			}
			s.Params = v
		case "fallback":
			if str, ok := v.(string); ok && (str == "exclude" || str == "") || v == nil {
				s.Fallback = nil
				continue
			}
			f, ok := toFloat(v)
			if str, isStr := v.(string); isStr {
				// Configs that keep every field as text ("0", "-1").
				var err error
				f, err = strconv.ParseFloat(strings.TrimSpace(str), 64)
				ok = err == nil
			}
			if !ok {
				return s, fmt.Errorf("fallback: want \"exclude\" or a number, got %v", v)
			}
			s.Fallback = &f
		case "timeout":
			d, err := durationFrom(v)
			if err != nil {
				return s, fmt.Errorf("timeout: %w", err)
			}
			s.Timeout = d
		case "shaping":
			if v == nil {
				continue
			}
			sh, err := shapingFromMap(v)
			if err != nil {
				return s, fmt.Errorf("shaping: %w", err)
			}
			s.Shaping = sh
		default:
			return s, fmt.Errorf("%sunknown key %q (want name, type, weight, params, fallback, timeout, shaping)", nameHint(m), k)
		}
	}
	return s, nil
}

func nameHint(m map[string]any) string {
	if n, ok := m["name"].(string); ok {
		return strconv.Quote(n) + ": "
	}
	return ""
}

func shapingFromMap(v any) (*Shaping, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a mapping, got %T", v)
	}
	if len(m) == 0 {
		return nil, nil // an empty mapping means no shaping
	}
	sh := &Shaping{}
	for _, k := range sortedKeys(m) {
		val := m[k]
		switch k {
		case "type":
			if val != "sigmoid" {
				return nil, fmt.Errorf("type: only \"sigmoid\" is supported, got %v", val)
			}
		case "ref":
			if s, ok := val.(string); ok && s == "group_mean" {
				sh.RefGroup = true
				continue
			}
			f, ok := toFloat(val)
			if !ok {
				return nil, fmt.Errorf("ref: want a number or \"group_mean\", got %v", val)
			}
			sh.Ref = f
		case "ref_field":
			s, ok := val.(string)
			if !ok {
				return nil, fmt.Errorf("ref_field: want a string, got %T", val)
			}
			sh.RefField = s
		case "scale":
			f, ok := toFloat(val)
			if !ok || f <= 0 {
				return nil, fmt.Errorf("scale: want a positive number, got %v", val)
			}
			sh.Scale = f
		default:
			return nil, fmt.Errorf("unknown key %q (want type, ref, ref_field, scale)", k)
		}
	}
	return sh, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
