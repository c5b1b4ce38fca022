package tokenizer

import (
	"strings"
	"testing"
)

func TestCharTokenizerRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tok, err := WriteCharTokenizer(dir, DefaultCharOptions())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok.VocabSize(), 3+1+96; got != want {
		t.Errorf("vocab size %d, want %d (3 special, <unk>, 96 characters)", got, want)
	}
	if tok.EOS() != 0 || tok.PAD() != 0 {
		t.Errorf("EOS %d PAD %d, want 0 0", tok.EOS(), tok.PAD())
	}
	if tok.ChatTemplate() != ChatML {
		t.Errorf("chat template %q, want chatml", tok.ChatTemplate())
	}
	tests := []struct {
		text string
		n    int // ids
	}{
		{"12+34=46", 8},
		{"<|im_start|>user\nWhat is 3*7?<|im_end|>\n", 1 + 5 + 12 + 1 + 1},
		{"", 0},
		{"  two  spaces  ", 15},
	}
	for _, tc := range tests {
		ids := tok.Encode(tc.text, true)
		if len(ids) != tc.n {
			t.Errorf("%q: %d ids, want %d", tc.text, len(ids), tc.n)
		}
		if got := tok.Decode(ids, false); got != tc.text {
			t.Errorf("%q: decodes to %q", tc.text, got)
		}
	}
	// Characters outside the alphabet become <unk>, one per character.
	ids := tok.Encode("aé€b", false)
	unk := tok.UNK()
	if len(ids) != 4 || ids[1] != unk || ids[2] != unk {
		t.Errorf("unknown characters: ids %v, want a <unk>(%d) per character", ids, unk)
	}
}

func TestCharTokenizerOptions(t *testing.T) {
	tok, err := NewCharTokenizer(CharOptions{Chars: "0123456789+=", Special: []string{"<bos>", "<eos>"}, BOS: "<bos>", EOS: "<eos>", AddBOS: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode("1+1=2", true)
	if ids[0] != tok.BOS() || len(ids) != 6 {
		t.Errorf("AddBOS: ids %v, want BOS then 5 characters", ids)
	}
	if got := tok.Decode(ids, true); got != "1+1=2" {
		t.Errorf("decode skipping special = %q", got)
	}
	bl, err := NewCharTokenizer(CharOptions{ByteLevel: true, Special: []string{"<|endoftext|>"}, EOS: "<|endoftext|>"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"héllo 🙂", "\xff\xfe bytes", "<|endoftext|>x"} {
		if got := bl.Decode(bl.Encode(s, false), false); got != s {
			t.Errorf("byte-level %q round-trips to %q", s, got)
		}
	}
	if n := len(bl.Encode("🙂", false)); n != 4 {
		t.Errorf("byte-level emoji: %d ids, want 4", n)
	}
	bad := []CharOptions{
		{Chars: "ab", Special: []string{"<x>", "<x>"}},
		{Chars: "ab", EOS: "<missing>"},
		{Chars: "ab", AddBOS: true},
		{Chars: "a\xffb"},
	}
	for _, o := range bad {
		if _, err := NewCharTokenizer(o); err == nil {
			t.Errorf("options %+v: want an error", o)
		}
	}
}

// TestCharTokenizerLoadsInReference checks that the written tokenizer.json
// is a valid file for other tools: the reference loads it and produces the
// same ids and decodes.
func TestCharTokenizerLoadsInReference(t *testing.T) {
	needNode(t)
	opts := []CharOptions{DefaultCharOptions(), {ByteLevel: true, Special: []string{"<|endoftext|>", "<|im_start|>"}, EOS: "<|endoftext|>"},
		{Chars: "0123456789+-*= ", Special: []string{"<s>", "</s>"}, BOS: "<s>", EOS: "</s>", AddBOS: true}}
	texts := []string{"12+34=46", "<|im_start|>user\nWhat is 3*7?<|im_end|>\n", "x", "Mixed CASE, digits 0123 and ünïcödé 🙂", strings.Repeat("9", 300), "a<s>b</s>"}
	for i, o := range opts {
		dir := t.TempDir()
		tok, err := WriteCharTokenizer(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("options %d: vocab %d", i, tok.VocabSize())
		checkAgainstReference(t, tok, dir, texts)
	}
}
