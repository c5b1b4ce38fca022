package config

import (
	"bytes"
	"encoding"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/rltrain/rltrain/internal/option"
	"gopkg.in/yaml.v3"
)

// YAML renders the resolved configuration (every option, defaults
// included) as YAML that Parse reads back to the same values; each section
// is preceded by its one-line description.
func (c *Config) YAML() ([]byte, error) {
	root, err := toNode(reflect.ValueOf(c).Elem())
	if err != nil {
		return nil, fmt.Errorf("print config: %w", err)
	}
	docs := map[string]string{}
	for _, f := range allFields {
		docs[f.path] = f.doc
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		root.Content[i].HeadComment = docs[root.Content[i].Value]
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("print config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("print config: %w", err)
	}
	return buf.Bytes(), nil
}

// toNode builds the YAML tree by hand rather than with yaml.Node.Encode,
// which turns "\n" into an empty literal block that reads back as "" (a
// silently lost stop string) and prints 1.0 as 1 (an int once re-read into
// free-form params).
func toNode(v reflect.Value) (*yaml.Node, error) {
	for v.Kind() == reflect.Interface {
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
		}
		v = v.Elem()
	}
	switch {
	case v.Type() == option.DurationType:
		return strNode(time.Duration(v.Int()).String()), nil
	case option.IsText(v.Type()):
		b, err := v.Addr().Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return nil, err
		}
		return strNode(string(b)), nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
		}
		return toNode(v.Elem())
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, f := range option.Fields(v.Type()) {
			val, err := toNode(v.FieldByIndex(f.Index))
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, strNode(f.Key), val)
		}
		return n, nil
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: flowIfEmpty(v.Len())}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			if k.Kind() != reflect.String {
				return nil, fmt.Errorf("map key %v is not a string", k)
			}
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for _, k := range keys {
			val, err := toNode(v.MapIndex(reflect.ValueOf(k)))
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, strNode(k), val)
		}
		return n, nil
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: flowIfEmpty(v.Len())}
		for i := 0; i < v.Len(); i++ {
			val, err := toNode(v.Index(i))
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, val)
		}
		return n, nil
	case reflect.String:
		return strNode(v.String()), nil
	case reflect.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.Bool())}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int(), 10)}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(v.Uint(), 10)}, nil
	case reflect.Float32, reflect.Float64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: formatFloat(v.Float())}, nil
	}
	return nil, fmt.Errorf("cannot print a %s", v.Type())
}

func flowIfEmpty(n int) yaml.Style {
	if n == 0 {
		return yaml.FlowStyle
	}
	return 0
}

// strNode is a string scalar; strings with control characters are written
// double-quoted with escapes, and the encoder quotes any that would
// otherwise read back as another type ("123", "yes", "null").
func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// formatFloat writes the shortest exact form, always recognisable as a
// float ("1.0", not "1").
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return ".nan"
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}
