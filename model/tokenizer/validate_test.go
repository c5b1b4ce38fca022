package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestVocabularyValidation: what the Hugging Face library rejects (or a
// file cannot mean) is an error naming the file and the entry, found
// before any table sized by an id is allocated.
func TestVocabularyValidation(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{
			"added_tokens": []any{map[string]any{"id": 5, "content": "<eos>", "special": true}},
			"model": map[string]any{"type": "BPE",
				"vocab":  map[string]any{"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4, "<eos>": 5},
				"merges": []any{"a b", "ab c"}},
		}
	}
	vocab := func(f map[string]any) map[string]any { return f["model"].(map[string]any)["vocab"].(map[string]any) }
	for _, tc := range []struct {
		name   string
		mutate func(map[string]any)
		want   string
	}{
		{"valid", func(map[string]any) {}, ""},
		{"id 2^40", func(f map[string]any) { vocab(f)["c"] = 1 << 40 }, `model.vocab: token "c" has id 1099511627776`},
		{"negative id", func(f map[string]any) { vocab(f)["c"] = -1 }, `model.vocab: token "c" has id -1`},
		{"duplicate id", func(f map[string]any) { vocab(f)["c"] = 1 }, `model.vocab: tokens "b" and "c" have the same id 1`},
		{"empty vocabulary", func(f map[string]any) {
			f["model"].(map[string]any)["vocab"] = map[string]any{}
			f["model"].(map[string]any)["merges"] = []any{}
		}, "the BPE vocabulary is empty"},
		{"merge of an unknown token", func(f map[string]any) {
			f["model"].(map[string]any)["merges"] = []any{"a b", "ab x"}
		}, `model.merges[1] ["ab" "x"]: token "x" is not in the vocabulary`},
		{"merge result unknown", func(f map[string]any) {
			f["model"].(map[string]any)["merges"] = []any{"b a"}
		}, `model.merges[0] ["b" "a"]: token "ba" is not in the vocabulary`},
		{"added token id 2^40", func(f map[string]any) {
			f["added_tokens"] = []any{map[string]any{"id": 1 << 40, "content": "<x>", "special": true}}
		}, `added_tokens: token "<x>" has id 1099511627776`},
		{"added token id past the bound", func(f map[string]any) {
			f["added_tokens"] = []any{map[string]any{"id": MaxTokenID + 1, "content": "<x>", "special": true}}
		}, `added_tokens: token "<x>" has id 4194304`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := base()
			tc.mutate(f)
			b, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "tokenizer.json")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			tok, err := Load(path)
			runtime.ReadMemStats(&after)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if ids := tok.Encode("abc", false); len(ids) != 1 || ids[0] != 4 {
					t.Errorf("encode abc: %v, want [4]", ids)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want it to name %s and contain %q", err, path, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("allocated %d MiB before failing", alloc>>20)
			}
		})
	}
}
