package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatTemplate names one of the built-in chat formats.
type ChatTemplate string

const (
	// ChatML is Qwen2's format: <|im_start|>role\ncontent<|im_end|>\n,
	// with the default system prompt the model's own template inserts
	// (Qwen2, Qwen2.5) when the conversation has none.
	ChatML ChatTemplate = "chatml"
	// Qwen3 is ChatML with Qwen3's handling of thinking: assistant turns
	// after the last user query carry a <think>...</think> block (empty
	// when the content has none), earlier ones lose theirs, and tool
	// results are wrapped in <tool_response> inside a user turn.
	Qwen3 ChatTemplate = "qwen3"
	// Llama3 is Meta Llama 3's header/eot format.
	Llama3 ChatTemplate = "llama3"
	// Llama2 is Meta Llama 2's [INST] ... [/INST] format with <<SYS>>.
	Llama2 ChatTemplate = "llama2"
	// Plain joins the message contents with blank lines and adds no
	// markers: for base models.
	Plain ChatTemplate = "plain"
)

// ChatTemplates lists the built-in templates.
var ChatTemplates = []ChatTemplate{ChatML, Qwen3, Llama3, Llama2, Plain}

// setChatTemplate recognises tokenizer_config.json's chat_template: a name
// of a built-in template, or a Jinja template whose markers identify one.
// An unrecognised template is remembered, and ApplyChatTemplate then says
// so rather than guessing.
func (t *Tokenizer) setChatTemplate(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var src string
	if err := json.Unmarshal(raw, &src); err != nil {
		// A list of named templates: use "default".
		var named []struct {
			Name     string `json:"name"`
			Template string `json:"template"`
		}
		if err2 := json.Unmarshal(raw, &named); err2 != nil {
			return fmt.Errorf("chat_template: want a string or a list of {name, template}: %w", err)
		}
		for _, n := range named {
			if n.Name == "default" || src == "" {
				src = n.Template
			}
		}
	}
	t.chatSource = src
	t.chat = detectChatTemplate(src)
	if t.chat == ChatML {
		t.defaultSystem = chatMLDefaultSystem(src)
	}
	if src != "" && !isBuiltinName(src) {
		// The model's own Jinja template renders its prompts; when it does
		// not compile, the built-in format its markers match stands in.
		t.jinja.tpl, t.jinja.err = compileJinja(src)
	}
	return nil
}

func isBuiltinName(src string) bool {
	for _, c := range ChatTemplates {
		if strings.TrimSpace(src) == string(c) {
			return true
		}
	}
	return false
}

// chatMLDefaultSystem finds the system prompt a ChatML template inserts when
// the conversation has none, written as a literal in the template:
// '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' (Qwen2,
// Qwen2.5). It returns "" when there is none.
func chatMLDefaultSystem(src string) string {
	const open = `<|im_start|>system\n`
	for rest := src; ; {
		i := strings.Index(rest, open)
		if i < 0 {
			return ""
		}
		rest = rest[i+len(open):]
		j := strings.Index(rest, "<|im_end|>")
		if j > 0 && !strings.ContainsAny(rest[:j], "'\"{}+") {
			return strings.ReplaceAll(rest[:j], `\n`, "\n")
		}
	}
}

func detectChatTemplate(src string) ChatTemplate {
	for _, c := range ChatTemplates {
		if strings.TrimSpace(src) == string(c) {
			return c
		}
	}
	switch {
	case strings.Contains(src, "<|im_start|>") && strings.Contains(src, "</think>"):
		return Qwen3
	case strings.Contains(src, "<|im_start|>"):
		return ChatML
	case strings.Contains(src, "<|start_header_id|>"):
		return Llama3
	case strings.Contains(src, "[INST]"):
		return Llama2
	}
	return ""
}

// ChatTemplate names the built-in format the chat template is or matches
// ("" when none does). A Jinja template renders as written even when it
// matches one.
func (t *Tokenizer) ChatTemplate() ChatTemplate { return t.chat }

// SetChatTemplate picks a built-in template by name, overriding
// tokenizer_config.json.
func (t *Tokenizer) SetChatTemplate(name string) error {
	for _, c := range ChatTemplates {
		if string(c) == name {
			t.chat = c
			t.jinja.builtin = true
			t.defaultSystem = ""
			if c == ChatML {
				t.defaultSystem = chatMLDefaultSystem(t.chatSource)
			}
			return nil
		}
	}
	return fmt.Errorf("unknown chat template %q (built in: chatml, qwen3, llama3, llama2, plain)", name)
}

