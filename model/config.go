// Package model is the Llama-family decoder-only transformer (Llama 2/3,
// Qwen2/2.5/3, SmolLM, Mistral): Hugging Face config.json and safetensors
// I/O, a batched forward pass, a hand-written backward pass and KV-cached
// decoding, all written against kernels.Backend.
package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Config is the architecture of a model, read from or written to a Hugging
// Face config.json.
type Config struct {
	// Architecture is the Hugging Face class name, e.g. LlamaForCausalLM.
	Architecture string
	ModelType    string
	Vocab        int
	Hidden       int
	Layers       int
	Heads        int
	KVHeads      int
	HeadDim      int
	FFN          int
	RMSEps       float64
	RopeTheta    float64
	RopeScaling  *RopeScaling
	MaxPositions int
	// TieEmbeddings uses the embedding matrix as the LM head.
	TieEmbeddings bool
	// AttnBias adds biases to the q, k and v projections (Qwen2).
	AttnBias bool
	// QKNorm applies a per-head RMSNorm to queries and keys before RoPE
	// (Qwen3).
	QKNorm bool
	BOS    int   // -1 when absent
	EOS    []int // may be empty
	// DType is the torch_dtype recorded in config.json ("float32",
	// "bfloat16", ...); weights are always computed in float32.
	DType string
}

// RopeScaling holds the supported rope_scaling variants.
type RopeScaling struct {
	Type           string  // "llama3" or "linear"
	Factor         float64 // both
	LowFreqFactor  float64 // llama3
	HighFreqFactor float64 // llama3
	OriginalMaxPos int     // llama3
}

// architectures maps Hugging Face class names to their model_type and the
// structural flags that class implies.
var architectures = map[string]struct {
	modelType string
	bias      bool // q/k/v bias always present
	qkNorm    bool
}{
	"LlamaForCausalLM":   {"llama", false, false},
	"MistralForCausalLM": {"mistral", false, false},
	"Qwen2ForCausalLM":   {"qwen2", true, false},
	"Qwen3ForCausalLM":   {"qwen3", false, true},
}

