package train

import (
	"fmt"

	"github.com/rltrain/rltrain/data"
	"github.com/rltrain/rltrain/model/tokenizer"
)

// promptText renders an example's prompt: raw text, or its messages
// through the tokenizer's chat template (with the generation prompt). A
// prompt given as messages is always a chat; with chatAll (a
// model.chat_template is set) a text prompt becomes the user turn.
func (p *Policy) promptText(ex data.Example, chatAll bool) (string, error) {
	if !isChat(ex, chatAll) {
		return ex.Prompt, nil
	}
	if !hasChatTemplate(p.Tok) {
		return "", fmt.Errorf("example %s: a chat prompt (a list of messages) needs a chat template, and the tokenizer has none: set model.chat_template to a built-in format (chatml, qwen3, llama3, llama2, plain) or a Jinja file", ex.ID)
	}
	var msgs []tokenizer.Message
	if ex.System != "" {
		msgs = append(msgs, tokenizer.Message{Role: "system", Content: ex.System})
	}
	if len(ex.Messages) > 0 {
		for _, m := range ex.Messages {
			msgs = append(msgs, tokenizer.Message{Role: m.Role, Content: m.Content})
		}
	} else {
		msgs = append(msgs, tokenizer.Message{Role: "user", Content: ex.Prompt})
	}
	s, err := p.Tok.ApplyChatTemplate(msgs, true)
	if err != nil {
		return "", fmt.Errorf("example %s: %w", ex.ID, err)
	}
	return s, nil
}

// encodePrompt tokenizes a prompt rendered by promptText. Raw prompts get
// the tokenizer's special tokens (BOS); chat-templated text already
// carries its markers.
func (p *Policy) encodePrompt(ex data.Example, text string, chatAll bool) []int32 {
	chat := isChat(ex, chatAll)
	return toInt32(p.Tok.Encode(text, !chat))
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

func toInt(ids []int32) []int {
	out := make([]int, len(ids))
	for i, v := range ids {
		out[i] = int(v)
	}
	return out
}

// detok adapts the tokenizer to rollout.Detokenizer.
type detok struct{ t *tokenizer.Tokenizer }

func (d detok) Decode(ids []int32, skipSpecial bool) string {
	return d.t.Decode(toInt(ids), skipSpecial)
}
