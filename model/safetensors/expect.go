package safetensors

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// Expect returns tensors[name] after checking it has exactly shape. The
// error names the file the tensor came from, e.g.
//
//	file model.safetensors: tensor "lm_head.weight" has shape [32000 512], config wants [32000 256]
func Expect(tensors map[string]*Tensor, name string, shape ...int) (*Tensor, error) {
	t, ok := tensors[name]
	if !ok || t == nil {
		return nil, fmt.Errorf("tensor %q with shape %v is missing", name, shape)
	}
	if !slices.Equal(t.Shape, shape) {
		return nil, fmt.Errorf("file %s: tensor %q has shape %v, config wants %v", t.File, name, t.Shape, shape)
	}
	return t, nil
}

// Picker hands tensors to a model loader one by one, checking shapes and
// remembering every problem, so that a loader can ask for all its weights
// and then report missing, misshapen and unused tensors in one error:
//
//	p := safetensors.NewPicker(dir, tensors)
//	embed := p.Take("model.embed_tokens.weight", vocab, dim)
//	head := p.Optional("lm_head.weight", vocab, dim) // nil when tied
//	p.Ignore("model.layers.*.self_attn.rotary_emb.inv_freq")
//	if err := p.Err(); err != nil { ... }
type Picker struct {
	source  string
	tensors map[string]*Tensor
	used    map[string]bool
	errs    []error
}

// NewPicker starts handing out tensors; source (a directory or file) is
// used in messages about missing and unused tensors.
func NewPicker(source string, tensors map[string]*Tensor) *Picker {
	return &Picker{source: source, tensors: tensors, used: make(map[string]bool)}
}

// Take returns the named tensor if it exists with exactly shape; otherwise
// it records the problem and returns nil.
func (p *Picker) Take(name string, shape ...int) *Tensor {
	p.used[name] = true
	t, err := Expect(p.tensors, name, shape...)
	if err != nil {
		if _, ok := p.tensors[name]; !ok {
			err = fmt.Errorf("%s: %w", p.source, err)
		}
		p.errs = append(p.errs, err)
		return nil
	}
	return t
}

// Optional is Take for a tensor that may be absent (a tied lm_head, a bias
// some checkpoints omit): a missing tensor returns nil without an error,
// but a present one must still have the right shape.
func (p *Picker) Optional(name string, shape ...int) *Tensor {
	if _, ok := p.tensors[name]; !ok {
		return nil
	}
	return p.Take(name, shape...)
}

// Ignore marks tensors whose names match any of the patterns (path.Match
// syntax, where '*' also spans dots) as deliberately unused, such as
// precomputed rotary tables some checkpoints carry.
func (p *Picker) Ignore(patterns ...string) {
	for _, pat := range patterns {
		if _, err := path.Match(pat, ""); err != nil {
			p.errs = append(p.errs, fmt.Errorf("ignore pattern %q: %w", pat, err))
			continue
		}
		for name := range p.tensors {
			if ok, _ := path.Match(pat, name); ok {
				p.used[name] = true
			}
		}
	}
}

// Unused lists, sorted, the tensors that were neither taken nor ignored.
func (p *Picker) Unused() []string {
	var out []string
	for name := range p.tensors {
		if !p.used[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// maxListed caps how many unused tensor names one error spells out.
const maxListed = 10

// Err reports the problems seen so far (the first maxListed of them, and
// how many more: a config that wants 20,000 layers must not print a line
// for each missing tensor) plus the unused tensors, or nil.
func (p *Picker) Err() error {
	errs := slices.Clone(p.errs)
	if len(errs) > maxListed {
		more := len(errs) - maxListed
		errs = append(errs[:maxListed:maxListed], fmt.Errorf("… and %d more problems like these", more))
	}
	if unused := p.Unused(); len(unused) > 0 {
		var b strings.Builder
		for i, name := range unused {
			if i == maxListed {
				fmt.Fprintf(&b, " and %d more", len(unused)-maxListed)
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", name)
			if t := p.tensors[name]; t != nil && t.File != "" {
				fmt.Fprintf(&b, " (file %s)", t.File)
			}
		}
		errs = append(errs, fmt.Errorf("%s: %d tensors not used by the model: %s", p.source, len(unused), b.String()))
	}
	return errors.Join(errs...)
}
