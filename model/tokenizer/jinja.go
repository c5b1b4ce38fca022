package tokenizer

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
)

// Chat templates as Hugging Face renders them: the chat_template string of
// tokenizer_config.json is Jinja, run by transformers in a sandbox with
// trim_blocks and lstrip_blocks on, the variables messages,
// add_generation_prompt, bos_token, eos_token (and the other special
// tokens) plus any keyword arguments of apply_chat_template (Qwen3's
// enable_thinking), and the helper raise_exception. Here the engine is
// gonja; templates can include no other files.

// jinjaState is a tokenizer's Jinja template and the choices around it.
type jinjaState struct {
	tpl *exec.Template // nil: no template, or it did not compile
	err error          // why the template did not compile
	// builtin is set when SetChatTemplate chose a built-in format, which
	// then renders even when a Jinja template is present.
	builtin bool
	kwargs  map[string]any
}

var jinjaEnv = &exec.Environment{
	Context: exec.EmptyContext().
		Update(builtins.GlobalFunctions).
		Update(builtins.GlobalVariables).
		Update(exec.NewContext(map[string]any{
			"raise_exception": raiseException,
			"strftime_now":    strftimeNow,
		})),
	Filters:           builtins.Filters,
	Tests:             builtins.Tests,
	ControlStructures: builtins.ControlStructures,
	Methods:           builtins.Methods,
}

func raiseException(_ *exec.Evaluator, params *exec.VarArgs) (string, error) {
	msg := "raise_exception called"
	if len(params.Args) > 0 {
		msg = params.Args[0].String()
	}
	return "", errors.New(msg)
}

// strftimeNow formats the current date for templates that print it
// (Llama 3.1's "Today Date"); only the directives those use are known.
func strftimeNow(_ *exec.Evaluator, params *exec.VarArgs) (string, error) {
	if len(params.Args) != 1 {
		return "", errors.New("strftime_now takes one format argument")
	}
	r := strings.NewReplacer("%d", "02", "%b", "Jan", "%B", "January", "%Y", "2006", "%m", "01", "%H", "15", "%M", "04", "%S", "05", "%y", "06")
	return time.Now().Format(r.Replace(params.Args[0].String())), nil
}

const jinjaName = "/chat_template"

// compileJinja parses a chat template. The engine panics on some malformed
// input; that is reported as an error.
func compileJinja(src string) (tpl *exec.Template, err error) {
	defer func() {
		if p := recover(); p != nil {
			tpl, err = nil, fmt.Errorf("chat template: %v", p)
		}
	}()
	loader, err := loaders.NewMemoryLoader(map[string]string{jinjaName: src})
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	cfg := config.New()
	cfg.TrimBlocks = true
	cfg.LeftStripBlocks = true
	tpl, err = exec.NewTemplate(jinjaName, cfg, loader, jinjaEnv)
	if err != nil {
		// The engine's message repeats the whole source; keep its cause.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return nil, fmt.Errorf("chat template does not compile: %w", err)
	}
	return tpl, nil
}

