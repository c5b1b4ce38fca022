package reward

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Sample fields arrive either as decoded JSON (float64, []any) or as Go
// values built by the data package (int, []int). These helpers accept both.

func fieldFloat(fields map[string]any, key string) (float64, bool) {
	v, ok := fields[key]
	if !ok {
		return 0, false
	}
	if f, ok := toFloat(v); ok {
		return f, true
	}
	if s, ok := v.(string); ok {
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	}
	return 0, false
}

// fieldStrings returns the field as a list of strings: a string gives one
// element, a number its decimal form, a list each element.
func fieldStrings(fields map[string]any, key string) ([]string, error) {
	v, err := requiredField(fields, key)
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case []string:
		return x, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, err := scalarString(e)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", key, err)
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := scalarString(v)
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", key, err)
	}
	return []string{s}, nil
}

func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10), nil
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case json.Number:
		return x.String(), nil
	}
	return "", fmt.Errorf("want a string or number, got %T", v)
}

// fieldInt reads an integer field (JSON number, Go int or decimal string).
func fieldInt(fields map[string]any, key string) (int64, error) {
	v, err := requiredField(fields, key)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("field %q: %w", key, err)
		}
		return n, nil
	}
	if f, ok := toFloat(v); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f), nil
	}
	return 0, fmt.Errorf("field %q: want an integer, got %v", key, v)
}

// fieldInts reads a list of integers.
func fieldInts(fields map[string]any, key string) ([]int64, error) {
	v, err := requiredField(fields, key)
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case []int:
		out := make([]int64, len(x))
		for i, n := range x {
			out[i] = int64(n)
		}
		return out, nil
	case []int64:
		return x, nil
	case []any:
		out := make([]int64, len(x))
		tmp := map[string]any{}
		for i, e := range x {
			tmp["v"] = e
			n, err := fieldInt(tmp, "v")
			if err != nil {
				return nil, fmt.Errorf("field %q[%d]: want an integer, got %v", key, i, e)
			}
			out[i] = n
		}
		return out, nil
	}
	return nil, fmt.Errorf("field %q: want a list of integers, got %T", key, v)
}

// fieldList returns a list field's elements ([]any, or a typed slice of maps).
func fieldList(fields map[string]any, key string) ([]any, bool) {
	v, ok := fields[key]
	if !ok || v == nil {
		return nil, false
	}
	switch x := v.(type) {
	case []any:
		return x, true
	case []map[string]any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = x[i]
		}
		return out, true
	case []Criterion:
		out := make([]any, len(x))
		for i := range x {
			out[i] = x[i]
		}
		return out, true
	}
	return nil, false
}

// requiredField is the sample field key, which must be present and not
// null.
func requiredField(fields map[string]any, key string) (any, error) {
	v, ok := fields[key]
	if !ok || v == nil {
		return nil, fmt.Errorf("sample has no %q field", key)
	}
	return v, nil
}
