package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestVariantsMatchReference checks pre-tokenizer and decoder combinations
// that the three real files do not use, on variants of those files: GPT-2's
// ByteLevel regex with a prefix space, SmolLM's Digits + ByteLevel, a Split
// pattern no scanner knows (so regexp2 runs it), and SentencePiece's
// Metaspace instead of Llama 2's normalizer. The byte-level
// variants keep Qwen3's first 20000 merges (and the tokens they make) so
// the reference loads them quickly.
func TestVariantsMatchReference(t *testing.T) {
	needNode(t)
	byteLevel := func(prefix bool) map[string]any {
		return map[string]any{"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": true, "use_regex": true}
	}
	variants := map[string]struct {
		base    string
		mini    bool
		changes map[string]any
	}{
		"gpt2": {"qwen3", true, map[string]any{
			"normalizer": nil, "pre_tokenizer": byteLevel(true), "decoder": byteLevel(true)}},
		"smollm": {"qwen3", true, map[string]any{
			"normalizer": nil,
			"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
				map[string]any{"type": "Digits", "individual_digits": true}, byteLevel(false)}},
			"decoder": byteLevel(false)}},
		// An unknown pattern: regexp2 runs it.
		"regex": {"qwen3", true, map[string]any{
			"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
				map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`}, "behavior": "Isolated", "invert": false},
				map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}}}}},
		"metaspace": {"llama2", false, map[string]any{
			"normalizer":    nil,
			"pre_tokenizer": map[string]any{"type": "Metaspace", "replacement": "▁", "add_prefix_space": true, "prepend_scheme": "always", "split": false},
			"decoder": map[string]any{"type": "Sequence", "decoders": []any{
				map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Metaspace", "replacement": "▁", "add_prefix_space": true, "prepend_scheme": "always"}, map[string]any{"type": "Fuse"}}}}},
	}
	texts := corpus()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for name, v := range variants {
		dir := filepath.Join(t.TempDir(), name)
		if err := writeVariant(realTokenizerDir(v.base), dir, v.mini, v.changes); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tok, err := LoadDir(dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := runReference(dir, texts, nil, nil)
			mu.Lock()
			defer mu.Unlock()
			t.Run(name, func(t *testing.T) {
				if err != nil {
					t.Fatal(err)
				}
				compareResults(t, tok, texts, resp.Results)
			})
		}()
	}
	wg.Wait()
}

// writeVariant copies a real tokenizer directory to dir with top-level
// tokenizer.json fields replaced; mini keeps only the first 20000 merges
// and the tokens needed for them.
func writeVariant(src, dir string, mini bool, changes map[string]any) error {
	data, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
	if err != nil {
		return err
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	for k, v := range changes {
		f[k] = v
	}
	if mini {
		model := f["model"].(map[string]any)
		vocab := model["vocab"].(map[string]any)
		merges := model["merges"].([]any)[:20000]
		keep := map[string]any{}
		for b := 0; b < 256; b++ {
			s := string(byteToRune[b])
			keep[s] = vocab[s]
		}
		for _, m := range merges {
			p := m.([]any)
			s := p[0].(string) + p[1].(string)
			keep[s] = vocab[s]
		}
		model["vocab"], model["merges"] = keep, merges
	}
	out, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), out, 0o644); err != nil {
		return err
	}
	cfg, err := os.ReadFile(filepath.Join(src, "tokenizer_config.json"))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644)
}
