package model

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// LoRA (Hu et al., 2021) as Hugging Face PEFT implements it: a targeted
// linear layer y = x·Wᵀ becomes y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ with A [r × in],
// B [out × r] and s = lora_alpha/r (lora_alpha/√r with rsLoRA); W stays
// frozen and only A and B are trained.

// The seven linear layers of a block that an adapter can target, in the
// order of the block's fused projections.
const (
	projQ = iota
	projK
	projV
	projO
	projGate
	projUp
	projDown
	numProj
)

// loraModules names each projection as Hugging Face does: its parent
// module and its own name.
var loraModules = [numProj]struct{ parent, name string }{
	{"self_attn", "q_proj"}, {"self_attn", "k_proj"}, {"self_attn", "v_proj"}, {"self_attn", "o_proj"},
	{"mlp", "gate_proj"}, {"mlp", "up_proj"}, {"mlp", "down_proj"},
}

// LoRAModuleNames lists the projection names an adapter can target.
func LoRAModuleNames() []string {
	out := make([]string, numProj)
	for i, p := range loraModules {
		out[i] = p.name
	}
	return out
}

// Targets is PEFT's target_modules (or exclude_modules): a list of module
// names, each matching a module whose name is it or ends with "."+it; or a
// single regular expression that must match a whole module name; or
// "all-linear", every linear layer but the output layer.
type Targets struct {
	List  []string
	Regex string
}

// AllLinear is target_modules: all-linear.
var AllLinear = Targets{Regex: "all-linear"}

// IsZero reports whether t selects nothing (an absent exclude_modules).
func (t Targets) IsZero() bool { return t.List == nil && t.Regex == "" }

func (t Targets) String() string {
	if t.List != nil {
		return "[" + strings.Join(t.List, ", ") + "]"
	}
	return t.Regex
}

// LoRAConfig is the part of PEFT's LoraConfig that rltrain implements.
// Options that change the adapter's math in ways rltrain does not
// implement (DoRA, trained biases, modules_to_save, per-module ranks, ...)
// are refused when an adapter_config.json is read, never ignored.
type LoRAConfig struct {
	R       int
	Alpha   float64
	Dropout float64
	// Targets selects the adapted modules; Exclude removes some again.
	Targets, Exclude Targets
	// RSLoRA scales by Alpha/√R instead of Alpha/R.
	RSLoRA bool
	// Layers, when not nil, restricts the adapter to these layer indices
	// (PEFT's layers_to_transform).
	Layers []int
	// BaseModel is base_model_name_or_path: what the adapter was trained
	// on.
	BaseModel string
}

// Scale is the factor s of the low-rank update s·B·A.
func (c LoRAConfig) Scale() float64 {
	if c.RSLoRA {
		return c.Alpha / math.Sqrt(float64(c.R))
	}
	return c.Alpha / float64(c.R)
}

// maxLoRARank bounds r: far above any useful rank, and it keeps sizes
// computed from it far from overflow.
const maxLoRARank = 1 << 16

// Check validates the numbers of c.
func (c LoRAConfig) Check() error {
	if c.R < 1 || c.R > maxLoRARank {
		return fmt.Errorf("r is %d; want 1..%d", c.R, maxLoRARank)
	}
	if math.IsNaN(c.Alpha) || math.IsInf(c.Alpha, 0) || c.Alpha == 0 {
		return fmt.Errorf("lora_alpha is %v; want a finite non-zero number", c.Alpha)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return fmt.Errorf("lora_dropout is %v; want 0 <= p < 1", c.Dropout)
	}
	if c.Targets.IsZero() {
		return errors.New("target_modules is empty")
	}
	return nil
}

// moduleNames lists the module names of a model as transformers'
// named_modules() spells them (the root, "", omitted), with, for each, the
// projection it is (-1 for other modules) and its layer (-1 outside the
// layers).
type moduleName struct {
	name         string
	proj, layer  int
	linear, head bool
}

