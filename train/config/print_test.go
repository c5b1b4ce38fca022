package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Printing the resolved config and parsing it back gives the same values,
// and printing again gives the same text.
func TestPrintParseRoundTrip(t *testing.T) {
	full, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	tricky := mustParse(t, minimal)
	for _, s := range []string{
		`rollout.stop=["\n", "\t", "</answer>", "", "#"]`, // control characters, comment and empty strings
		"model.path=123",          // a string that looks like a number
		"model.chat_template=yes", // a string that looks like a YAML 1.1 bool
		"model.tokenizer='null'",  // a string that looks like null
		"optim.lr=1.5e-7",
		"reward.0.type=checklist",
		"reward.0.params={items: [{contains: 'a: b'}, {regex: '^\\d+$'}], n: 2.5}",
		"train.seed=-9007199254740993",
	} {
		if err := tricky.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]*Config{"default": Default(), "full": full, "tricky": tricky} {
		t.Run(name, func(t *testing.T) {
			out, err := c.YAML()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(out, "printed.yaml")
			if err != nil {
				t.Fatalf("printed config does not parse: %v\n%s", err, out)
			}
			if !equalConfigs(c, back) {
				t.Fatalf("round trip changed values:\n%+v\n%+v\n%s", *c, *back, out)
			}
			again, _ := back.YAML()
			if !bytes.Equal(out, again) {
				t.Fatalf("second print differs:\n%s\n---\n%s", out, again)
			}
		})
	}
}

// Doc documents every option: found here by walking the types
// independently of the schema table that Doc uses.
func TestDocListsEveryOption(t *testing.T) {
	doc := Doc()
	var walk func(t reflect.Type, path string) []string
	walk = func(ty reflect.Type, path string) []string {
		var out []string
		for i := 0; i < ty.NumField(); i++ {
			sf := ty.Field(i)
			key := strings.Split(sf.Tag.Get("yaml"), ",")[0]
			if !sf.IsExported() || key == "" {
				continue
			}
			p := key
			if path != "" {
				p = path + "." + key
			}
			out = append(out, p)
			if sf.Type.Kind() == reflect.Struct {
				out = append(out, walk(sf.Type, p)...)
			}
			if sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Struct {
				out = append(out, walk(sf.Type.Elem(), p+".N")...)
			}
			for _, e := range strings.Split(sf.Tag.Get("enum"), ",") {
				if e != "" && !strings.Contains(doc, "`"+e+"`") {
					t.Errorf("Doc does not list value %q of %s", e, p)
				}
			}
		}
		return out
	}
	paths := walk(reflect.TypeOf(Config{}), "")
	if len(paths) < 100 {
		t.Fatalf("only %d options found; the walk is broken", len(paths))
	}
	for _, p := range paths {
		if !strings.Contains(p, ".") {
			if !strings.Contains(doc, "\n## "+p+"\n") {
				t.Errorf("Doc has no section %q", p)
			}
			continue
		}
		if !strings.Contains(doc, fmt.Sprintf("| `%s` |", p)) {
			t.Errorf("Doc does not list %s", p)
		}
	}
	if !strings.Contains(doc, "| `rollout.group_size` | integer | `8` |  | Completions sampled per prompt") {
		t.Error("Doc row of rollout.group_size is not type | default | resume | description")
	}
}
