package train

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/rltrain/rltrain/data"
	"github.com/rltrain/rltrain/model/tokenizer"
)

// ApplyChatOptions sets a tokenizer's chat template as model.chat_template
// and model.chat_template_kwargs say: "" or "auto" keeps the tokenizer's
// own, a built-in format's name replaces it, anything else is a Jinja
// template file (the chat_template string of tokenizer_config.json, as
// transformers' chat_template.jinja files hold it).
func ApplyChatOptions(tok *tokenizer.Tokenizer, template string, kwargs map[string]any) error {
	switch {
	case template == "" || template == "auto":
	case slices.Contains(tokenizer.ChatTemplates, tokenizer.ChatTemplate(template)):
		if err := tok.SetChatTemplate(template); err != nil {
			return err
		}
	default:
		src, err := os.ReadFile(template)
		if err != nil {
			names := make([]string, len(tokenizer.ChatTemplates))
			for i, c := range tokenizer.ChatTemplates {
				names[i] = string(c)
			}
			return fmt.Errorf("%q is neither a built-in format (%s) nor a readable Jinja file: %w", template, strings.Join(names, ", "), err)
		}
		if err := tok.SetChatTemplateJinja(string(src)); err != nil {
			return fmt.Errorf("%s: %w", template, err)
		}
	}
	tok.SetChatTemplateKwargs(kwargs)
	return nil
}

// isChat reports whether an example's prompt goes through the chat
// template: every prompt when model.chat_template is set (all), and a
// prompt given as messages always.
func isChat(ex data.Example, all bool) bool { return all || len(ex.Messages) > 0 }

// hasChatTemplate reports whether the tokenizer can render chats.
func hasChatTemplate(tok *tokenizer.Tokenizer) bool {
	return tok.ChatTemplateSource() != "" || tok.ChatTemplate() != ""
}
