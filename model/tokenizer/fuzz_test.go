package tokenizer

import (
	"encoding/json"
	"math/rand"
	"testing"
	"unicode/utf8"
)

// byteLevelFixture builds a small byte-level BPE (all 256 bytes plus a few
// merges) with the given pre-tokenizer, quick enough to load in every fuzz
// worker.
func byteLevelFixture(t testing.TB, pre any) *Tokenizer {
	t.Helper()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	var merges [][]string
	for _, m := range [][2]string{{" ", "t"}, {"h", "e"}, {" t", "he"}, {"a", "a"}, {"aa", "aa"}, {"\xc3", "\xa9"}, {"1", "2"}, {"\n", "\n"}, {"'", "s"}} {
		a, b := byteLevelEncode(m[0]), byteLevelEncode(m[1])
		vocab[a+b] = len(vocab)
		merges = append(merges, []string{a, b})
	}
	f := map[string]any{
		"added_tokens":  []any{map[string]any{"id": 1000, "content": "<|endoftext|>", "special": true}},
		"pre_tokenizer": pre,
		"decoder":       map[string]any{"type": "ByteLevel"},
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": merges},
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FromJSON(data, []byte(`{"clean_up_tokenization_spaces": false}`))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func fuzzFixtures(t testing.TB) []*Tokenizer {
	split := func(p string) any {
		return map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": p}, "behavior": "Isolated"},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
		}}
	}
	bl, err := NewCharTokenizer(CharOptions{ByteLevel: true, Special: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	return []*Tokenizer{
		bl,
		byteLevelFixture(t, split(patternLlama3)),
		byteLevelFixture(t, split(patternQwen2)),
		byteLevelFixture(t, map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}),
	}
}

// FuzzEncodeDecode: any byte string encodes without panicking and
// byte-level decode(encode(s)) gives s back byte for byte, for the
// pre-tokenizer scanners of GPT-2, Llama 3 and Qwen2; the char-level
// tokenizer maps each character to one id.
func FuzzEncodeDecode(f *testing.F) {
	for _, s := range baseCorpus {
		f.Add(s)
	}
	toks := fuzzFixtures(f)
	char, err := NewCharTokenizer(DefaultCharOptions())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i, tok := range toks {
			for _, special := range []bool{false, true} {
				ids := tok.Encode(s, special)
				if got := tok.Decode(ids, false); got != s {
					t.Fatalf("tokenizer %d: %q -> %v -> %q", i, s, ids, got)
				}
			}
		}
		ids := char.Encode(s, true)
		if utf8.ValidString(s) {
			if got := char.Decode(ids, false); utf8.RuneCountInString(got) != len(ids)+specialExtraRunes(char, ids) {
				t.Fatalf("char-level: %d ids decode to %q", len(ids), got)
			}
		}
	})
}

// specialExtraRunes is how many more runes the ids' special tokens decode
// to than one per id.
func specialExtraRunes(tok *Tokenizer, ids []int) int {
	n := 0
	for _, id := range ids {
		if tok.IsSpecial(id) {
			n += utf8.RuneCountInString(tok.Token(id)) - 1
		}
	}
	return n
}

// TestRandomBytesRealTokenizers runs random byte strings (biased towards
// whitespace, apostrophes, digits, markers and broken UTF-8) through the
// real tokenizers: Llama 3 (byte-level, no normalizer) must round-trip
// exactly; Qwen3 and Llama 2 must not panic.
func TestRandomBytesRealTokenizers(t *testing.T) {
	var exact, others []*Tokenizer
	for _, name := range realTokenizers {
		tok, err := loadRealNoNode(name)
		if err != nil {
			t.Skipf("%s not installed (make setup): %v", name, err)
		}
		if name == "llama3" {
			// A private copy: the cached one keeps its clean-up.
			c := *tok
			c.CleanUpSpaces = false
			exact = append(exact, &c)
		} else {
			others = append(others, tok)
		}
	}
	rng := rand.New(rand.NewSource(3))
	const alphabet = " \t\n\r's1<|>éa\u00a0😀"
	for it := 0; it < 20000; it++ {
		b := make([]byte, rng.Intn(16))
		for i := range b {
			switch rng.Intn(3) {
			case 0:
				b[i] = byte(rng.Intn(256))
			case 1:
				b[i] = alphabet[rng.Intn(len(alphabet))]
			default:
				b[i] = byte(0x80 + rng.Intn(0x80))
			}
		}
		s := string(b)
		for _, tok := range others {
			tok.Decode(tok.Encode(s, true), true)
		}
		for _, tok := range exact {
			if got := tok.Decode(tok.Encode(s, true), false); got != s {
				t.Fatalf("llama3 round trip: %q -> %q", s, got)
			}
		}
	}
}

// FuzzFromJSON: any tokenizer.json and tokenizer_config.json load or fail
// without a panic (and without allocating by an absurd id), and a loaded
// tokenizer encodes and decodes text without one.
func FuzzFromJSON(f *testing.F) {
	tj, cj, err := CharTokenizerJSON(DefaultCharOptions())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tj, cj)
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]},"added_tokens":[{"id":3,"content":"<s>","special":true}]}`), []byte(`{"bos_token":"<s>"}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"<0x41>":0,"▁":1},"byte_fallback":true},"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},"decoder":{"type":"Sequence","decoders":[{"type":"ByteFallback"},{"type":"Fuse"}]}}`), []byte(nil))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":1099511627776}}}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, tokJSON, cfgJSON []byte) {
		tok, err := FromJSON(tokJSON, cfgJSON)
		if err != nil {
			return
		}
		if n := tok.VocabSize(); n < 1 || n > MaxTokenID+1 {
			t.Fatalf("vocabulary of %d", n)
		}
		for _, s := range []string{"", "hello world", "<s> ab\n\t12 é😀", "\xff\xfe"} {
			for _, special := range []bool{false, true} {
				ids := tok.Encode(s, special)
				for _, id := range ids {
					if id < 0 || id >= tok.VocabSize() {
						t.Fatalf("encode %q: id %d outside the vocabulary of %d", s, id, tok.VocabSize())
					}
				}
				tok.Decode(ids, false)
				tok.Decode(ids, true)
			}
		}
	})
}
