package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rltrain/rltrain/internal/option"
	"gopkg.in/yaml.v3"
)

// Error is one problem with a configuration, located where the offending
// value was written: "configs/x.yaml:7: algorithm.epsilon: want a number,
// got \"abc\"".
type Error = option.Error

// Load reads a config file, applies --set overrides in order, and
// validates the result.
func Load(path string, sets []string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	c, err := Parse(src, path)
	if err != nil {
		return nil, err
	}
	for _, s := range sets {
		if err := c.Set(s); err != nil {
			return nil, err
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse decodes YAML over the defaults without validating; file names the
// source in messages. Unknown keys and wrong types are errors (all of them
// are reported, joined).
func Parse(src []byte, file string) (*Config, error) {
	c := Default()
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, syntaxError(src, file, err)
	}
	if len(doc.Content) == 0 { // empty file: all defaults
		return c, nil
	}
	d := &decoder{pos: c.pos, where: func(line int) string { return file + ":" + strconv.Itoa(line) }}
	d.decode(reflect.ValueOf(c).Elem(), doc.Content[0], "")
	if err := d.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// syntaxError is yaml.v3's syntax error err about src, at the line where
// the problem is.
func syntaxError(src []byte, file string, err error) error {
	m := yamlLineErr.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	line, _ := strconv.Atoi(m[1])
	switch {
	case strings.HasPrefix(m[2], "did not find expected"):
		// yaml.v3 reports its parser's errors (unlike its scanner's)
		// with the 0-based line.
		line++
	case strings.HasPrefix(m[2], "found a tab character"):
		// It reports a tab that breaks a block's indentation at the line
		// where the plain scalar before the tab started.
		line = tabIndentLine(src, line)
	}
	return &Error{Pos: file + ":" + strconv.Itoa(line), Msg: m[2]}
}

// tabIndentLine is the first line, from line on (1-based), whose
// indentation holds a tab; line itself when there is none.
func tabIndentLine(src []byte, line int) int {
	lines := bytes.Split(src, []byte("\n"))
	for i := max(line-1, 0); i < len(lines); i++ {
		indent := lines[i][:len(lines[i])-len(bytes.TrimLeft(lines[i], " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 {
			return i + 1
		}
	}
	return line
}

// decoder walks a yaml.Node tree against the config structs.
type decoder struct {
	pos   map[string]string
	where func(line int) string // position of a line for messages
	errs  []error
}

func (d *decoder) fail(line int, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.where(line), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) err() error { return errors.Join(d.errs...) }

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.ShortTag() == "!!null" {
		return "nothing"
	}
	return strconv.Quote(n.Value)
}

func (d *decoder) decode(v reflect.Value, n *yaml.Node, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	isNull := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
	switch {
	case v.Type() == option.DurationType || option.IsText(v.Type()):
		d.scalarNode(v, n, path)
	case v.Kind() == reflect.Pointer:
		d.optional(v, n, path, isNull)
	case v.Kind() == reflect.Struct:
		if !isNull { // "section:" with nothing under it keeps the defaults
			d.section(v, n, path)
		}
	case v.Kind() == reflect.Slice:
		d.list(v, n, path, isNull)
	case v.Kind() == reflect.Map, v.Kind() == reflect.Interface:
		d.mapping(v, n, path, isNull)
	default:
		d.scalarNode(v, n, path)
	}
}

// section decodes a mapping of options into a struct.
func (d *decoder) section(v reflect.Value, n *yaml.Node, path string) {
	if f, ok := option.Shorthand(v.Type()); ok && n.Kind == yaml.SequenceNode {
		// A bare list stands for the section's list (reward: [...]).
		p := join(path, f.Key)
		d.pos[p] = d.where(n.Line)
		d.decode(v.FieldByIndex(f.Index), n, p)
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, keyOrTop(path), "want a mapping of options, got %s", describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k.Line, keyOrTop(path), "keys must be plain names")
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.fail(k.Line, "", "duplicate key %q (first set on line %d)", p, first)
			continue
		}
		seen[k.Value] = k.Line
		fv, ok := fieldByKey(v, k.Value)
		if !ok {
			d.fail(k.Line, "", "%s", unknownKey(path, k.Value, structKeys(v.Type())))
			continue
		}
		d.pos[p] = d.where(k.Line)
		d.decode(fv, val, p)
	}
}

// list decodes a YAML list, replacing the whole list; struct entries
// start from their defaults.
func (d *decoder) list(v reflect.Value, n *yaml.Node, path string, isNull bool) {
	if isNull {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if n.Kind == yaml.ScalarNode && v.Type() == option.NamesType {
		n = &yaml.Node{Kind: yaml.SequenceNode, Line: n.Line, Content: []*yaml.Node{n}}
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n.Line, path, "want a list, got %s", describe(n))
		return
	}
	for k := range d.pos { // positions of a replaced list are stale
		if strings.HasPrefix(k, path+".") {
			delete(d.pos, k)
		}
	}
	if len(n.Content) == 0 {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		elem := out.Index(i)
		if elem.Kind() == reflect.Struct {
			option.SetDefaults(elem)
		}
		p := join(path, strconv.Itoa(i))
		d.pos[p] = d.where(item.Line)
		d.decode(elem, item, p)
	}
	v.Set(out)
}

// mapping decodes a free-form mapping, kept as map[string]any for the
// package that uses it.
func (d *decoder) mapping(v reflect.Value, n *yaml.Node, path string, isNull bool) {
	m := map[string]any{}
	if !isNull {
		if n.Kind != yaml.MappingNode {
			d.fail(n.Line, path, "want a mapping, got %s", describe(n))
			return
		}
		if err := n.Decode(&m); err != nil {
			d.fail(n.Line, path, "%v", err)
			return
		}
		d.recordMap(n, path)
	}
	if v.Kind() == reflect.Interface && len(m) == 0 {
		v.SetZero() // params: {} is no params
		return
	}
	v.Set(reflect.ValueOf(m))
}

// scalarNode decodes a scalar option, refusing a mapping or a list.
func (d *decoder) scalarNode(v reflect.Value, n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n.Line, path, "want %s, got %s", wantScalar(v), describe(n))
		return
	}
	d.scalar(v, n, path)
}

