// Package option holds the conventions by which rltrain's packages declare
// the options of a run config on their own types, so that each option is
// declared once: its YAML key, default, documentation and allowed values
// live in the struct tags of the type that uses it (optim.Algorithm,
// rollout.Config, reward.Spec, ...), and its range checks in that type's
// Check method. Package train/config assembles those types into the run
// config and reads the same tags to decode, document, print, override and
// compare configs.
//
// The tags:
//
//	yaml:"key"            the option's key; "-" for a field that is not an
//	                      option; ",inline" embeds a struct's options in the
//	                      enclosing section
//	default:"value"       the default, parsed like a YAML scalar of the
//	                      field's type; a comma-separated list for a slice
//	doc:"..."             one line of documentation
//	enum:"a,b,c"          the allowed values of a string option
//	resume:"harmless"     may change when a run is resumed
//	shorthand:"list"      (on a list field) a bare YAML list given for the
//	                      enclosing section means this field
//
// Option values are strings, booleans, integers, floats, time.Durations
// ("30s"), types that parse themselves (encoding.TextUnmarshaler), lists
// of those or of sections (Names: a list of strings that one string may
// stand for), free-form mappings (map[string]any, or any for
// a mapping a package decodes itself), and pointers to a scalar or a
// section for an optional value (nil: unset).
//
// Zero values are not defaults: start from Defaults.
package option

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Field is one option of a struct type, with inline structs flattened.
type Field struct {
	reflect.StructField
	Key   string // the yaml key
	Index []int  // for reflect.Value.FieldByIndex
}

// Fields lists the options of struct type t in declaration order.
func Fields(t reflect.Type) []Field {
	var out []Field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		key, flags, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if key == "-" {
			continue
		}
		if flags == "inline" && sf.Type.Kind() == reflect.Struct {
			for _, f := range Fields(sf.Type) {
				f.Index = append([]int{i}, f.Index...)
				out = append(out, f)
			}
			continue
		}
		if key == "" {
			continue
		}
		out = append(out, Field{StructField: sf, Key: key, Index: []int{i}})
	}
	return out
}

// FieldByKey returns the option of struct value v with the given key.
func FieldByKey(v reflect.Value, key string) (reflect.Value, Field, bool) {
	for _, f := range Fields(v.Type()) {
		if f.Key == key {
			return v.FieldByIndex(f.Index), f, true
		}
	}
	return reflect.Value{}, Field{}, false
}

// Shorthand returns the list field a bare YAML list given for struct type
// t stands for (tag shorthand:"list").
func Shorthand(t reflect.Type) (Field, bool) {
	for _, f := range Fields(t) {
		if f.Tag.Get("shorthand") == "list" {
			return f, true
		}
	}
	return Field{}, false
}

// Join appends key to a dotted path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// IsText reports whether values of t are written as one string and parsed
// by the type itself (encoding.TextUnmarshaler), e.g. a duration.
func IsText(t reflect.Type) bool {
	return t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(textUnmarshaler)
}

// Defaults returns a T with every option at its default.
func Defaults[T any]() T {
	var x T
	SetDefaults(reflect.ValueOf(&x).Elem())
	return x
}

// SetDefaults sets every option of struct value v from its default tag,
// recursing into sections. A malformed tag is a programming error, caught
// by the tests of the package that declares it.
func SetDefaults(v reflect.Value) {
	for _, f := range Fields(v.Type()) {
		fv := v.FieldByIndex(f.Index)
		def, hasDef := f.Tag.Lookup("default")
		switch {
		case IsText(f.Type):
			if err := fv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(def)); err != nil {
				panic(fmt.Sprintf("option: default of %s: %v", f.Name, err))
			}
		case f.Type.Kind() == reflect.Struct:
			SetDefaults(fv)
		case f.Type.Kind() == reflect.Map:
			fv.Set(reflect.MakeMap(f.Type))
		case f.Type.Kind() == reflect.Slice:
			fv.Set(reflect.Zero(f.Type))
			if def == "" {
				continue
			}
			parts := strings.Split(def, ",")
			fv.Set(reflect.MakeSlice(f.Type, len(parts), len(parts)))
			for j, p := range parts {
				if err := SetScalar(fv.Index(j), p); err != nil {
					panic(fmt.Sprintf("option: default of %s: %v", f.Name, err))
				}
			}
		case f.Type.Kind() == reflect.Interface:
			fv.Set(reflect.Zero(f.Type))
		case f.Type.Kind() == reflect.Pointer:
			// An optional value: a scalar with a default starts set, a
			// section starts unset.
			fv.Set(reflect.Zero(f.Type))
			if hasDef && f.Type.Elem().Kind() != reflect.Struct {
				p := reflect.New(f.Type.Elem())
				if err := SetScalar(p.Elem(), def); err != nil {
					panic(fmt.Sprintf("option: default of %s: %v", f.Name, err))
				}
				fv.Set(p)
			}
		case hasDef:
			if err := SetScalar(fv, def); err != nil {
				panic(fmt.Sprintf("option: default of %s: %v", f.Name, err))
			}
		}
	}
}

