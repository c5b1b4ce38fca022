package tokenizer

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidUTF8(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"\xff", "\uFFFD"},
		{"a\xe2\x82b", "a\uFFFDb"},             // truncated 3-byte sequence: one replacement
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate: each byte
		{"\xf0\x9f\x98", "\uFFFD"},             // truncated emoji
		{"\xf0\x9f\x98\x80", "😀"},
		{"\xc3(", "\uFFFD("},
		{"\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"}, // above U+10FFFF
		{"\xe0\x80\x80", "\uFFFD\uFFFD\uFFFD"},           // overlong
		{"\x80\x80", "\uFFFD\uFFFD"},
	}
	for _, tc := range tests {
		if got := ValidUTF8(tc.in); got != tc.want {
			t.Errorf("ValidUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestScannersMatchRegexp2 checks the hand-written scanners against the
// patterns themselves, run by regexp2 with JavaScript's \s, on the corpus.
func TestScannersMatchRegexp2(t *testing.T) {
	patterns := map[string]func(string, int) int{
		patternGPT2:   scanGPT2,
		patternQwen2:  scanGPT4(1),
		patternLlama3: scanGPT4(3),
	}
	for pattern, scan := range patterns {
		re, err := newRegexMatcher(pattern)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, s := range append(corpus(), mixedText(20000)) {
			if !utf8.ValidString(s) {
				continue
			}
			want := re.spans(s, nil)
			got := scannerSplit{scan: scan}.spans(s, nil)
			if len(got) != len(want) {
				t.Errorf("%.20s… on %q: %d pieces, regexp2 %d", pattern, clip(s), len(got), len(want))
				continue
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("%.20s… on %q: piece %d is %q, regexp2 %q", pattern, clip(s), i, s[got[i][0]:got[i][1]], s[want[i][0]:want[i][1]])
					break
				}
			}
			checked++
		}
		if checked < 1250 {
			t.Errorf("only %d strings checked", checked)
		}
	}
}

// tinyJSON builds a small tokenizer.json around a vocabulary and merges.
func tinyJSON(t *testing.T, vocab map[string]int, merges any, extra map[string]any) []byte {
	t.Helper()
	model := map[string]any{"type": "BPE", "vocab": vocab, "merges": merges}
	f := map[string]any{"added_tokens": []any{}, "model": model}
	for k, v := range extra {
		if k == "model" {
			for mk, mv := range v.(map[string]any) {
				model[mk] = mv
			}
			continue
		}
		f[k] = v
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMergeFormatsAndOrder(t *testing.T) {
	vocab := map[string]int{"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5, "a b": 6, " ": 7}
	// Lower rank wins; "bc" would win if ranks were ignored (it is listed
	// in a later entry), and ties go to the leftmost pair.
	for _, merges := range []any{
		[]string{"a b", "b c", "ab c"},
		[][]string{{"a", "b"}, {"b", "c"}, {"ab", "c"}},
	} {
		tok, err := FromJSON(tinyJSON(t, vocab, merges, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			in   string
			want []int
		}{
			{"abc", []int{5}},
			{"bc", []int{4}},
			{"abab", []int{3, 3}},
			{"cab", []int{2, 3}},
		}
		for _, tc := range tests {
			if got := tok.Encode(tc.in, false); !equalIDs(got, tc.want) {
				t.Errorf("merges %v: %q -> %v, want %v", merges, tc.in, got, tc.want)
			}
		}
	}
	// Pair format allows a space inside a token.
	tok, err := FromJSON(tinyJSON(t, vocab, [][]string{{"a", " "}, {"a ", "b"}}, nil), nil)
	if err == nil {
		got := tok.Encode("a b", false)
		t.Logf("pair merges with spaces: %v", got)
	}
}

func TestUnsupportedModelsFailClearly(t *testing.T) {
	for _, typ := range []string{"WordPiece", "Unigram", "Mystery"} {
		b := []byte(`{"added_tokens":[],"model":{"type":"` + typ + `","vocab":{}}}`)
		_, err := FromJSON(b, nil)
		if err == nil || !strings.Contains(err.Error(), typ) {
			t.Errorf("%s: err = %v, want one naming the type", typ, err)
		}
	}
	vocab := map[string]int{"a": 0}
	for name, extra := range map[string]map[string]any{
		"normalizer":    {"normalizer": map[string]any{"type": "Precompiled"}},
		"pre_tokenizer": {"pre_tokenizer": map[string]any{"type": "BertPreTokenizer"}},
		"decoder":       {"decoder": map[string]any{"type": "WordPiece"}},
		"dropout":       {"model": map[string]any{"dropout": 0.1}},
	} {
		if _, err := FromJSON(tinyJSON(t, vocab, []string{}, extra), nil); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestAddedTokenStrip(t *testing.T) {
	vocab := map[string]int{"a": 0, " ": 1, "b": 2}
	f := map[string]any{
		"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}},
		"added_tokens": []any{
			map[string]any{"id": 10, "content": "<L>", "lstrip": true, "special": true},
			map[string]any{"id": 11, "content": "<R>", "rstrip": true, "special": false},
			map[string]any{"id": 12, "content": "<LL>", "special": true},
		},
		"decoder": map[string]any{"type": "Fuse"},
	}
	b, _ := json.Marshal(f)
	tok, err := FromJSON(b, []byte(`{"clean_up_tokenization_spaces": false}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   string
		want []int
	}{
		{"a  <L> b", []int{0, 10, 1, 2}},
		{"a <R>  b", []int{0, 1, 11, 2}},
		{"<LL>a", []int{12, 0}}, // longest match wins over <L>... prefix
		{"<L", []int{}},         // '<' and 'L' are not in the vocabulary and there is no unk
	}
	for _, tc := range tests {
		if got := tok.Encode(tc.in, false); !equalIDs(got, tc.want) {
			t.Errorf("%q -> %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := tok.Decode([]int{0, 10, 11, 12, 2}, true); got != "a<R>b" {
		t.Errorf("decode skipping special = %q, want %q", got, "a<R>b")
	}
	if !tok.IsSpecial(10) || tok.IsSpecial(11) {
		t.Error("IsSpecial wrong")
	}
}

func TestMetaspaceAndNormalizers(t *testing.T) {
	vocab := map[string]int{"▁": 0, "h": 1, "i": 2, "▁h": 3, "▁hi": 4, "<unk>": 5, "<0x21>": 6, "A": 7}
	extra := map[string]any{
		"normalizer":    map[string]any{"type": "Sequence", "normalizers": []any{map[string]any{"type": "NFKC"}, map[string]any{"type": "Lowercase"}}},
		"pre_tokenizer": map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
		"decoder":       map[string]any{"type": "Sequence", "decoders": []any{map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"}, map[string]any{"type": "Fuse"}}},
		"model":         map[string]any{"unk_token": "<unk>", "byte_fallback": true},
	}
	tok, err := FromJSON(tinyJSON(t, vocab, []string{"▁ h", "▁h i"}, extra), []byte(`{"clean_up_tokenization_spaces": false}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   string
		want []int
	}{
		{"hi", []int{4}},
		{"ＨＩ hi", []int{4, 4}}, // NFKC folds full-width, then lower case
		{"hi!", []int{4, 6}},   // byte fallback
		{"hi?", []int{4, 5}},   // no byte token: unk
	}
	for _, tc := range tests {
		if got := tok.Encode(tc.in, false); !equalIDs(got, tc.want) {
			t.Errorf("%q -> %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := tok.Decode([]int{4, 4, 6}, false); got != "hi hi!" {
		t.Errorf("decode = %q, want %q", got, "hi hi!")
	}
}

func TestSplitBehaviors(t *testing.T) {
	lit := "-"
	tests := []struct {
		behavior string
		invert   bool
		want     []string
	}{
		{"Isolated", false, []string{"a", "-", "b", "-", "-", "c"}},
		{"Removed", false, []string{"a", "b", "c"}},
		{"MergedWithPrevious", false, []string{"a-", "b-", "-", "c"}},
		{"MergedWithNext", false, []string{"a", "-b", "-", "-c"}},
		{"Isolated", true, []string{"-", "-", "-"}},
		{"Contiguous", false, []string{"a", "-", "b", "--", "c"}},
	}
	for _, tc := range tests {
		p, _, err := buildPreTokenizer(&componentJSON{Type: "Split", Pattern: &patternJSON{String: &lit}, Behavior: tc.behavior, Invert: tc.invert})
		if err != nil {
			t.Fatal(err)
		}
		got := p.split("a-b--c", true, nil, &scratch{})
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s invert=%v: %q, want %q", tc.behavior, tc.invert, got, tc.want)
		}
	}
}

func TestAddedTokenSingleWordAndNormalized(t *testing.T) {
	vocab := map[string]int{"a": 0, "b": 1, "c": 2, " ": 3, ".": 4, "<": 5, ">": 6, "x": 7}
	f := map[string]any{
		"model":      map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}},
		"normalizer": map[string]any{"type": "Lowercase"},
		"added_tokens": []any{
			map[string]any{"id": 10, "content": "ab", "single_word": true},
			map[string]any{"id": 11, "content": "<X>", "normalized": true},
			map[string]any{"id": 12, "content": "<C>", "normalized": false, "special": true},
		},
	}
	b, _ := json.Marshal(f)
	tok, err := FromJSON(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   string
		want []int
	}{
		{"ab cab ab.", []int{10, 3, 2, 0, 1, 3, 10, 4}}, // not inside "cab"
		{"<X>a", []int{11, 0}},                          // matched after lower-casing: "<x>"
		{"<x>a", []int{11, 0}},
		{"<C>a<c>", []int{12, 0, 5, 2, 6}}, // raw match only
		{"ab<X>ab", []int{10, 11, 10}},     // punctuation does not glue
		{"xab", []int{7, 0, 1}},
	}
	for _, tc := range tests {
		if got := tok.Encode(tc.in, false); !equalIDs(got, tc.want) {
			t.Errorf("%q -> %v, want %v", tc.in, got, tc.want)
		}
	}
}

// A byte-level model whose decoder chain does more than ByteLevel runs the
// whole chain.
func TestByteLevelDecoderChain(t *testing.T) {
	pre := map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}
	tok := byteLevelFixture(t, pre)
	if got := tok.Decode(tok.Encode(" the cat", false), false); got != " the cat" {
		t.Fatalf("plain ByteLevel decoder: %q", got)
	}
	tj, _ := json.Marshal(map[string]any{
		"added_tokens":  []any{},
		"pre_tokenizer": pre,
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "ByteLevel"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{"type": "BPE", "vocab": byteLevelVocab(), "merges": []string{}},
	})
	tok2, err := FromJSON(tj, []byte(`{"clean_up_tokenization_spaces": false}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok2.Decode(tok2.Encode(" the cat", false), false); got != "the cat" {
		t.Errorf("ByteLevel then Strip: %q, want %q", got, "the cat")
	}
}

func byteLevelVocab() map[string]int {
	v := map[string]int{}
	for b := 0; b < 256; b++ {
		v[string(byteToRune[b])] = b
	}
	return v
}

func TestConfigVariants(t *testing.T) {
	tj := tinyJSON(t, map[string]int{"a": 0, "<s>": 1, "</s>": 2}, []string{}, map[string]any{
		"added_tokens": []any{
			map[string]any{"id": 1, "content": "<s>", "special": true},
			map[string]any{"id": 2, "content": "</s>", "special": true},
		},
	})
	tests := []struct {
		cfg      string
		bos, eos int
		pad      int
		chat     ChatTemplate
		wantErr  bool
	}{
		{`{}`, -1, -1, -1, "", false},
		{`{"bos_token": "<s>", "eos_token": {"__type": "AddedToken", "content": "</s>"}}`, 1, 2, 2, "", false},
		{`{"eos_token": "</s>", "pad_token": "<s>", "chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "<|im_start|>"}]}`, -1, 2, 1, ChatML, false},
		{`{"eos_token": "<missing>"}`, -1, -1, -1, "", false},
		{`{"chat_template": 5}`, 0, 0, 0, "", true},
		{`{"eos_token": 5}`, 0, 0, 0, "", true},
	}
	for _, tc := range tests {
		tok, err := FromJSON(tj, []byte(tc.cfg))
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: want an error", tc.cfg)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.cfg, err)
			continue
		}
		if tok.BOS() != tc.bos || tok.EOS() != tc.eos || tok.PAD() != tc.pad || tok.ChatTemplate() != tc.chat {
			t.Errorf("%s: bos %d eos %d pad %d chat %q; want %d %d %d %q", tc.cfg, tok.BOS(), tok.EOS(), tok.PAD(), tok.ChatTemplate(), tc.bos, tc.eos, tc.pad, tc.chat)
		}
	}
}

func TestJSWhitespace(t *testing.T) {
	tests := []struct{ in, want string }{
		{`\s+`, `[` + jsSpaces + `]+`},
		{`[^\s\p{L}]`, `[^` + jsSpaces + `\p{L}]`},
		{`\S|\\s`, `[^` + jsSpaces + `]|\\s`},
		{`[]\s]`, `[]` + jsSpaces + `]`},
		{`a\.b`, `a\.b`},
	}
	for _, tc := range tests {
		if got := jsWhitespace(tc.in); got != tc.want {
			t.Errorf("jsWhitespace(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// EncodeBatch runs Encode in parallel with a shared piece cache; its output
// must not depend on the interleaving.
func TestEncodeBatchMatchesEncode(t *testing.T) {
	toks := fuzzFixtures(t)
	if q, err := loadRealNoNode("qwen3"); err == nil {
		toks = append(toks, q)
	}
	texts := corpus()
	for i, tok := range toks {
		for round := 0; round < 2; round++ { // the second round hits the cache
			got := tok.EncodeBatch(texts, true)
			for k, s := range texts {
				if want := tok.Encode(s, true); !equalIDs(got[k], want) {
					t.Fatalf("tokenizer %d round %d text %q: batch %v, single %v", i, round, s, got[k], want)
				}
			}
		}
	}
}