// hfConfig is the subset of config.json rltrain reads.
type hfConfig struct {
	Architectures     []string        `json:"architectures"`
	ModelType         string          `json:"model_type"`
	VocabSize         int             `json:"vocab_size"`
	HiddenSize        int             `json:"hidden_size"`
	IntermediateSize  int             `json:"intermediate_size"`
	NumHiddenLayers   int             `json:"num_hidden_layers"`
	NumAttentionHeads int             `json:"num_attention_heads"`
	NumKeyValueHeads  int             `json:"num_key_value_heads"`
	HeadDim           int             `json:"head_dim"`
	RMSNormEps        float64         `json:"rms_norm_eps"`
	RopeTheta         float64         `json:"rope_theta"`
	RopeScaling       json.RawMessage `json:"rope_scaling"`
	MaxPositions      int             `json:"max_position_embeddings"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	AttentionBias     bool            `json:"attention_bias"`
	MLPBias           bool            `json:"mlp_bias"`
	BOSTokenID        json.RawMessage `json:"bos_token_id"`
	EOSTokenID        json.RawMessage `json:"eos_token_id"`
	TorchDType        string          `json:"torch_dtype"`
	HiddenAct         string          `json:"hidden_act"`
	UseSlidingWindow  bool            `json:"use_sliding_window"`
}

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("load model config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes a Hugging Face config.json and checks it.
func ParseConfig(b []byte) (Config, error) {
	var h hfConfig
	if err := json.Unmarshal(b, &h); err != nil {
		return Config{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if len(h.Architectures) == 0 {
		return Config{}, errors.New(`"architectures" is missing`)
	}
	arch, ok := architectures[h.Architectures[0]]
	if !ok {
		return Config{}, fmt.Errorf("architecture %q is not supported (supported: %s)", h.Architectures[0], supportedArchitectures())
	}
	if h.HiddenAct != "" && h.HiddenAct != "silu" {
		return Config{}, fmt.Errorf("hidden_act %q is not supported (only silu)", h.HiddenAct)
	}
	if h.MLPBias {
		return Config{}, errors.New("mlp_bias is not supported")
	}
	if h.UseSlidingWindow {
		return Config{}, errors.New("use_sliding_window is not supported")
	}
	c := Config{
		Architecture: h.Architectures[0],
		ModelType:    arch.modelType,
		Vocab:        h.VocabSize,
		Hidden:       h.HiddenSize,
		Layers:       h.NumHiddenLayers,
		Heads:        h.NumAttentionHeads,
		KVHeads:      h.NumKeyValueHeads,
		HeadDim:      h.HeadDim,
		FFN:          h.IntermediateSize,
		RMSEps:       h.RMSNormEps,
		RopeTheta:    h.RopeTheta,
		MaxPositions: h.MaxPositions,
		AttnBias:     arch.bias || h.AttentionBias,
		QKNorm:       arch.qkNorm,
		DType:        h.TorchDType,
		BOS:          -1,
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.RMSEps == 0 {
		c.RMSEps = 1e-6
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	// LlamaConfig, MistralConfig, Qwen2Config and Qwen3Config all default
	// tie_word_embeddings to false.
	c.TieEmbeddings = h.TieWordEmbeddings != nil && *h.TieWordEmbeddings
	var err error
	if c.RopeScaling, err = parseRopeScaling(h.RopeScaling); err != nil {
		return Config{}, err
	}
	if ids, err := parseIDs(h.BOSTokenID); err != nil {
		return Config{}, fmt.Errorf("bos_token_id: %w", err)
	} else if len(ids) > 0 {
		c.BOS = ids[0]
	}
	if c.EOS, err = parseIDs(h.EOSTokenID); err != nil {
		return Config{}, fmt.Errorf("eos_token_id: %w", err)
	}
	return c, c.Validate()
}

func supportedArchitectures() string {
	names := make([]string, 0, len(architectures))
	for n := range architectures {
		names = append(names, n)
	}
	sortStrings(names)
	return strings.Join(names, ", ")
}

func parseRopeScaling(raw json.RawMessage) (*RopeScaling, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var r struct {
		Type           string  `json:"type"`
		RopeType       string  `json:"rope_type"`
		Factor         float64 `json:"factor"`
		LowFreqFactor  float64 `json:"low_freq_factor"`
		HighFreqFactor float64 `json:"high_freq_factor"`
		OriginalMaxPos int     `json:"original_max_position_embeddings"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("rope_scaling: %w", err)
	}
	t := r.RopeType
	if t == "" {
		t = r.Type
	}
	switch t {
	case "default", "":
		return nil, nil
	case "linear":
		if r.Factor <= 0 {
			return nil, errors.New("rope_scaling: linear needs factor > 0")
		}
		return &RopeScaling{Type: t, Factor: r.Factor}, nil
	case "llama3":
		if r.Factor <= 0 || r.LowFreqFactor <= 0 || r.HighFreqFactor <= r.LowFreqFactor || r.OriginalMaxPos <= 0 {
			return nil, errors.New("rope_scaling: llama3 needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0")
		}
		return &RopeScaling{Type: t, Factor: r.Factor, LowFreqFactor: r.LowFreqFactor, HighFreqFactor: r.HighFreqFactor, OriginalMaxPos: r.OriginalMaxPos}, nil
	default:
		return nil, fmt.Errorf("rope_scaling type %q is not supported (supported: linear, llama3)", t)
	}
}

// parseIDs accepts null, an integer or a list of integers.
func parseIDs(raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("want an integer or a list of integers, got %s", raw)
	}
	return many, nil
}

// Upper bounds on a config's sizes, far above any model rltrain can train
// (Llama 3 405B: 126 layers, hidden 16384, FFN 53248, 128 heads, vocab
// 128256) and low enough that the sizes cannot overflow or ask for absurd
// memory before the weights are looked at.
const (
	maxVocab     = 1 << 22
	maxHidden    = 1 << 16
	maxLayers    = 1 << 10
	maxHeads     = 1 << 10
	maxHeadDim   = 1 << 10
	maxFFN       = 1 << 20
	maxPositions = 1 << 24
	// maxParams bounds the parameter count (64 GiB of float32 weights,
	// before gradients and optimizer moments).
	maxParams = 1 << 34
)

