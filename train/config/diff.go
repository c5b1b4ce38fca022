package config

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rltrain/rltrain/internal/option"
)

// Diff compares the configuration a run was started with (old) against the
// one it is being resumed with (cur) and lists the changed options as
// "key: old -> new", split into harmless changes (logging, checkpointing,
// run length, device) and breaking ones (anything that changes the model,
// the data or the optimisation trajectory). Unknown paths count as breaking.
func Diff(old, cur *Config) (harmless, breaking []string) {
	a, b := map[string]string{}, map[string]string{}
	flatten(reflect.ValueOf(old).Elem(), "", a)
	flatten(reflect.ValueOf(cur).Elem(), "", b)
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		va, okA := a[k]
		vb, okB := b[k]
		if okA && okB && va == vb {
			continue
		}
		if (!okA || !okB) && beyondShorterList(k, a, b) {
			continue // reported once as the list's length
		}
		if !okA {
			va = "(unset)"
		}
		if !okB {
			vb = "(unset)"
		}
		line := fmt.Sprintf("%s: %s -> %s", k, va, vb)
		if f, ok := lookupField(k); ok && (f.harmless || taskEvalSize(k, old, cur)) {
			harmless = append(harmless, line)
		} else {
			breaking = append(breaking, line)
		}
	}
	return harmless, breaking
}

// beyondShorterList reports whether key lies in a list entry that only one
// of the configs has (index >= the shorter list's length).
func beyondShorterList(key string, a, b map[string]string) bool {
	segs := strings.Split(key, ".")
	for i := 1; i < len(segs); i++ {
		idx, err := strconv.Atoi(segs[i])
		if err != nil {
			continue
		}
		prefix := strings.Join(segs[:i], ".")
		la, okA := a[prefix]
		lb, okB := b[prefix]
		if !okA || !okB || !strings.HasSuffix(la, " entries") {
			continue
		}
		var na, nb int
		fmt.Sscanf(la, "%d", &na)
		fmt.Sscanf(lb, "%d", &nb)
		if idx >= min(na, nb) {
			return true
		}
	}
	return false
}

// flatten records every leaf value under its dotted path.
func flatten(v reflect.Value, path string, out map[string]string) {
	switch {
	case v.Type() == option.DurationType:
		out[path] = time.Duration(v.Int()).String()
		return
	case option.IsText(v.Type()):
		b, _ := v.Addr().Interface().(encoding.TextMarshaler).MarshalText()
		out[path] = string(b)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			out[path] = "(none)"
			return
		}
		flatten(v.Elem(), path, out)
	case reflect.Struct:
		for _, f := range option.Fields(v.Type()) {
			flatten(v.FieldByIndex(f.Index), join(path, f.Key), out)
		}
	case reflect.Slice:
		switch v.Type().Elem().Kind() {
		case reflect.String:
			out[path] = fmt.Sprintf("%q", v.Interface())
			return
		case reflect.Struct:
		default:
			out[path] = fmt.Sprint(v.Interface())
			return
		}
		out[path] = fmt.Sprintf("%d entries", v.Len())
		for i := 0; i < v.Len(); i++ {
			flatten(v.Index(i), fmt.Sprintf("%s.%d", path, i), out)
		}
	case reflect.Map, reflect.Interface:
		flattenAny(v.Interface(), path, out)
	case reflect.String:
		out[path] = fmt.Sprintf("%q", v.String())
	default:
		out[path] = fmt.Sprint(v.Interface())
	}
}

// flattenAny walks decoded YAML (maps, lists, scalars) inside free-form
// params.
func flattenAny(x any, path string, out map[string]string) {
	switch t := x.(type) {
	case map[string]any:
		for k, v := range t {
			flattenAny(v, join(path, k), out)
		}
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = fmt.Sprint(e)
		}
		out[path] = "[" + strings.Join(parts, ", ") + "]"
	default:
		out[path] = fmt.Sprint(t)
	}
}

// taskEvalSize: held-out examples come out of a training file, so changing
// their number changes the training set, but a built-in task's eval set is a
// separate stream and its size is harmless.
func taskEvalSize(path string, old, cur *Config) bool {
	return path == "data.eval_size" && old.Data.Task != "" && old.Data.Task == cur.Data.Task
}