// optional decodes into a pointer: null, or an empty mapping for a
// section, leaves it unset; anything else sets it, a section starting
// from its defaults.
func (d *decoder) optional(v reflect.Value, n *yaml.Node, path string, isNull bool) {
	elem := v.Type().Elem()
	if isNull || (elem.Kind() == reflect.Struct && n.Kind == yaml.MappingNode && len(n.Content) == 0) {
		v.SetZero()
		return
	}
	p := reflect.New(elem)
	if v.IsNil() {
		if elem.Kind() == reflect.Struct {
			option.SetDefaults(p.Elem())
		}
	} else {
		p.Elem().Set(v.Elem())
	}
	d.decode(p.Elem(), n, path)
	v.Set(p)
}

// recordMap notes the line of every key inside a free-form mapping so the
// packages that decode it later can point at the line.
func (d *decoder) recordMap(n *yaml.Node, path string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		d.pos[p] = d.where(k.Line)
		if val.Kind == yaml.MappingNode {
			d.recordMap(val, p)
		}
	}
}

func keyOrTop(path string) string {
	if path == "" {
		return "config"
	}
	return path
}

func unknownKey(path, key string, siblings []string) string {
	msg := fmt.Sprintf("unknown key %q", join(path, key))
	if h := foreignHint(path, key); h != "" {
		msg += " (" + h + ")"
	} else if s := suggest(path, key, siblings); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

func wantScalar(v reflect.Value) string {
	switch {
	case v.Type() == option.DurationType:
		return "a duration such as 30s or 2m"
	case option.IsText(v.Type()):
		return "a string"
	}
	switch v.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	}
	return "a string"
}

func (d *decoder) scalar(v reflect.Value, n *yaml.Node, path string) {
	tag := n.ShortTag()
	bad := func() { d.fail(n.Line, path, "want %s, got %s", wantScalar(v), describe(n)) }
	switch {
	case v.Type() == option.DurationType:
		// "" is 0, as configs printed before durations were typed have it.
		if tag == "!!null" || n.Value == "" {
			v.SetInt(0)
		} else if dur, err := time.ParseDuration(n.Value); err != nil || tag != "!!str" {
			bad()
		} else {
			v.SetInt(int64(dur))
		}
		return
	case option.IsText(v.Type()):
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n.Line, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.String:
		if tag == "!!null" {
			v.SetString("")
		} else {
			v.SetString(n.Value)
		}
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			bad()
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		var i int64
		if tag != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			bad()
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			bad()
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n.Line, path, "want a finite number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		d.fail(n.Line, path, "unsupported option type %s", v.Type())
	}
}

// Pos says where the value at a key path was set: "file:line", "--set
// key=value", or "" when it is a default. Packages that decode the free-form
// params use it to locate their errors, e.g. Pos("reward.functions.0.params.pattern").
func (c *Config) Pos(path string) string { return c.pos[path] }
