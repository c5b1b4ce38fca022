package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/model/tokenizer"
)

// rltrain tokenize --chat renders text through the chat template as
// training renders a prompt, prints it, then its ids.
func TestTokenizeChat(t *testing.T) {
	dir := t.TempDir()
	tok := writeCharTokenizer(t, dir, tokenizer.DefaultCharOptions())
	tests := []struct {
		f    tokenizeFlags
		want string
	}{
		{tokenizeFlags{text: "2+3="}, "<|im_start|>user\n2+3=<|im_end|>\n<|im_start|>assistant\n"},
		{tokenizeFlags{text: `[{"role": "system", "content": "Add."}, {"role": "user", "content": "2+3="}]`},
			"<|im_start|>system\nAdd.<|im_end|>\n<|im_start|>user\n2+3=<|im_end|>\n<|im_start|>assistant\n"},
		{tokenizeFlags{text: "hi", chatTemplate: "qwen3", chatKwargs: `{"enable_thinking": false}`},
			"<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"},
		{tokenizeFlags{text: "hi", chatTemplate: "plain"}, "hi"},
	}
	for _, tc := range tests {
		f := tc.f
		f.tokenizer, f.chat = dir, true
		var out bytes.Buffer
		if err := runTokenize(&out, strings.NewReader(""), f); err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 2 || lines[0] != strconv.Quote(tc.want) {
			t.Fatalf("%+v printed %q, want the rendered %q first", f, out.String(), tc.want)
		}
		var ids []string
		for _, id := range tok.Encode(tc.want, false) {
			ids = append(ids, strconv.Itoa(id))
		}
		if lines[1] != strings.Join(ids, " ") {
			t.Errorf("%+v ids %q, want %q", f, lines[1], strings.Join(ids, " "))
		}
	}
	for _, f := range []tokenizeFlags{
		{tokenizer: dir, text: "x", chat: true, chatKwargs: "[1]"},
		{tokenizer: dir, text: "[not json", chat: true},
		{tokenizer: dir, text: "x", chat: true, chatTemplate: "/no/file.jinja"},
		{tokenizer: dir, text: "x", chatTemplate: "plain"},
	} {
		if err := runTokenize(&bytes.Buffer{}, strings.NewReader(""), f); err == nil {
			t.Errorf("%+v: no error", f)
		}
	}
}

// rltrain model init --tokenizer copies the tokenizer into the new model,
// after checking it fits the vocabulary.
func TestModelInitWithTokenizer(t *testing.T) {
	tokDir := t.TempDir()
	writeCharTokenizer(t, tokDir, tokenizer.DefaultCharOptions())
	special := []byte(`{"eos_token": "<|endoftext|>"}`)
	os.WriteFile(filepath.Join(tokDir, "special_tokens_map.json"), special, 0o644)
	cfgFor := func(vocab int) string {
		p := filepath.Join(t.TempDir(), "config.json")
		os.WriteFile(p, []byte(`{"architectures":["LlamaForCausalLM"],"vocab_size":`+strconv.Itoa(vocab)+`,"hidden_size":16,"intermediate_size":32,
			"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"rms_norm_eps":1e-5,"tie_word_embeddings":true}`), 0o644)
		return p
	}
	out := filepath.Join(t.TempDir(), "m")
	if log, err := execute(t, "model", "init", "--config", cfgFor(128), "--out", out, "--tokenizer", tokDir); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
		a, _ := os.ReadFile(filepath.Join(tokDir, name))
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s not copied (%v)", name, err)
		}
	}
	if _, err := tokenizer.LoadDir(out); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "m2")
	if _, err := execute(t, "model", "init", "--config", cfgFor(16), "--out", out2, "--tokenizer", tokDir); err == nil || !strings.Contains(err.Error(), "more than the config's vocab_size 16") {
		t.Fatalf("a tokenizer larger than the vocabulary: %v", err)
	}
	if _, err := os.Stat(out2); err == nil {
		t.Error("a failed init wrote the model anyway")
	}
}