// ApplyChatTemplate renders messages as the model's chat format;
// addGenerationPrompt appends the opening of an assistant turn. The result
// contains special-token text (such as "<|im_start|>") that Encode maps to
// the special ids; encode it with addSpecial false.
func (t *Tokenizer) ApplyChatTemplate(messages []Message, addGenerationPrompt bool) (string, error) {
	if t.jinja.tpl != nil && !t.jinja.builtin {
		return t.renderJinja(t.jinja.tpl, messages, addGenerationPrompt, t.jinja.kwargs)
	}
	var sb strings.Builder
	switch t.chat {
	case ChatML:
		if t.defaultSystem != "" && (len(messages) == 0 || messages[0].Role != "system") {
			sb.WriteString("<|im_start|>system\n" + t.defaultSystem + "<|im_end|>\n")
		}
		for _, m := range messages {
			sb.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
		}
		if addGenerationPrompt {
			sb.WriteString("<|im_start|>assistant\n")
		}
	case Llama3:
		sb.WriteString(t.tokenOr(t.bos, "<|begin_of_text|>"))
		for _, m := range messages {
			sb.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n" + trimJS(m.Content) + "<|eot_id|>")
		}
		if addGenerationPrompt {
			sb.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
		}
	case Qwen3:
		thinking := true
		if v, ok := t.jinja.kwargs["enable_thinking"].(bool); ok {
			thinking = v
		}
		return applyQwen3(messages, addGenerationPrompt, thinking), nil
	case Llama2:
		return t.applyLlama2(messages)
	case Plain:
		for i, m := range messages {
			if i > 0 {
				sb.WriteString("\n\n")
			}
			sb.WriteString(m.Content)
		}
	case "":
		if t.jinja.err != nil {
			return "", fmt.Errorf("%w, and it is not one of the built-in formats; choose one with SetChatTemplate (chatml, qwen3, llama3, llama2, plain)", t.jinja.err)
		}
		if t.chatSource != "" {
			return "", fmt.Errorf("tokenizer_config.json's chat_template is not one of the built-in formats; choose one with SetChatTemplate (chatml, qwen3, llama3, llama2, plain)")
		}
		return "", fmt.Errorf("tokenizer has no chat template; choose one with SetChatTemplate (chatml, qwen3, llama3, llama2, plain)")
	}
	return sb.String(), nil
}

// applyLlama2 follows Meta's Llama 2 chat template: an optional system
// message folded into the first user turn, strictly alternating user and
// assistant turns. The prompt already ends in [/INST], so there is no
// separate generation prompt.
func (t *Tokenizer) applyLlama2(messages []Message) (string, error) {
	bos := t.tokenOr(t.bos, "<s>")
	eos := t.tokenOr(t.eos, "</s>")
	system := ""
	hasSystem := false
	if len(messages) > 0 && messages[0].Role == "system" {
		system, hasSystem = messages[0].Content, true
		messages = messages[1:]
	}
	var sb strings.Builder
	for i, m := range messages {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if m.Role != want {
			return "", fmt.Errorf("llama2 chat template: message %d has role %q, want %q (roles must alternate user/assistant after an optional system message)", i, m.Role, want)
		}
		content := m.Content
		if i == 0 && hasSystem {
			content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content
		}
		if m.Role == "user" {
			sb.WriteString(bos + "[INST] " + trimJS(content) + " [/INST]")
		} else {
			sb.WriteString(" " + trimJS(content) + " " + eos)
		}
	}
	return sb.String(), nil
}

func (t *Tokenizer) tokenOr(id int, fallback string) string {
	if id >= 0 {
		if s := t.Token(id); s != "" {
			return s
		}
	}
	return fallback
}

func trimJS(s string) string { return strings.TrimFunc(s, isSpaceJS) }

// applyQwen3 follows Qwen3's chat template for conversations without tool
// definitions; thinking false is its enable_thinking=False (an empty
// thinking block after the generation prompt).
func applyQwen3(messages []Message, addGenerationPrompt, thinking bool) string {
	isToolResponse := func(c string) bool {
		return strings.HasPrefix(c, "<tool_response>") && strings.HasSuffix(c, "</tool_response>")
	}
	lastQuery := len(messages) - 1
	for i := len(messages) - 1; i >= 0; i-- {
		if messages[i].Role == "user" && !isToolResponse(messages[i].Content) {
			lastQuery = i
			break
		}
	}
	var sb strings.Builder
	if len(messages) > 0 && messages[0].Role == "system" {
		sb.WriteString("<|im_start|>system\n" + messages[0].Content + "<|im_end|>\n")
	}
	for i, m := range messages {
		switch {
		case m.Role == "user" || (m.Role == "system" && i > 0):
			sb.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
		case m.Role == "assistant":
			content, reasoning := m.Content, ""
			if strings.Contains(content, "</think>") {
				parts := strings.Split(content, "</think>")
				content = strings.TrimLeft(parts[len(parts)-1], "\n")
				before := strings.Split(strings.TrimRight(parts[0], "\n"), "<think>")
				reasoning = strings.TrimLeft(before[len(before)-1], "\n")
			}
			if i > lastQuery && (i == len(messages)-1 || reasoning != "") {
				sb.WriteString("<|im_start|>assistant\n<think>\n" + strings.Trim(reasoning, "\n") + "\n</think>\n\n" + strings.TrimLeft(content, "\n"))
			} else {
				sb.WriteString("<|im_start|>assistant\n" + content)
			}
			sb.WriteString("<|im_end|>\n")
		case m.Role == "tool":
			if i == 0 || messages[i-1].Role != "tool" {
				sb.WriteString("<|im_start|>user")
			}
			sb.WriteString("\n<tool_response>\n" + m.Content + "\n</tool_response>")
			if i == len(messages)-1 || messages[i+1].Role != "tool" {
				sb.WriteString("<|im_end|>\n")
			}
		}
	}
	if addGenerationPrompt {
		sb.WriteString("<|im_start|>assistant\n")
		if !thinking {
			sb.WriteString("<think>\n\n</think>\n\n")
		}
	}
	return sb.String()
}
