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
// ("optim.lr", "reward.0.weight", "data.task_params.digits"); index N of a
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
		case reflect.Map:
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

// setInMap sets a (possibly nested) key inside a free-form mapping.
func (c *Config) setInMap(v reflect.Value, path string, keys []string, node *yaml.Node, pos string) error {
	if v.IsNil() {
		v.Set(reflect.ValueOf(map[string]any{}))
	}
	m := v.Interface().(map[string]any)
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
