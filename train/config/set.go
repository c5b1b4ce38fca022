package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/rltrain/rltrain/internal/option"
	"gopkg.in/yaml.v3"
)

// Set applies one "--set key=value" override. The key is a dotted path
// ("optim.lr", "reward.functions.0.weight", "data.task_params.digits"; a
// list that a bare YAML list stands for may be indexed directly:
// "reward.0.weight"); index N of a
// list equal to its length appends an entry with default values. The value
// is YAML, parsed against the option's type ("2e-6", "true", "[a, b]").
func (c *Config) Set(assignment string) error {
	key, value, ok := strings.Cut(assignment, "=")
	key = strings.TrimSpace(key)
	pos := "--set " + assignment
	if !ok || key == "" {
		return &Error{Pos: pos, Msg: "want key=value"}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		return &Error{Pos: pos, Key: key, Msg: fmt.Sprintf("value is not valid YAML: %v", err)}
	}
	node := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	if len(doc.Content) > 0 {
		node = doc.Content[0]
	}
	if c.pos == nil {
		c.pos = map[string]string{}
	}
	d := &decoder{pos: c.pos, where: func(int) string { return pos }}

	v := reflect.ValueOf(c).Elem()
	segs := strings.Split(key, ".")
	path := ""
	for i, seg := range segs {
		if v.Kind() == reflect.Pointer && !option.IsText(v.Type()) {
			if v.IsNil() { // setting a key of an unset section sets it
				p := reflect.New(v.Type().Elem())
				option.SetDefaults(p.Elem())
				v.Set(p)
			}
			v = v.Elem()
		}
		if f, ok := shorthandIndex(v, seg); ok {
			// reward.0.weight is reward.functions.0.weight
			v, path = v.FieldByIndex(f.Index), join(path, f.Key)
		}
		switch v.Kind() {
		case reflect.Struct:
			fv, ok := fieldByKey(v, seg)
			if !ok {
				return &Error{Pos: pos, Msg: unknownKey(path, seg, structKeys(v.Type()))}
			}
			v = fv
		case reflect.Slice:
			idx, err := strconv.Atoi(seg)
			if err != nil || idx < 0 || idx > v.Len() {
				return &Error{Pos: pos, Key: path, Msg: fmt.Sprintf("no entry %q: the list has %d (indices 0..%d; %d appends)", seg, v.Len(), v.Len()-1, v.Len())}
			}
			if idx == v.Len() {
				elem := reflect.New(v.Type().Elem()).Elem()
				option.SetDefaults(elem)
				v.Set(reflect.Append(v, elem))
			}
			v = v.Index(idx)
		case reflect.Map, reflect.Interface:
			return c.setInMap(v, path, segs[i:], node, pos)
		default:
			return &Error{Pos: pos, Msg: fmt.Sprintf("unknown key %q: %s is a %s, not a section", key, path, typeName(v.Type()))}
		}
		path = join(path, seg)
	}
	c.pos[path] = pos
	d.decode(v, node, path)
	return d.err()
}

// shorthandIndex reports whether seg indexes the list that a bare list
// stands for in struct value v.
func shorthandIndex(v reflect.Value, seg string) (option.Field, bool) {
	if v.Kind() != reflect.Struct {
		return option.Field{}, false
	}
	if _, err := strconv.Atoi(seg); err != nil {
		return option.Field{}, false
	}
	return option.Shorthand(v.Type())
}

// setInMap sets a (possibly nested) key inside a free-form mapping.
func (c *Config) setInMap(v reflect.Value, path string, keys []string, node *yaml.Node, pos string) error {
	m, ok := v.Interface().(map[string]any)
	if !ok || m == nil {
		m = map[string]any{}
		v.Set(reflect.ValueOf(m))
	}
	for _, k := range keys[:len(keys)-1] {
		path = join(path, k)
		next, ok := m[k]
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		nm, ok := next.(map[string]any)
		if !ok {
			return &Error{Pos: pos, Key: path, Msg: fmt.Sprintf("is %v, not a mapping", next)}
		}
		m = nm
	}
	last := keys[len(keys)-1]
	path = join(path, last)
	var val any
	if err := node.Decode(&val); err != nil {
		return &Error{Pos: pos, Key: path, Msg: err.Error()}
	}
	m[last] = val
	c.pos[path] = pos
	return nil
}
