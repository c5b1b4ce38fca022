package reward

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/rltrain/rltrain/internal/option"
)

// The parameters of each reward type are the JSON fields of the params
// struct it registered; their defaults are the values its newParams fills
// in. ParamsDoc documents them for `rltrain config --doc`, and CheckParams
// lets the config check catch a misspelt param before a run starts.

// ParamInfo is one parameter of a reward type.
type ParamInfo struct {
	Key     string
	Type    string // in YAML terms
	Default string // as JSON
}

// Params lists a reward type's parameters in declaration order.
func Params(typ string) ([]ParamInfo, bool) {
	reg, ok := lookup(typ)
	if !ok {
		return nil, false
	}
	v := reflect.ValueOf(reg.newParams()).Elem()
	var out []ParamInfo
	for i := 0; i < v.NumField(); i++ {
		sf := v.Type().Field(i)
		key := paramKey(sf)
		if key == "" {
			continue
		}
		typ := yamlType(sf.Type)
		def, err := json.Marshal(v.Field(i).Interface())
		if d, ok := v.Field(i).Interface().(Duration); ok {
			// Written as a duration string ("10s"), as a config gives it.
			typ, def, err = "duration", []byte(strconv.Quote(time.Duration(d).String())), nil
		}
		if err != nil {
			def = []byte("?")
		}
		out = append(out, ParamInfo{Key: key, Type: typ, Default: string(def)})
	}
	return out, true
}

func paramKey(sf reflect.StructField) string {
	if !sf.IsExported() {
		return ""
	}
	k, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
	if k == "-" {
		return ""
	}
	if k == "" {
		return sf.Name
	}
	return k
}

func yamlType(t reflect.Type) string {
	if t == reflect.TypeFor[Duration]() {
		return "duration"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "integer"
	case reflect.Float64, reflect.Float32:
		return "number"
	case reflect.Slice:
		return "list of " + yamlType(t.Elem()) + "s"
	case reflect.Map:
		return "mapping"
	case reflect.Pointer:
		return yamlType(t.Elem())
	case reflect.Struct:
		return "mapping"
	}
	return t.String()
}

// ParamsDoc renders every reward type with its parameters and defaults as
// markdown.
func ParamsDoc() string {
	var b strings.Builder
	for _, td := range Types() {
		fmt.Fprintf(&b, "\n### `%s`\n\n%s.\n\n", td[0], strings.TrimSuffix(td[1], "."))
		ps, _ := Params(td[0])
		if len(ps) == 0 {
			b.WriteString("No parameters.\n")
			continue
		}
		b.WriteString("| param | type | default |\n|---|---|---|\n")
		for _, p := range ps {
			fmt.Fprintf(&b, "| `%s` | %s | `%s` |\n", p.Key, p.Type, strings.ReplaceAll(p.Default, "|", `\|`))
		}
	}
	return b.String()
}

// ParamError is a params problem found before a run: Key is the param it
// concerns ("" for the params as a whole).
type ParamError struct {
	Key string
	Msg string
}

func (e *ParamError) Error() string { return e.Msg }

// CheckParams decodes params for a reward type as a run would. An unknown
// param is reported with the nearest known one.
func CheckParams(typ string, params any) error {
	reg, ok := lookup(typ)
	if !ok {
		names := make([]string, 0)
		for _, td := range Types() {
			names = append(names, td[0])
		}
		return fmt.Errorf("unknown reward type %q; the types are %s", typ, strings.Join(names, ", "))
	}
	p := reg.newParams()
	err := decodeParams(params, p)
	if err == nil {
		return nil
	}
	var unknown *unknownParamError
	if errors.As(err, &unknown) {
		ps, _ := Params(typ)
		keys := make([]string, len(ps))
		for i, pi := range ps {
			keys[i] = pi.Key
		}
		msg := fmt.Sprintf("unknown param %q of reward type %s", unknown.key, typ)
		if s := option.Nearest(unknown.key, keys); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		} else {
			msg += "; its params are " + strings.Join(keys, ", ")
		}
		return &ParamError{Key: unknown.key, Msg: msg}
	}
	return &ParamError{Msg: err.Error()}
}

// unknownParamError is decodeParams' error for a key the params struct
// lacks.
type unknownParamError struct{ key string }

func (e *unknownParamError) Error() string { return fmt.Sprintf("unknown param %q", e.key) }
