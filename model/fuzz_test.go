package model

import "testing"

// FuzzParseConfig: any config.json parses or fails without a panic, and
// one that parses has bounded sizes and writes a config.json that parses to
// the same architecture.
func FuzzParseConfig(f *testing.F) {
	for _, cfg := range testConfigs() {
		if js, err := cfg.JSON(); err == nil {
			f.Add(js)
		}
	}
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"vocab_size":1099511627776,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2}`))
	f.Add([]byte(`{"architectures":["Qwen2ForCausalLM"],"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,"eos_token_id":[1,2],"rope_scaling":{"type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if n := c.NumParams(); n <= 0 || n > maxParams {
			t.Fatalf("accepted a config of %d parameters", n)
		}
		js, err := c.JSON()
		if err != nil {
			t.Fatalf("accepted config does not print: %v", err)
		}
		back, err := ParseConfig(js)
		if err != nil {
			t.Fatalf("printed config does not parse: %v\n%s", err, js)
		}
		if back.NumParams() != c.NumParams() || back.Layers != c.Layers || back.Vocab != c.Vocab {
			t.Fatalf("round trip changed the architecture:\n%+v\n%+v", c, back)
		}
	})
}