// renderJinja runs tpl over messages with the tokenizer's special tokens.
func (t *Tokenizer) renderJinja(tpl *exec.Template, messages []Message, addGenerationPrompt bool, kwargs map[string]any) (out string, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = "", fmt.Errorf("chat template: %v", p)
		}
	}()
	msgs := make([]any, len(messages))
	for i, m := range messages {
		msgs[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	vars := map[string]any{
		"messages":              msgs,
		"add_generation_prompt": addGenerationPrompt,
	}
	for name, id := range map[string]int{"bos_token": t.bos, "eos_token": t.eos, "pad_token": t.pad, "unk_token": t.unk} {
		if id >= 0 {
			vars[name] = t.Token(id)
		} else {
			vars[name] = ""
		}
	}
	maps.Copy(vars, kwargs)
	out, err = tpl.ExecuteToString(exec.NewContext(vars))
	if err != nil {
		return "", fmt.Errorf("chat template: %w", err)
	}
	return out, nil
}

// SetChatTemplateJinja uses a Jinja chat template (the contents of a
// .jinja file, or a chat_template string), replacing tokenizer_config.json's.
func (t *Tokenizer) SetChatTemplateJinja(src string) error {
	tpl, err := compileJinja(src)
	if err != nil {
		return err
	}
	t.chatSource = src
	t.chat = detectChatTemplate(src)
	t.defaultSystem = ""
	t.jinja.tpl, t.jinja.err, t.jinja.builtin = tpl, nil, false
	return nil
}

// SetChatTemplateKwargs sets extra template variables passed on every
// render, as apply_chat_template's keyword arguments: {enable_thinking:
// false} turns Qwen3's thinking off.
func (t *Tokenizer) SetChatTemplateKwargs(kwargs map[string]any) {
	t.jinja.kwargs = maps.Clone(kwargs)
}

// ChatTemplateSource is the chat template's Jinja source: the model's
// own, a file given to SetChatTemplateJinja, or, after SetChatTemplate
// chose a built-in format, that format written in Jinja. Saved
// tokenizer_config.json files carry it.
func (t *Tokenizer) ChatTemplateSource() string {
	if t.jinja.builtin || (t.jinja.tpl == nil && t.chat != "") {
		return BuiltinChatJinja(t.chat)
	}
	if t.jinja.tpl != nil {
		return t.chatSource
	}
	return ""
}

// ChatTemplateNote explains a fallback: the model's Jinja template did
// not compile and a built-in format with the same markers is used instead.
// It is "" when the model's template is used as written.
func (t *Tokenizer) ChatTemplateNote() string {
	if t.jinja.err != nil && t.chat != "" && !t.jinja.builtin {
		return fmt.Sprintf("%v; using the built-in %s format, which its markers match", t.jinja.err, t.chat)
	}
	return ""
}

// BuiltinChatJinja is a built-in format written as a Jinja chat template,
// for tokenizer_config.json files that Hugging Face tools read: it renders
// exactly what the built-in format renders. ChatML's model-specific default
// system prompt is not part of it.
func BuiltinChatJinja(c ChatTemplate) string {
	return builtinJinja[c]
}

var builtinJinja = map[ChatTemplate]string{
	ChatML: `{%- for message in messages %}
{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\n' }}
{%- endif %}`,

	Qwen3: `{%- if messages and messages[0]['role'] == 'system' %}
{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(last_query=messages|length - 1, found=false) %}
{%- for message in messages[::-1] %}
{%- if not ns.found and message['role'] == 'user' and not (message['content'].startswith('<tool_response>') and message['content'].endswith('</tool_response>')) %}
{%- set ns.found = true %}
{%- set ns.last_query = messages|length - 1 - loop.index0 %}
{%- endif %}
{%- endfor %}
{%- for message in messages %}
{%- if message['role'] == 'user' or (message['role'] == 'system' and not loop.first) %}
{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}
{%- elif message['role'] == 'assistant' %}
{%- set content = message['content'] %}
{%- set reasoning = '' %}
{%- if '</think>' in content %}
{%- set reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
{%- set content = content.split('</think>')[-1].lstrip('\n') %}
{%- endif %}
{%- if loop.index0 > ns.last_query and (loop.last or reasoning) %}
{{- '<|im_start|>assistant\n<think>\n' + reasoning.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
{%- else %}
{{- '<|im_start|>assistant\n' + content }}
{%- endif %}
{{- '<|im_end|>\n' }}
{%- elif message['role'] == 'tool' %}
{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}
{{- '<|im_start|>user' }}
{%- endif %}
{{- '\n<tool_response>\n' + message['content'] + '\n</tool_response>' }}
{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}
{{- '<|im_end|>\n' }}
{%- endif %}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\n' }}
{%- if enable_thinking is defined and enable_thinking is false %}
{{- '<think>\n\n</think>\n\n' }}
{%- endif %}
{%- endif %}`,

	Llama3: `{{- bos_token }}
{%- for message in messages %}
{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}`,

	Llama2: `{%- if messages and messages[0]['role'] == 'system' %}
{%- set system = messages[0]['content'] %}
{%- set loop_messages = messages[1:] %}
{%- else %}
{%- set system = none %}
{%- set loop_messages = messages %}
{%- endif %}
{%- for message in loop_messages %}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
{{- raise_exception('llama2 chat template: roles must alternate user/assistant after an optional system message') }}
{%- endif %}
{%- set content = message['content'] %}
{%- if loop.first and system is not none %}
{%- set content = '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + content %}
{%- endif %}
{%- if message['role'] == 'user' %}
{{- bos_token + '[INST] ' + content | trim + ' [/INST]' }}
{%- else %}
{{- ' ' + content | trim + ' ' + eos_token }}
{%- endif %}
{%- endfor %}`,

	Plain: `{%- for message in messages %}
{%- if not loop.first %}
{{- '\n\n' }}
{%- endif %}
{{- message['content'] }}
{%- endfor %}`,
}
