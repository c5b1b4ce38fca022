package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/rltrain/rltrain/model/safetensors"
)

// The files of a PEFT adapter directory, as save_pretrained writes them.
const (
	AdapterConfigFile  = "adapter_config.json"
	AdapterWeightsFile = "adapter_model.safetensors"
)

// IsAdapterDir reports whether dir holds a PEFT adapter (an
// adapter_config.json).
func IsAdapterDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, AdapterConfigFile))
	return err == nil
}

// peftDefaultTargets is PEFT's target_modules for the Llama family when a
// config leaves it null (its TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
var peftDefaultTargets = []string{"q_proj", "v_proj"}

// ReadLoRAConfig reads and checks dir/adapter_config.json. Options that
// would change the adapter's math in ways rltrain does not implement are
// refused by name; options that only matter when PEFT initialises a new
// adapter (init_lora_weights, loftq_config, ...) or to other tools are
// ignored.
func ReadLoRAConfig(dir string) (LoRAConfig, error) {
	path := filepath.Join(dir, AdapterConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return LoRAConfig{}, fmt.Errorf("lora adapter: %w", err)
	}
	c, err := ParseLoRAConfig(b)
	if err != nil {
		return LoRAConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseLoRAConfig decodes the text of an adapter_config.json.
func ParseLoRAConfig(b []byte) (LoRAConfig, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return LoRAConfig{}, fmt.Errorf("invalid JSON: %w", err)
	}
	get := func(key string, v any) (bool, error) {
		r, ok := raw[key]
		if !ok || string(r) == "null" {
			return false, nil
		}
		if err := json.Unmarshal(r, v); err != nil {
			return false, fmt.Errorf("%s: %s is not a %s", key, r, kindOf(v))
		}
		return true, nil
	}
	var peftType string
	if _, err := get("peft_type", &peftType); err != nil {
		return LoRAConfig{}, err
	}
	if peftType != "LORA" {
		if peftType == "" {
			return LoRAConfig{}, errors.New(`peft_type is missing; a LoRA adapter has "peft_type": "LORA"`)
		}
		return LoRAConfig{}, fmt.Errorf("peft_type is %q; rltrain loads LoRA adapters (LORA) only", peftType)
	}
	var task string
	if _, err := get("task_type", &task); err != nil {
		return LoRAConfig{}, err
	}
	if task != "" && task != "CAUSAL_LM" {
		return LoRAConfig{}, fmt.Errorf("task_type is %q; rltrain loads causal language model adapters (CAUSAL_LM)", task)
	}
	if err := refuseUnsupported(raw); err != nil {
		return LoRAConfig{}, err
	}

	c := LoRAConfig{Alpha: 8}
	if ok, err := get("r", &c.R); err != nil {
		return c, err
	} else if !ok {
		return c, errors.New("r (the adapter's rank) is missing")
	}
	for _, f := range []struct {
		key string
		v   any
	}{{"lora_alpha", &c.Alpha}, {"lora_dropout", &c.Dropout}, {"use_rslora", &c.RSLoRA}, {"base_model_name_or_path", &c.BaseModel}} {
		if _, err := get(f.key, f.v); err != nil {
			return c, err
		}
	}
	var err error
	if c.Targets, err = parseTargets("target_modules", raw["target_modules"]); err != nil {
		return c, err
	}
	if c.Targets.IsZero() {
		c.Targets = Targets{List: peftDefaultTargets}
	}
	if c.Exclude, err = parseTargets("exclude_modules", raw["exclude_modules"]); err != nil {
		return c, err
	}
	if r, ok := raw["layers_to_transform"]; ok && string(r) != "null" {
		var one int
		if json.Unmarshal(r, &one) == nil {
			c.Layers = []int{one}
		} else if err := json.Unmarshal(r, &c.Layers); err != nil {
			return c, fmt.Errorf("layers_to_transform: %s is not a layer index or a list of them", r)
		}
	}
	if err := c.Check(); err != nil {
		return c, err
	}
	return c, nil
}

func kindOf(v any) string {
	switch v.(type) {
	case *string:
		return "string"
	case *bool:
		return "boolean"
	case *int:
		return "integer"
	}
	return "number"
}

// refuseUnsupported names the adapter_config.json options whose values
// rltrain cannot honour.
func refuseUnsupported(raw map[string]json.RawMessage) error {
	// Each option is fine at its default: absent, null, or the listed
	// JSON values.
	checks := []struct {
		key  string
		ok   []string
		what string
	}{
		{"use_dora", []string{"false"}, "DoRA (weight-decomposed LoRA) is not supported"},
		{"bias", []string{`"none"`}, "trained biases (bias \"all\" or \"lora_only\") are not supported; only bias \"none\""},
		{"lora_bias", []string{"false"}, "a bias on lora_B is not supported"},
		{"modules_to_save", []string{"[]"}, "modules_to_save (fully trained extra modules, such as a new head) is not supported"},
		{"fan_in_fan_out", []string{"false"}, "fan_in_fan_out (GPT-2 Conv1D weights) does not apply to Llama-family models"},
		{"rank_pattern", []string{"{}"}, "per-module ranks (rank_pattern) are not supported"},
		{"alpha_pattern", []string{"{}"}, "per-module alphas (alpha_pattern) are not supported"},
		{"layer_replication", []string{"[]"}, "layer_replication is not supported"},
		{"trainable_token_indices", []string{"[]", "{}"}, "trainable_token_indices (trained embedding rows) is not supported"},
		{"target_parameters", []string{"[]"}, "target_parameters (LoRA on raw parameters) is not supported"},
		{"use_qalora", []string{"false"}, "QALoRA is not supported"},
		{"layers_pattern", []string{`"layers"`, `["layers"]`}, `layers_pattern other than "layers" does not name a Llama-family model's layers`},
	}
	for _, ch := range checks {
		r, ok := raw[ch.key]
		if !ok {
			continue
		}
		v := compactJSON(r)
		if v == "null" {
			continue
		}
		fine := false
		for _, o := range ch.ok {
			fine = fine || v == o
		}
		if !fine {
			return fmt.Errorf("%s is %s: %s", ch.key, v, ch.what)
		}
	}
	return nil
}

func compactJSON(r json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, r) != nil {
		return string(r)
	}
	return b.String()
}

