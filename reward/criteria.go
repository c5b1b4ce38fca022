package reward

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// Criterion is one programmatic check, used by checklist and
// partial_credit. From data it is a JSON object with these keys.
type Criterion struct {
	Name string `json:"name"` // for logs; optional
	// ID identifies the check across training steps for running pass
	// rates (partial_credit); defaults to the prompt and the position.
	ID string `json:"id"`
	// Type is one of: contains, not_contains, regex, not_regex, length,
	// min_length, max_length, json, number_range, equals.
	Type          string   `json:"type"`
	Value         string   `json:"value"`          // contains, not_contains, equals
	Pattern       string   `json:"pattern"`        // regex, not_regex (RE2 syntax)
	CaseSensitive bool     `json:"case_sensitive"` // contains, not_contains; default false
	Min           *float64 `json:"min"`            // length bounds, number_range
	Max           *float64 `json:"max"`
	Unit          string   `json:"unit"`   // length unit: chars (default), words, lines, tokens
	Weight        *float64 `json:"weight"` // default 1; must be >= 0
	// Target is the text checked: response (default: the completion
	// after </think>), answer (the <answer> content, else the response)
	// or completion (everything).
	Target string `json:"target"`
}

// criterionFromAny accepts a Criterion or a decoded JSON object.
func criterionFromAny(v any) (Criterion, error) {
	switch x := v.(type) {
	case Criterion:
		return x, x.validate()
	case *Criterion:
		return *x, x.validate()
	case map[string]any:
		b, err := json.Marshal(x)
		if err != nil {
			return Criterion{}, err
		}
		var c Criterion
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return Criterion{}, cleanJSONError(err)
		}
		return c, c.validate()
	}
	return Criterion{}, fmt.Errorf("want an object, got %T", v)
}

func (c Criterion) validate() error {
	switch c.Type {
	case "contains", "not_contains", "equals":
		if c.Value == "" {
			return fmt.Errorf("%s: empty value", c.Type)
		}
	case "regex", "not_regex":
		if _, err := cachedRegexp(c.Pattern); err != nil {
			return fmt.Errorf("%s: %w", c.Type, err)
		}
	case "length", "min_length", "max_length":
		switch c.Unit {
		case "", "chars", "words", "lines", "tokens":
		default:
			return fmt.Errorf("length: unknown unit %q (want chars, words, lines or tokens)", c.Unit)
		}
		if c.Min == nil && c.Max == nil {
			return fmt.Errorf("%s: needs min or max", c.Type)
		}
	case "number_range":
		if c.Min == nil && c.Max == nil {
			return fmt.Errorf("number_range: needs min or max")
		}
	case "json":
	default:
		return fmt.Errorf("unknown criterion type %q", c.Type)
	}
	switch c.Target {
	case "", "response", "answer", "completion":
	default:
		return fmt.Errorf("unknown target %q (want response, answer or completion)", c.Target)
	}
	if c.Weight != nil && (*c.Weight < 0 || !finite(*c.Weight)) {
		return fmt.Errorf("weight must be a finite number >= 0")
	}
	return nil
}

func (c Criterion) weight() float64 {
	if c.Weight == nil {
		return 1
	}
	return *c.Weight
}

// targets caches the texts criteria look at for one sample.
type targets struct {
	s                   *Sample
	response, answer    string
	haveResp, haveAnswr bool
}

func (t *targets) text(target string) string {
	switch target {
	case "completion":
		return t.s.Completion
	case "answer":
		if !t.haveAnswr {
			t.haveAnswr = true
			if a, ok := lastTagContent(t.resp(), "answer"); ok {
				t.answer = strings.TrimSpace(a)
			} else {
				t.answer = t.resp()
			}
		}
		return t.answer
	default:
		return t.resp()
	}
}

func (t *targets) resp() string {
	if !t.haveResp {
		t.haveResp = true
		t.response = stripThink(validUTF8(t.s.Completion))
	}
	return t.response
}

