package model

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/model/safetensors"
)

func TestParseConfigErrors(t *testing.T) {
	good := `"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2`
	for _, tc := range []struct{ json, want string }{
		{`{` + good + `}`, ""},
		{`{`, "invalid JSON"},
		{`{"vocab_size":10}`, `"architectures" is missing`},
		{`{"architectures":["GPT2LMHeadModel"]}`, `architecture "GPT2LMHeadModel" is not supported`},
		{`{` + good + `,"num_key_value_heads":3}`, "multiple of num_key_value_heads"},
		{`{` + good + `,"hidden_act":"gelu"}`, `hidden_act "gelu"`},
		{`{` + good + `,"rope_scaling":{"type":"yarn","factor":2}}`, `rope_scaling type "yarn" is not supported`},
		{`{` + good + `,"eos_token_id":"x"}`, "eos_token_id"},
		{`{` + good + `,"eos_token_id":[5,12]}`, "outside the vocabulary"},
		{`{"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2}`, "intermediate_size must be positive"},
	} {
		_, err := ParseConfig([]byte(tc.json))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.json, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want it to contain %q", tc.json, err, tc.want)
		}
	}
}

func TestConfigJSONRoundTrip(t *testing.T) {
	for name, cfg := range testConfigs() {
		js, err := cfg.JSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConfig(js)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back.DType = cfg.DType
		if !slices.Equal(back.EOS, cfg.EOS) || back.RopeScaling != nil != (cfg.RopeScaling != nil) {
			t.Errorf("%s: special tokens or rope scaling lost", name)
		}
		back.EOS, cfg.EOS, back.RopeScaling, cfg.RopeScaling = nil, nil, nil, nil
		back.MaxPositions = cfg.MaxPositions
		if !reflect.DeepEqual(back, cfg) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, back, cfg)
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for name, cfg := range testConfigs() {
		m := randomModel(t, cfg, 3)
		dir := filepath.Join(t.TempDir(), name)
		if err := m.Save(dir, safetensors.F32); err != nil {
			t.Fatal(err)
		}
		back, err := Load(dir, cpu.New(1))
		if err != nil {
			t.Fatal(err)
		}
		a, b := m.HostTensors(false), back.HostTensors(false)
		for i := range a {
			if a[i].Name != b[i].Name || !slices.Equal(a[i].Data, b[i].Data) {
				t.Errorf("%s: tensor %s changed in the round trip", name, a[i].Name)
			}
		}
		// BF16 keeps 8 bits of mantissa: relative error ≤ 2^-8.
		if err := m.Save(dir, safetensors.BF16); err != nil {
			t.Fatal(err)
		}
		back, err = Load(dir, cpu.New(1))
		if err != nil {
			t.Fatal(err)
		}
		for i, bt := range back.HostTensors(false) {
			for j, v := range bt.Data {
				if w := a[i].Data[j]; abs32(v-w) > abs32(w)/256 {
					t.Fatalf("%s: bf16 %s[%d] = %g, want ≈ %g", name, bt.Name, j, v, w)
				}
			}
		}
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// TestLoadErrors checks that checkpoints disagreeing with their config give
// errors naming the directory and tensor.
func TestLoadErrors(t *testing.T) {
	cfg := testConfigs()["llama"]
	m := randomModel(t, cfg, 3)
	tensors := m.HostTensors(false)
	write := func(t *testing.T, mutate func([]*safetensors.Tensor) []*safetensors.Tensor, cfgMutate func(*Config)) string {
		dir := t.TempDir()
		c := cfg
		if cfgMutate != nil {
			cfgMutate(&c)
		}
		js, _ := c.JSON()
		os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644)
		ts := mutate(slices.Clone(tensors))
		if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil, safetensors.F32); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, tc := range []struct {
		name   string
		mutate func([]*safetensors.Tensor) []*safetensors.Tensor
		cfg    func(*Config)
		want   []string
	}{
		{"missing tensor", func(ts []*safetensors.Tensor) []*safetensors.Tensor { return ts[1:] }, nil,
			[]string{"model.embed_tokens.weight", "missing"}},
		{"extra tensor", func(ts []*safetensors.Tensor) []*safetensors.Tensor {
			return append(ts, &safetensors.Tensor{Name: "model.extra.weight", Shape: []int{2}, Data: []float32{1, 2}})
		}, nil, []string{"model.extra.weight"}},
		{"config disagrees", func(ts []*safetensors.Tensor) []*safetensors.Tensor { return ts }, func(c *Config) { c.FFN = 100 },
			[]string{"mlp.gate_proj.weight", "config wants [100 64]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := write(t, tc.mutate, tc.cfg)
			_, err := Load(dir, cpu.New(1))
			if err == nil {
				t.Fatal("loaded a bad checkpoint")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := Load(t.TempDir(), cpu.New(1)); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("empty directory: %v", err)
	}
	// A truncated weights file.
	dir := write(t, func(ts []*safetensors.Tensor) []*safetensors.Tensor { return ts }, nil)
	p := filepath.Join(dir, "model.safetensors")
	st, _ := os.Stat(p)
	os.Truncate(p, st.Size()-100)
	if _, err := Load(dir, cpu.New(1)); err == nil || !strings.Contains(err.Error(), "model.safetensors") {
		t.Errorf("truncated file: %v", err)
	}
}

func TestBatchValidation(t *testing.T) {
	m := randomModel(t, testConfigs()["llama"], 1)
	ws := m.NewWorkspace()
	for _, b := range []Batch{
		{IDs: []int32{1, 2, 3}, B: 1, T: 4},
		{IDs: []int32{1, 2, 3, 4}, B: 1, T: 4, Lens: []int{5}},
		{IDs: []int32{1, 2, 300, 4}, B: 1, T: 4},
		{IDs: []int32{1, 2, 3, 4}, B: 2, T: 2, Lens: []int{1}},
	} {
		if _, err := m.Forward(ws, b); err == nil {
			t.Errorf("batch %+v accepted", b)
		}
	}
}

// TestPaddingInvariance: a sequence scores the same alone and inside a
// padded batch next to a longer one.
func TestPaddingInvariance(t *testing.T) {
	m := randomModel(t, testConfigs()["qwen3"], 4)
	seq := []int32{5, 9, 33, 2, 71}
	alone := Batch{IDs: seq, B: 1, T: 5}
	ws := m.NewWorkspace()
	m.Forward(ws, alone)
	a := logits(m, ws)
	padded := Batch{IDs: append(append([]int32{}, 1, 2, 3, 4, 5, 6, 7, 8), append(seq, 0, 0, 0)...), B: 2, T: 8, Lens: []int{8, 5}}
	m.Forward(ws, padded)
	b := logits(m, ws)
	V := m.Cfg.Vocab
	if e := maxRel(b[8*V:13*V], a); e > 1e-6 {
		t.Errorf("padding changed the logits: relative error %.3g", e)
	}
}
