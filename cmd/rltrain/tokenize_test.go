package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/model/tokenizer"
)

// writeCharTokenizer writes a character tokenizer of opts into dir.
func writeCharTokenizer(t *testing.T, dir string, opts tokenizer.CharOptions) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.WriteCharTokenizer(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenizeAndTextLogprobs(t *testing.T) {
	dir := t.TempDir()
	tok := writeCharTokenizer(t, dir, tokenizer.DefaultCharOptions())
	var out bytes.Buffer
	if err := runTokenize(&out, strings.NewReader(""), tokenizeFlags{tokenizer: dir, text: "12+34"}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, id := range tok.Encode("12+34", false) {
		want = append(want, itoaTest(id))
	}
	if got := strings.TrimSpace(out.String()); got != strings.Join(want, " ") {
		t.Errorf("tokenize printed %q, want %q", got, strings.Join(want, " "))
	}
	if err := runTokenize(&out, strings.NewReader(""), tokenizeFlags{tokenizer: filepath.Join(dir, "nope")}); err == nil {
		t.Error("a missing tokenizer was accepted")
	}

	// logprobs accepts {"text": ...} lines with the model directory's
	// tokenizer and scores them like the same ids.
	mdir := tinyModelDir(t, "LlamaForCausalLM")
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		os.WriteFile(filepath.Join(mdir, f), b, 0o644)
	}
	ids := tok.Encode("12+34=46", true)
	idsJSON, _ := json.Marshal(ids)
	in := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(in, []byte(`{"text": "12+34=46"}`+"\n"+`{"ids": `+string(idsJSON)+"}\n"), 0o644)
	out.Reset()
	if err := runLogprobs(&out, logprobsFlags{modelDir: mdir, input: in, batch: 4, temperature: 1}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var a, b logprobsOut
	json.Unmarshal([]byte(lines[0]), &a)
	json.Unmarshal([]byte(lines[1]), &b)
	if a.Sum != b.Sum || len(a.IDs) != len(ids) {
		t.Errorf("text line scored %v over %d ids, ids line %v over %d", a.Sum, len(a.IDs), b.Sum, len(b.IDs))
	}
}

func itoaTest(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
