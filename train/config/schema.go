package config

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/rltrain/rltrain/internal/option"
)

// field describes one option as declared by its struct tags.
type field struct {
	path     string // dotted key path; list elements appear as "reward.N"
	typ      reflect.Type
	def      string
	hasDef   bool
	doc      string
	enum     []string
	harmless bool
}

// freeForm reports whether an option is a mapping decoded by the package
// that uses it (map[string]any, or any).
func freeForm(t reflect.Type) bool {
	return t.Kind() == reflect.Map || t.Kind() == reflect.Interface
}

var join = option.Join

// schema lists every option of t (sections included) in declaration order,
// depth first; list element fields use "N" as their index.
func schema(t reflect.Type, path string, harmless bool) []field {
	var out []field
	for _, sf := range option.Fields(t) {
		def, hasDef := sf.Tag.Lookup("default")
		f := field{path: join(path, sf.Key), typ: sf.Type, def: def, hasDef: hasDef, doc: sf.Tag.Get("doc"),
			harmless: harmless || sf.Tag.Get("resume") == "harmless"}
		if e := sf.Tag.Get("enum"); e != "" {
			f.enum = strings.Split(e, ",")
		}
		out = append(out, f)
		switch {
		case option.IsText(sf.Type):
		case sf.Type.Kind() == reflect.Struct:
			out = append(out, schema(sf.Type, f.path, f.harmless)...)
		case sf.Type.Kind() == reflect.Pointer && sf.Type.Elem().Kind() == reflect.Struct:
			out = append(out, schema(sf.Type.Elem(), f.path, f.harmless)...)
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Struct:
			out = append(out, schema(sf.Type.Elem(), f.path+".N", f.harmless)...)
		}
	}
	return out
}

var allFields = schema(reflect.TypeOf(Config{}), "", false)

// lookupField finds the schema entry of a concrete path such as
// "reward.3.weight" or "data.task_params.digits" (a key inside a map
// resolves to the map's entry).
func lookupField(path string) (field, bool) {
	segs := strings.Split(path, ".")
	cur := ""
	var found field
	ok := false
	for _, s := range segs {
		if _, err := strconv.Atoi(s); err == nil {
			s = "N"
		}
		next := join(cur, s)
		matched := false
		for _, f := range allFields {
			if f.path == next {
				found, ok, matched = f, true, true
				break
			}
		}
		if !matched {
			// Inside a free-form map every deeper key belongs to it.
			if ok && freeForm(found.typ) {
				return found, true
			}
			return field{}, false
		}
		cur = next
	}
	return found, ok
}

// typeName describes a Go field type in user terms.
func typeName(t reflect.Type) string {
	switch {
	case t == option.DurationType:
		return "duration"
	case option.IsText(t):
		return "string"
	case t.Kind() == reflect.Pointer:
		return typeName(t.Elem())
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Float64:
		return "number"
	case reflect.Map, reflect.Interface:
		return "mapping"
	case reflect.Struct:
		return "section"
	case reflect.Slice:
		switch t.Elem().Kind() {
		case reflect.String:
			return "list of strings"
		case reflect.Float64:
			return "list of numbers"
		}
		return "list"
	}
	return t.String()
}

// Default returns the configuration with every option at its default.
func Default() *Config {
	c := &Config{pos: map[string]string{}}
	option.SetDefaults(reflect.ValueOf(c).Elem())
	return c
}

// structKeys lists the keys of a struct type.
func structKeys(t reflect.Type) []string {
	var keys []string
	for _, f := range option.Fields(t) {
		keys = append(keys, f.Key)
	}
	return keys
}

// fieldByKey returns the field of struct value v with the given key.
func fieldByKey(v reflect.Value, key string) (reflect.Value, bool) {
	fv, _, ok := option.FieldByKey(v, key)
	return fv, ok
}

// suggest proposes the key a misspelt or misplaced one probably meant: a
// sibling within a small edit distance, else an option of that name in
// another section.
func suggest(path, key string, siblings []string) string {
	if best := option.Nearest(key, siblings); best != "" {
		return join(path, best)
	}
	for _, f := range allFields {
		if strings.HasSuffix(f.path, "."+key) && !strings.Contains(f.path, ".N.") {
			return f.path
		}
	}
	return ""
}