func (c Config) moduleNames() []moduleName {
	out := []moduleName{{name: "model", proj: -1, layer: -1}, {name: "model.embed_tokens", proj: -1, layer: -1}, {name: "model.layers", proj: -1, layer: -1}}
	for i := 0; i < c.Layers; i++ {
		p := "model.layers." + strconv.Itoa(i)
		add := func(name string) { out = append(out, moduleName{name: name, proj: -1, layer: i}) }
		add(p)
		add(p + ".self_attn")
		for j := projQ; j <= projO; j++ {
			out = append(out, moduleName{name: p + ".self_attn." + loraModules[j].name, proj: j, layer: i, linear: true})
		}
		if c.QKNorm {
			add(p + ".self_attn.q_norm")
			add(p + ".self_attn.k_norm")
		}
		add(p + ".mlp")
		for j := projGate; j <= projDown; j++ {
			out = append(out, moduleName{name: p + ".mlp." + loraModules[j].name, proj: j, layer: i, linear: true})
		}
		add(p + ".mlp.act_fn")
		add(p + ".input_layernorm")
		add(p + ".post_attention_layernorm")
	}
	out = append(out, moduleName{name: "model.norm", proj: -1, layer: -1}, moduleName{name: "model.rotary_emb", proj: -1, layer: -1},
		moduleName{name: "lm_head", proj: -1, layer: -1, linear: true, head: true})
	return out
}

// matcher tests module names against a Targets value as PEFT's
// check_target_module_exists does.
type matcher struct {
	t         Targets
	re        *regexp.Regexp
	allLinear bool
}

func newMatcher(key string, t Targets) (*matcher, error) {
	m := &matcher{t: t}
	switch {
	case t.List != nil:
	case t.Regex == "all-linear":
		m.allLinear = true
	case t.Regex != "":
		re, err := regexp.Compile(`^(?:` + t.Regex + `)$`)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a regular expression rltrain can read (Go RE2 syntax, no look-around): %w", key, t.Regex, err)
		}
		m.re = re
	}
	return m, nil
}

// match reports whether module mod is selected; entry is the index of the
// list entry that selected it (-1 otherwise).
func (m *matcher) match(mod moduleName) (ok bool, entry int) {
	switch {
	case m.t.List != nil:
		for i, t := range m.t.List {
			if mod.name == t || strings.HasSuffix(mod.name, "."+t) {
				return true, i
			}
		}
		return false, -1
	case m.allLinear:
		return mod.linear && !mod.head, -1
	case m.re != nil:
		return m.re.MatchString(mod.name), -1
	}
	return false, -1
}

// resolve turns c's module selection into, for each layer, the set of
// adapted projections. It refuses selections PEFT would refuse or that
// rltrain cannot adapt: a target that names no module of the model, a
// module that is not one of the seven projections (the embedding, the
// output layer, a norm), a layer index outside the model, or nothing at
// all.
func (c LoRAConfig) resolve(cfg Config) ([][numProj]bool, error) {
	tm, err := newMatcher("target_modules", c.Targets)
	if err != nil {
		return nil, err
	}
	var ex *matcher
	if !c.Exclude.IsZero() {
		if ex, err = newMatcher("exclude_modules", c.Exclude); err != nil {
			return nil, err
		}
	}
	for _, l := range c.Layers {
		if l < 0 || l >= cfg.Layers {
			return nil, fmt.Errorf("layers_to_transform: layer %d is outside the model's %d layers", l, cfg.Layers)
		}
	}
	out := make([][numProj]bool, cfg.Layers)
	used := make([]bool, len(c.Targets.List))
	any := false
	for _, mod := range cfg.moduleNames() {
		ok, entry := tm.match(mod)
		if !ok {
			continue
		}
		if entry >= 0 {
			used[entry] = true
		}
		if ex != nil {
			if exc, _ := ex.match(mod); exc {
				continue
			}
		}
		if c.Layers != nil && (mod.layer < 0 || !slices.Contains(c.Layers, mod.layer)) {
			continue
		}
		if mod.proj < 0 {
			what := "it is not a linear layer"
			if mod.linear || strings.HasSuffix(mod.name, "embed_tokens") {
				what = "rltrain adapts only the attention and MLP projections"
			}
			return nil, fmt.Errorf("target_modules %s selects %s: %s; the projections are %s", c.Targets, mod.name, what, strings.Join(LoRAModuleNames(), ", "))
		}
		out[mod.layer][mod.proj] = true
		any = true
	}
	for i, u := range used {
		if !u {
			return nil, fmt.Errorf("target_modules: %q is not a module of this %s model (its linear layers are %s)", c.Targets.List[i], cfg.Architecture, strings.Join(LoRAModuleNames(), ", "))
		}
	}
	if !any {
		return nil, fmt.Errorf("target_modules %s selects no module of this model (its linear layers are %s)", c.Targets, strings.Join(LoRAModuleNames(), ", "))
	}
	return out, nil
}
