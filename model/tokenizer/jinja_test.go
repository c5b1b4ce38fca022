package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Multi-turn conversations every format can render (user and assistant
// alternate after an optional system message, as Llama 2 requires).
var multiTurn = [][]Message{
	{{"user", "What is 2+2?"}},
	{{"system", "You are terse."}, {"user", "Hi there"}},
	{{"system", "S"}, {"user", "q1"}, {"assistant", "a1"}, {"user", "  q2 with spaces \n"}},
	{{"user", "多语言 😀"}, {"assistant", "ok"}, {"user", "again"}, {"assistant", "done"}},
	{{"user", "q1"}, {"assistant", "<think>\nr1\n</think>\n\na1"}, {"user", "q2"}, {"assistant", "<think>r2</think>a2"}},
}

// builtinTok is a small tokenizer whose special tokens are those the
// formats print, with the built-in format chosen by name.
func builtinTok(t *testing.T, c ChatTemplate) *Tokenizer {
	t.Helper()
	opts := CharOptions{ByteLevel: true,
		Special: []string{"<|begin_of_text|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>"}}
	switch c {
	case Llama3:
		opts.BOS, opts.EOS = "<|begin_of_text|>", "<|eot_id|>"
	case Llama2:
		opts.BOS, opts.EOS = "<s>", "</s>"
	default:
		opts.EOS = "<|im_end|>"
	}
	tok, err := NewCharTokenizer(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.SetChatTemplate(string(c)); err != nil {
		t.Fatal(err)
	}
	return tok
}

func realChatTemplate(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(realTokenizerDir(name), "tokenizer_config.json"))
	if err != nil {
		t.Skipf("%v: run make setup", err)
	}
	var cfg struct {
		ChatTemplate string `json:"chat_template"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.ChatTemplate
}

// TestRealJinjaTemplateMatchesBuiltin renders Qwen3's and Llama 3's own
// chat_template strings from their tokenizer_config.json through the Jinja
// engine and compares each multi-turn conversation, with and without the
// generation prompt, with the built-in format written in Go.
func TestRealJinjaTemplateMatchesBuiltin(t *testing.T) {
	for _, tc := range []struct {
		name string
		fmt  ChatTemplate
	}{{"qwen3", Qwen3}, {"llama3", Llama3}} {
		src := realChatTemplate(t, tc.name)
		jinjaTok := builtinTok(t, tc.fmt)
		if err := jinjaTok.SetChatTemplateJinja(src); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		goTok := builtinTok(t, tc.fmt)
		gens := []bool{true, false}
		if tc.fmt == Llama3 {
			// This Llama 3 template ends every prompt with the assistant
			// header, whatever add_generation_prompt says.
			gens = gens[:1]
		}
		for _, msgs := range multiTurn {
			for _, gen := range gens {
				got, err := jinjaTok.ApplyChatTemplate(msgs, gen)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				want, err := goTok.ApplyChatTemplate(msgs, gen)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("%s, generation prompt %v:\njinja    %q\nbuilt-in %q", tc.name, gen, got, want)
				}
			}
		}
	}
}

// The real Qwen3 tokenizer loaded from its directory renders prompts with
// its own template, and enable_thinking=false adds the empty think block
// exactly as the built-in format does.
func TestQwen3JinjaEnableThinking(t *testing.T) {
	tok, err := LoadDir(realTokenizerDir("qwen3"))
	if err != nil {
		t.Skipf("%v: run make setup", err)
	}
	if tok.ChatTemplateSource() == "" || tok.ChatTemplateNote() != "" {
		t.Fatalf("the model's template is not in use: source %d bytes, note %q", len(tok.ChatTemplateSource()), tok.ChatTemplateNote())
	}
	goTok := builtinTok(t, Qwen3)
	msgs := []Message{{"system", "S"}, {"user", "q1"}, {"assistant", "a1"}, {"user", "q2"}}
	for _, thinking := range []bool{true, false} {
		kw := map[string]any{"enable_thinking": thinking}
		tok.SetChatTemplateKwargs(kw)
		goTok.SetChatTemplateKwargs(kw)
		got, err := tok.ApplyChatTemplate(msgs, true)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := goTok.ApplyChatTemplate(msgs, true)
		if got != want {
			t.Errorf("enable_thinking %v:\njinja    %q\nbuilt-in %q", thinking, got, want)
		}
		if tail := "<|im_start|>assistant\n<think>\n\n</think>\n\n"; strings.HasSuffix(got, tail) == thinking {
			t.Errorf("enable_thinking %v: prompt ends %q", thinking, got[max(0, len(got)-40):])
		}
	}
}

// Each built-in format written in Jinja (what saved tokenizer_config.json
// files carry) renders what the Go format renders.
func TestBuiltinJinjaMatchesGo(t *testing.T) {
	for _, c := range ChatTemplates {
		src := BuiltinChatJinja(c)
		if src == "" {
			t.Fatalf("%s has no Jinja form", c)
		}
		if got := detectChatTemplate(src); got != c && c != Plain {
			t.Errorf("%s's Jinja form is detected as %q", c, got)
		}
		jinjaTok := builtinTok(t, c)
		if err := jinjaTok.SetChatTemplateJinja(src); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		goTok := builtinTok(t, c)
		for _, kw := range []map[string]any{nil, {"enable_thinking": false}} {
			jinjaTok.SetChatTemplateKwargs(kw)
			goTok.SetChatTemplateKwargs(kw)
			for _, msgs := range multiTurn {
				for _, gen := range []bool{true, false} {
					got, err := jinjaTok.ApplyChatTemplate(msgs, gen)
					want, werr := goTok.ApplyChatTemplate(msgs, gen)
					if err != nil || werr != nil || got != want {
						t.Errorf("%s %v gen %v:\njinja    %q %v\nbuilt-in %q %v", c, kw, gen, got, err, want, werr)
					}
				}
			}
		}
	}
	// Llama 2's alternation rule is an error in both.
	bad := []Message{{"assistant", "x"}}
	jinjaTok := builtinTok(t, Llama2)
	if err := jinjaTok.SetChatTemplateJinja(BuiltinChatJinja(Llama2)); err != nil {
		t.Fatal(err)
	}
	if _, err := jinjaTok.ApplyChatTemplate(bad, true); err == nil || !strings.Contains(err.Error(), "roles must alternate") {
		t.Errorf("jinja llama2, assistant first: %v", err)
	}
}

func TestJinjaTemplateErrorsAndFallback(t *testing.T) {
	tj, _, err := CharTokenizerJSON(DefaultCharOptions())
	if err != nil {
		t.Fatal(err)
	}
	load := func(src string) *Tokenizer {
		t.Helper()
		cfg, _ := json.Marshal(map[string]any{"chat_template": src, "eos_token": "<|endoftext|>"})
		tok, err := FromJSON(tj, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	msgs := []Message{{"user", "hi"}}

	// A template the engine cannot parse (HF's {% generation %} tag) but
	// whose markers are ChatML's: the built-in format renders, with a note.
	tok := load(`{% for m in messages %}{% generation %}<|im_start|>{{ m.role }}{% endgeneration %}{% endfor %}`)
	if !strings.Contains(tok.ChatTemplateNote(), "using the built-in chatml format") {
		t.Errorf("note %q", tok.ChatTemplateNote())
	}
	if got, err := tok.ApplyChatTemplate(msgs, true); err != nil || got != "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" {
		t.Errorf("fallback rendered %q, %v", got, err)
	}
	if tok.ChatTemplateSource() != BuiltinChatJinja(ChatML) {
		t.Error("a fallback's source should be the built-in format's Jinja")
	}

	// Unparsable and unrecognised: the error says why.
	tok = load(`{% for m in messages %}{{ m.content }}`)
	if _, err := tok.ApplyChatTemplate(msgs, true); err == nil || !strings.Contains(err.Error(), "does not compile") {
		t.Errorf("unparsable: %v", err)
	}

	// raise_exception reaches the caller; other files cannot be read.
	tok = load(`{{ raise_exception('only user turns, please') }}`)
	if _, err := tok.ApplyChatTemplate(msgs, true); err == nil || !strings.Contains(err.Error(), "only user turns, please") {
		t.Errorf("raise_exception: %v", err)
	}
	for _, src := range []string{`{% include "/etc/passwd" %}`, `{% include "tokenizer.json" %}`} {
		tok = load(src)
		if got, err := tok.ApplyChatTemplate(msgs, true); err == nil {
			t.Errorf("%s rendered %q", src, got)
		}
	}

	// Variables: special tokens and keyword arguments.
	tok = load(`{{ eos_token }}|{{ bos_token }}|{{ add_generation_prompt }}|{{ flavour }}`)
	tok.SetChatTemplateKwargs(map[string]any{"flavour": "mint"})
	if got, err := tok.ApplyChatTemplate(msgs, true); err != nil || got != "<|endoftext|>||True|mint" {
		t.Errorf("variables rendered %q, %v", got, err)
	}

	// SetChatTemplateJinja reports a bad file's template at once.
	if err := tok.SetChatTemplateJinja(`{% if %}`); err == nil {
		t.Error("SetChatTemplateJinja accepted a broken template")
	}
}

// The built-in tasks' tokenizer_config.json carries a Jinja string that
// renders what the built-in format renders.
func TestCharTokenizerConfigHasJinja(t *testing.T) {
	_, cj, err := CharTokenizerJSON(DefaultCharOptions())
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(cj, &cfg); err != nil {
		t.Fatal(err)
	}
	src, _ := cfg["chat_template"].(string)
	if !strings.Contains(src, "{%") || src != BuiltinChatJinja(ChatML) {
		t.Fatalf("chat_template %q is not the ChatML Jinja template", src)
	}
}

func BenchmarkJinjaQwen3(b *testing.B) {
	tok, err := LoadDir(realTokenizerDir("qwen3"))
	if err != nil {
		b.Skip(err)
	}
	msgs := []Message{{"system", "Solve the problem."}, {"user", "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"}}
	for b.Loop() {
		if _, err := tok.ApplyChatTemplate(msgs, true); err != nil {
			b.Fatal(err)
		}
	}
}