// pass evaluates the criterion on a sample.
func (c Criterion) pass(t *targets) (bool, error) {
	text := t.text(c.Target)
	switch c.Type {
	case "contains", "not_contains":
		var has bool
		if c.CaseSensitive {
			has = strings.Contains(text, c.Value)
		} else {
			has = containsFold(text, c.Value)
		}
		return has == (c.Type == "contains"), nil
	case "regex", "not_regex":
		re, err := cachedRegexp(c.Pattern)
		if err != nil {
			return false, err
		}
		return re.MatchString(text) == (c.Type == "regex"), nil
	case "length", "min_length", "max_length":
		var n int
		switch c.Unit {
		case "words":
			n = len(strings.Fields(text))
		case "lines":
			n = strings.Count(strings.TrimRight(text, "\n"), "\n") + 1
			if strings.TrimSpace(text) == "" {
				n = 0
			}
		case "tokens":
			n = len(t.s.CompletionIDs)
		default:
			n = utf8.RuneCountInString(text)
		}
		return inRange(float64(n), c.Min, c.Max), nil
	case "json":
		return json.Valid([]byte(stripFences(text))), nil
	case "number_range":
		ln, ok := lastNumber(text)
		if !ok {
			return false, nil
		}
		num, ok := parseNumber(cleanAnswer(ln))
		if !ok {
			return false, nil
		}
		f, _ := num.v.Float64()
		return inRange(f, c.Min, c.Max), nil
	case "equals":
		a, b := cleanAnswer(text), cleanAnswer(c.Value)
		if a == b {
			return true, nil
		}
		x, ok1 := parseNumber(a)
		y, ok2 := parseNumber(b)
		return ok1 && ok2 && x.v.Cmp(y.v) == 0, nil
	}
	return false, fmt.Errorf("unknown criterion type %q", c.Type)
}

func inRange(v float64, lo, hi *float64) bool {
	return (lo == nil || v >= *lo) && (hi == nil || v <= *hi)
}

// stripFences removes a surrounding Markdown code fence (```json … ```).
func stripFences(s string) string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "```") || !strings.HasSuffix(s, "```") || len(s) < 6 {
		return s
	}
	s = s[3 : len(s)-3]
	if nl := strings.IndexByte(s, '\n'); nl >= 0 {
		s = s[nl+1:]
	}
	return s
}

// containsFold is a case-insensitive strings.Contains.
func containsFold(s, sub string) bool {
	if len(sub) > len(s) {
		return false
	}
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// Regular expressions are Go's RE2: matching time is linear in the input,
// so user patterns such as (a+)+$ cannot backtrack catastrophically.
var (
	reCache   sync.Map // pattern -> reEntry
	reCacheN  int
	reCacheMu sync.Mutex
)

type reEntry struct {
	re  *regexp.Regexp
	err error
}

const maxCachedRegexps = 4096

func cachedRegexp(pattern string) (*regexp.Regexp, error) {
	if e, ok := reCache.Load(pattern); ok {
		en := e.(reEntry)
		return en.re, en.err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		err = fmt.Errorf("bad pattern %q: %w", pattern, err)
	}
	reCacheMu.Lock()
	if reCacheN < maxCachedRegexps {
		reCacheN++
		reCache.Store(pattern, reEntry{re, err})
	}
	reCacheMu.Unlock()
	return re, err
}

// criteriaList reads a sample's criteria list from a field.
func criteriaList(fields map[string]any, key string) ([]Criterion, error) {
	v, ok := fields[key]
	if !ok || v == nil {
		return nil, nil
	}
	if cs, ok := v.([]Criterion); ok {
		for i, c := range cs {
			if err := c.validate(); err != nil {
				return nil, fmt.Errorf("field %q[%d]: %w", key, i, err)
			}
		}
		return cs, nil
	}
	items, ok := fieldList(fields, key)
	if !ok {
		return nil, fmt.Errorf("field %q: want a list of criteria, got %T", key, v)
	}
	out := make([]Criterion, len(items))
	for i, it := range items {
		c, err := criterionFromAny(it)
		if err != nil {
			return nil, fmt.Errorf("field %q[%d]: %w", key, i, err)
		}
		out[i] = c
	}
	return out, nil
}