// DurationType is time.Duration, which options write as "30s" or "2m".
var DurationType = reflect.TypeFor[time.Duration]()

// Names is a list of strings that a single string also gives, as a list
// of one (PEFT's target_modules: all-linear or [q_proj, v_proj]).
type Names []string

// NamesType is the type of Names.
var NamesType = reflect.TypeFor[Names]()

// SetScalar parses s into a string, bool, integer, float or duration
// value.
func SetScalar(v reflect.Value, s string) error {
	if v.Type() == DurationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetUint(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("unsupported kind %s", v.Kind())
	}
	return nil
}

// Error is one problem with an option, located where its value was
// written: "configs/x.yaml:7: algorithm.epsilon: want a number, got
// \"abc\"".
type Error struct {
	Pos string // "file:line", "--set key=value", or "" for a default value
	Key string // dotted key path, or "" when Msg names it
	Msg string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos != "" {
		b.WriteString(e.Pos)
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// A Section checks the ranges and combinations of its own options; enum
// tags are checked for it by Checker.Walk.
type Section interface {
	Check(c *Checker)
}

// Checker collects option errors; keys are relative to the section being
// checked and reported under its path.
type Checker struct {
	prefix string
	errs   []*Error
}

// Validate checks a section value (its enum tags, those of nested
// sections, and every Check) under the given path, e.g. Validate("rollout",
// cfg), and joins the errors.
func Validate(path string, v any) error {
	var c Checker
	c.Walk(path, reflect.ValueOf(v))
	return c.Err()
}

// Err joins the collected errors, or returns nil.
func (c *Checker) Err() error {
	errs := make([]error, len(c.errs))
	for i, e := range c.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Errors returns the collected errors.
func (c *Checker) Errors() []*Error { return c.errs }

// Walk checks the enum tags of struct value v and of its sections and list
// entries, then calls Check on every value that is a Section, deepest
// first, with keys under path.
func (c *Checker) Walk(path string, v reflect.Value) {
	saved := c.prefix
	c.prefix = path
	defer func() { c.prefix = saved }()
	for _, f := range Fields(v.Type()) {
		fv, p := v.FieldByIndex(f.Index), Join(path, f.Key)
		switch {
		case f.Type.Kind() == reflect.Struct && !IsText(f.Type):
			c.Walk(p, fv)
		case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
			if !fv.IsNil() {
				c.Walk(p, fv.Elem())
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			for j := 0; j < fv.Len(); j++ {
				c.Walk(fmt.Sprintf("%s.%d", p, j), fv.Index(j))
			}
		case f.Tag.Get("enum") != "":
			allowed := strings.Split(f.Tag.Get("enum"), ",")
			if !slices.Contains(allowed, fv.String()) {
				c.errs = append(c.errs, &Error{Key: p, Msg: fmt.Sprintf("must be one of %s, got %q", strings.Join(allowed, ", "), fv.String())})
			}
		}
	}
	// A section that embeds another (the run config's rollout section
	// embeds rollout.Config) inherits its Check, or calls it from its own.
	if s, ok := v.Interface().(Section); ok {
		s.Check(c)
	}
}

// Bad records a problem with the option at key (relative to the section).
func (c *Checker) Bad(key, format string, args ...any) {
	c.errs = append(c.errs, &Error{Key: Join(c.prefix, key), Msg: fmt.Sprintf(format, args...)})
}

// AtLeast checks got >= lo.
func (c *Checker) AtLeast(key string, got, lo int) {
	if got < lo {
		c.Bad(key, "must be >= %d, got %d", lo, got)
	}
}

// Positive checks got > 0.
func (c *Checker) Positive(key string, got float64) {
	if !(got > 0) {
		c.Bad(key, "must be > 0, got %v", got)
	}
}

// NonNegative checks got >= 0.
func (c *Checker) NonNegative(key string, got float64) {
	if !(got >= 0) {
		c.Bad(key, "must be >= 0, got %v", got)
	}
}

// Within checks lo <= got < hi (closedHi: got <= hi).
func (c *Checker) Within(key string, got, lo, hi float64, closedHi bool) {
	if !(got >= lo && got <= hi) || (!closedHi && got == hi) {
		bracket := ")"
		if closedHi {
			bracket = "]"
		}
		c.Bad(key, "must be in [%v, %v%s, got %v", lo, hi, bracket, got)
	}
}

// Open checks lo < got < hi.
func (c *Checker) Open(key string, got, lo, hi float64) {
	if !(got > lo && got < hi) {
		c.Bad(key, "must be in (%v, %v), got %v", lo, hi, got)
	}
}