// parseTargets decodes target_modules or exclude_modules: a list of names
// or one string (a regular expression, or "all-linear").
func parseTargets(key string, r json.RawMessage) (Targets, error) {
	if r == nil || string(r) == "null" {
		return Targets{}, nil
	}
	var s string
	if json.Unmarshal(r, &s) == nil {
		if s == "" {
			return Targets{}, fmt.Errorf("%s is an empty string", key)
		}
		return Targets{Regex: s}, nil
	}
	var list []string
	if err := json.Unmarshal(r, &list); err != nil {
		return Targets{}, fmt.Errorf("%s: %s is neither a list of module names nor a string", key, r)
	}
	if list == nil {
		list = []string{}
	}
	for _, n := range list {
		if n == "" {
			return Targets{}, fmt.Errorf("%s holds an empty name", key)
		}
	}
	if key == "target_modules" && len(list) == 0 {
		return Targets{}, fmt.Errorf("%s is an empty list", key)
	}
	return Targets{List: list}, nil
}

// ConfigJSON renders the adapter's adapter_config.json as PEFT writes it
// (every field PEFT's LoraConfig reads, at its default unless set), so
// PeftModel.from_pretrained loads the directory. all-linear is written as
// the projections it resolved to, as PEFT does.
func (a *Adapter) ConfigJSON() ([]byte, error) {
	c := a.Cfg
	var targets any = c.Targets.List
	if c.Targets.List == nil {
		targets = c.Targets.Regex
		if c.Targets.Regex == "all-linear" {
			targets = a.TargetNames()
		}
	}
	var exclude any
	if !c.Exclude.IsZero() {
		exclude = c.Exclude.List
		if c.Exclude.List == nil {
			exclude = c.Exclude.Regex
		}
	}
	var base any
	if c.BaseModel != "" {
		base = c.BaseModel
	}
	var layers any
	if c.Layers != nil {
		layers = c.Layers
	}
	m := map[string]any{
		"alpha_pattern": map[string]any{}, "auto_mapping": nil, "base_model_name_or_path": base,
		"bias": "none", "exclude_modules": exclude, "fan_in_fan_out": false, "inference_mode": true,
		"init_lora_weights": true, "layer_replication": nil, "layers_pattern": nil, "layers_to_transform": layers,
		"loftq_config": map[string]any{}, "lora_alpha": c.Alpha, "lora_bias": false, "lora_dropout": c.Dropout,
		"megatron_config": nil, "megatron_core": "megatron.core", "modules_to_save": nil, "peft_type": "LORA",
		"r": c.R, "rank_pattern": map[string]any{}, "revision": nil, "target_modules": targets,
		"task_type": "CAUSAL_LM", "use_dora": false, "use_rslora": c.RSLoRA,
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(js, '\n'), nil
}

// Save writes adapter_config.json and adapter_model.safetensors (F32, the
// tensor names and shapes PEFT's save_pretrained writes) into dir,
// creating it; each file is written atomically.
func (a *Adapter) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	js, err := a.ConfigJSON()
	if err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, AdapterConfigFile), js); err != nil {
		return err
	}
	path := filepath.Join(dir, AdapterWeightsFile)
	if err := safetensors.WriteFile(path, a.HostTensors(false), map[string]string{"format": "pt"}, safetensors.F32); err != nil {
		return fmt.Errorf("save adapter: %w", err)
	}
	return nil
}

