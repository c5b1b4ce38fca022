package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/rltrain/rltrain/internal/option"
	"github.com/rltrain/rltrain/reward"
)

// Doc renders the reference of every option as markdown: the text of
// `rltrain config --doc` and of configs/README.md.
func Doc() string {
	var b strings.Builder
	b.WriteString(`# Run configuration

A run is one YAML file with the sections below. Every key is optional and
takes the default shown; unknown keys and values of the wrong type are errors
that name the file, the line and the key. Override any key from the command
line with ` + "`--set key=value`" + ` (the value is YAML: ` + "`--set optim.lr=2e-6`" + `,
` + "`--set reward.functions.0.weight=2`" + `, ` + "`--set data.task_params.digits=3`" + `), and see the
resolved configuration with ` + "`rltrain run CONFIG --print-config`" + `.

When a run is resumed, options marked *harmless* may differ from the
checkpoint's configuration; changing any other option is a breaking change.
`)
	var section string
	for _, f := range allFields {
		top, _, nested := strings.Cut(f.path, ".")
		if !nested {
			section = top
			fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", section, f.doc)
			if f.typ.Kind() == reflect.Slice {
				fmt.Fprintf(&b, "A list; each entry has the keys below (`%s.N` is entry N).\n\n", section)
			}
			b.WriteString("| key | type | default | resume | description |\n|---|---|---|---|---|\n")
			continue
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", f.path, typeName(f.typ), docDefault(f), resumeWord(f), docText(f))
	}
	b.WriteString(`
## Reward types

The ` + "`type`" + ` of a reward function and its ` + "`params`" + ` (a mapping; a param left
out takes the default shown). A misspelt param or an unknown type is an error
of ` + "`--print-config`" + `, ` + "`rltrain config`" + ` and ` + "`run`" + ` that names the file and line.
`)
	b.WriteString(reward.ParamsDoc())
	return b.String()
}

func docDefault(f field) string {
	switch {
	case option.IsText(f.typ):
		return "`" + f.def + "`"
	case f.typ.Kind() == reflect.Struct, f.typ.Kind() == reflect.Pointer && f.typ.Elem().Kind() == reflect.Struct:
		return ""
	case freeForm(f.typ):
		return "`{}`"
	case f.typ.Kind() == reflect.Slice:
		return "`[" + strings.ReplaceAll(f.def, ",", ", ") + "]`"
	case f.typ.Kind() == reflect.String:
		return fmt.Sprintf("`%q`", f.def)
	}
	return "`" + f.def + "`"
}

func resumeWord(f field) string {
	if f.harmless {
		return "harmless"
	}
	return ""
}

func docText(f field) string {
	s := strings.ReplaceAll(f.doc, "|", `\|`)
	if len(f.enum) > 0 {
		s += " One of: `" + strings.Join(f.enum, "`, `") + "`."
	}
	return s
}