// Validate checks that the dimensions are consistent and within bounds.
func (c Config) Validate() error {
	pos := map[string]int{"vocab_size": c.Vocab, "hidden_size": c.Hidden, "num_hidden_layers": c.Layers,
		"num_attention_heads": c.Heads, "num_key_value_heads": c.KVHeads, "head_dim": c.HeadDim, "intermediate_size": c.FFN}
	limit := map[string]int{"vocab_size": maxVocab, "hidden_size": maxHidden, "num_hidden_layers": maxLayers,
		"num_attention_heads": maxHeads, "num_key_value_heads": maxHeads, "head_dim": maxHeadDim, "intermediate_size": maxFFN}
	for _, k := range []string{"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size"} {
		if pos[k] <= 0 {
			return fmt.Errorf("%s must be positive, got %d", k, pos[k])
		}
		if pos[k] > limit[k] {
			return fmt.Errorf("%s %d is larger than rltrain supports (%d)", k, pos[k], limit[k])
		}
	}
	if c.MaxPositions > maxPositions {
		return fmt.Errorf("max_position_embeddings %d is larger than rltrain supports (%d)", c.MaxPositions, maxPositions)
	}
	// Every product below is at most 2^16·2^20·2^10 per tensor kind, far
	// from overflowing an int64.
	if n := c.NumParams(); n > maxParams {
		return fmt.Errorf("the model would have %d parameters (%.0f GiB of float32), more than rltrain supports (%d)", n, float64(n)*4/(1<<30), maxParams)
	}
	if c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)", c.Heads, c.KVHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("head_dim must be even for rotary embeddings, got %d", c.HeadDim)
	}
	if c.RMSEps <= 0 || math.IsNaN(c.RMSEps) {
		return fmt.Errorf("rms_norm_eps must be positive, got %g", c.RMSEps)
	}
	for _, id := range append([]int{c.BOS}, c.EOS...) {
		if id >= c.Vocab {
			return fmt.Errorf("special token id %d is outside the vocabulary of %d", id, c.Vocab)
		}
	}
	return nil
}

// JSON renders the config as a Hugging Face config.json that transformers
// loads.
func (c Config) JSON() ([]byte, error) {
	m := map[string]any{
		"architectures":           []string{c.Architecture},
		"model_type":              c.ModelType,
		"vocab_size":              c.Vocab,
		"hidden_size":             c.Hidden,
		"intermediate_size":       c.FFN,
		"num_hidden_layers":       c.Layers,
		"num_attention_heads":     c.Heads,
		"num_key_value_heads":     c.KVHeads,
		"head_dim":                c.HeadDim,
		"rms_norm_eps":            c.RMSEps,
		"rope_theta":              c.RopeTheta,
		"max_position_embeddings": maxPositionsOrDefault(c.MaxPositions),
		"tie_word_embeddings":     c.TieEmbeddings,
		"attention_bias":          c.AttnBias,
		"hidden_act":              "silu",
		"torch_dtype":             orDefault(c.DType, "float32"),
	}
	if c.BOS >= 0 {
		m["bos_token_id"] = c.BOS
	}
	switch len(c.EOS) {
	case 0:
	case 1:
		m["eos_token_id"] = c.EOS[0]
	default:
		m["eos_token_id"] = c.EOS
	}
	if r := c.RopeScaling; r != nil {
		rs := map[string]any{"rope_type": r.Type, "type": r.Type, "factor": r.Factor}
		if r.Type == "llama3" {
			rs["low_freq_factor"] = r.LowFreqFactor
			rs["high_freq_factor"] = r.HighFreqFactor
			rs["original_max_position_embeddings"] = r.OriginalMaxPos
		}
		m["rope_scaling"] = rs
	}
	return json.MarshalIndent(m, "", "  ")
}

// maxPositionsOrDefault is LlamaConfig's default (2048) when the context
// length is unknown.
func maxPositionsOrDefault(n int) int {
	if n <= 0 {
		return 2048
	}
	return n
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// NumParams is the number of trainable parameters.
func (c Config) NumParams() int {
	n := 0
	for _, t := range c.tensorLayout() {
		n += t.Size()
	}
	return n
}