// HostTensors downloads the adapter's parameters (or, with grads, their
// gradients) as tensors named as in adapter_model.safetensors.
func (a *Adapter) HostTensors(grads bool) []*safetensors.Tensor {
	src := a.Params
	if grads {
		src = a.Grads
	}
	host := make([]float32, a.lay.size)
	a.be.Download(host, src)
	out := make([]*safetensors.Tensor, 0, len(a.lay.tensors))
	for _, t := range a.lay.tensors {
		out = append(out, &safetensors.Tensor{Name: t.Name, Shape: append([]int(nil), t.Shape...), Data: host[t.Offset : t.Offset+t.Size()]})
	}
	return out
}

// SetTensors copies an adapter's tensors (adapter_model.safetensors'
// names) into a, checking that each adapted projection's lora_A and lora_B
// are present with the shapes the base model implies ([r × in] and [out ×
// r]), that none is missing, and that nothing is left over. source names
// the origin in errors.
func (a *Adapter) SetTensors(source string, tensors map[string]*safetensors.Tensor) error {
	host := make([]float32, a.lay.size)
	p := safetensors.NewPicker(source, tensors)
	for _, t := range a.lay.tensors {
		if src := p.Take(t.Name, t.Shape...); src != nil {
			copy(host[t.Offset:t.Offset+t.Size()], src.Data)
		}
	}
	if err := p.Err(); err != nil {
		return fmt.Errorf("load adapter: %w%s", err, a.mismatchHint(tensors))
	}
	for _, t := range a.lay.tensors {
		for i, v := range host[t.Offset : t.Offset+t.Size()] {
			if v != v || math.IsInf(float64(v), 0) {
				return fmt.Errorf("load adapter: %s: tensor %q holds %v at index %d; an adapter must be finite", source, t.Name, v, i)
			}
		}
	}
	a.be.Upload(a.Params, host)
	return nil
}

// mismatchHint explains a failed load when the file's shapes say the
// adapter was trained on another base model (another hidden size, say) or
// with another rank than adapter_config.json's r.
func (a *Adapter) mismatchHint(tensors map[string]*safetensors.Tensor) string {
	var wrong []string
	for _, t := range a.lay.tensors {
		if src, ok := tensors[t.Name]; ok && len(src.Shape) == 2 && len(t.Shape) == 2 && (src.Shape[0] != t.Shape[0] || src.Shape[1] != t.Shape[1]) {
			wrong = append(wrong, t.Name)
		}
	}
	if len(wrong) == 0 {
		return ""
	}
	hint := "\n(the adapter's shapes do not fit this base model"
	if a.Cfg.BaseModel != "" {
		hint += fmt.Sprintf("; it was trained on %q", a.Cfg.BaseModel)
	}
	return hint + fmt.Sprintf(": r = %d, hidden %d, ffn %d)", a.Cfg.R, a.model.Hidden, a.model.FFN)
}

// LoadAdapter reads a PEFT LoRA adapter directory (adapter_config.json and
// adapter_model.safetensors) for the base model m, on m's backend. It does
// not attach it.
func LoadAdapter(dir string, m *Model) (*Adapter, error) {
	lc, err := ReadLoRAConfig(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, AdapterWeightsFile)
	if _, err := os.Stat(path); err != nil {
		if _, berr := os.Stat(filepath.Join(dir, "adapter_model.bin")); berr == nil {
			return nil, fmt.Errorf("lora adapter %s: only adapter_model.bin (a pickle) is present; rltrain reads safetensors (save with safe_serialization=True)", dir)
		}
		return nil, fmt.Errorf("lora adapter: %w", err)
	}
	a, err := NewAdapter(m.Cfg, lc, m.be)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, AdapterConfigFile), err)
	}
	tensors, _, err := safetensors.ReadFile(path)
	if err != nil {
		a.Free()
		return nil, fmt.Errorf("lora adapter: %w", err)
	}
	if err := a.SetTensors(path, tensors); err != nil {
		a.Free()
		return nil, err
	}
	return a, nil
}

// Describe is a one-line summary: rank, scale, adapted projections and
// trainable parameters.
func (a *Adapter) Describe() string {
	s := fmt.Sprintf("LoRA r=%d alpha=%g (scale %.4g%s), %s, %d parameters", a.Cfg.R, a.Cfg.Alpha, a.Cfg.Scale(),
		map[bool]string{true: ", rsLoRA"}[a.Cfg.RSLoRA], strings.Join(a.TargetNames(), " "), a.NumParams())
	if a.Cfg.Dropout > 0 {
		// Dropout changes only training; rltrain trains without it.
		s += fmt.Sprintf(" (its lora_dropout %g is not applied)", a.Cfg.Dropout)
	}
	return s
}
