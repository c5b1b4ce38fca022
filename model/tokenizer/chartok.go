package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// CharOptions describes a small tokenizer for synthetic tasks.
type CharOptions struct {
	// Chars is the alphabet: every distinct rune becomes one token.
	// Ignored when ByteLevel is set.
	Chars string
	// Special tokens, in id order from 0 (for example "<|endoftext|>",
	// "<|im_start|>", "<|im_end|>").
	Special []string
	// ByteLevel makes a byte-level tokenizer: the 256 bytes are the tokens,
	// so any text encodes. Otherwise characters outside Chars map to <unk>.
	ByteLevel bool
	// BOS, EOS and PAD name special tokens for tokenizer_config.json;
	// AddBOS prepends BOS when encoding with addSpecial.
	BOS, EOS, PAD string
	AddBOS        bool
	// ChatTemplate names a built-in format, recorded in the config as
	// its Jinja template.
	ChatTemplate ChatTemplate
}

// DefaultCharOptions is the tokenizer of the built-in synthetic tasks:
// printable ASCII (letters, digits, punctuation, space, newline) plus the
// ChatML markers, with <|endoftext|> as EOS and padding.
func DefaultCharOptions() CharOptions {
	chars := "\n"
	for c := ' '; c <= '~'; c++ {
		chars += string(c)
	}
	return CharOptions{
		Chars:        chars,
		Special:      []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"},
		EOS:          "<|endoftext|>",
		PAD:          "<|endoftext|>",
		ChatTemplate: ChatML,
	}
}

// CharTokenizerJSON renders opts as the contents of tokenizer.json and
// tokenizer_config.json. The files load in Hugging Face-compatible tools.
func CharTokenizerJSON(opts CharOptions) (tokenizerJSON, configJSON []byte, err error) {
	vocab := map[string]int{}
	type added struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	var addedTokens []added
	addSpecial := func(s string) error {
		if s == "" {
			return fmt.Errorf("char tokenizer: empty special token")
		}
		if _, dup := vocab[s]; dup {
			return fmt.Errorf("char tokenizer: special token %q listed twice", s)
		}
		id := len(vocab)
		vocab[s] = id
		addedTokens = append(addedTokens, added{ID: id, Content: s, Special: true})
		return nil
	}
	for _, s := range opts.Special {
		if err := addSpecial(s); err != nil {
			return nil, nil, err
		}
	}
	model := map[string]any{
		"type": "BPE", "dropout": nil, "continuing_subword_prefix": nil,
		"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false,
		"ignore_merges": false, "merges": []string{},
	}
	var pre, dec any
	if opts.ByteLevel {
		for b := 0; b < 256; b++ {
			vocab[string(byteToRune[b])] = len(vocab)
		}
		model["unk_token"] = nil
		pre = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
		dec = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
	} else {
		if err := addSpecial("<unk>"); err != nil {
			return nil, nil, err
		}
		model["unk_token"] = "<unk>"
		for i, r := range opts.Chars {
			if r == utf8.RuneError {
				return nil, nil, fmt.Errorf("char tokenizer: invalid UTF-8 at byte %d of Chars", i)
			}
			if _, dup := vocab[string(r)]; !dup {
				vocab[string(r)] = len(vocab)
			}
		}
		dec = map[string]any{"type": "Fuse"}
	}
	model["vocab"] = vocab
	var post any
	cfg := map[string]any{
		"clean_up_tokenization_spaces": false,
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"model_max_length":             1 << 20,
	}
	for key, name := range map[string]string{"bos_token": opts.BOS, "eos_token": opts.EOS, "pad_token": opts.PAD} {
		if name == "" {
			continue
		}
		if _, ok := vocab[name]; !ok {
			return nil, nil, fmt.Errorf("char tokenizer: %s %q is not a special token", key, name)
		}
		cfg[key] = name
	}
	if !opts.ByteLevel {
		cfg["unk_token"] = "<unk>"
	}
	if opts.AddBOS {
		if opts.BOS == "" {
			return nil, nil, fmt.Errorf("char tokenizer: AddBOS needs BOS")
		}
		post = map[string]any{
			"type":   "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": opts.BOS, "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair": []any{map[string]any{"SpecialToken": map[string]any{"id": opts.BOS, "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}},
			"special_tokens": map[string]any{opts.BOS: map[string]any{"id": opts.BOS, "ids": []int{vocab[opts.BOS]}, "tokens": []string{opts.BOS}}},
		}
	}
	if opts.ChatTemplate != "" {
		// Hugging Face tools expect a Jinja string here, not a name.
		cfg["chat_template"] = BuiltinChatJinja(opts.ChatTemplate)
	}
	file := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil,
		"added_tokens": addedTokens, "normalizer": nil, "pre_tokenizer": pre,
		"post_processor": post, "decoder": dec, "model": model,
	}
	tokenizerJSON, err = json.MarshalIndent(file, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("char tokenizer: %w", err)
	}
	configJSON, err = json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, nil, fmt.Errorf("char tokenizer: %w", err)
	}
	return tokenizerJSON, configJSON, nil
}

// NewCharTokenizer builds the tokenizer described by opts, through the same
// loader as any tokenizer.json.
func NewCharTokenizer(opts CharOptions) (*Tokenizer, error) {
	tj, cj, err := CharTokenizerJSON(opts)
	if err != nil {
		return nil, err
	}
	return FromJSON(tj, cj)
}

// WriteCharTokenizer writes tokenizer.json and tokenizer_config.json for
// opts into dir (created if needed) and loads them back.
func WriteCharTokenizer(dir string, opts CharOptions) (*Tokenizer, error) {
	tj, cj, err := CharTokenizerJSON(opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("write char tokenizer: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644); err != nil {
		return nil, fmt.Errorf("write char tokenizer: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cj, 0o644); err != nil {
		return nil, fmt.Errorf("write char tokenizer: %w", err)
	}
	return LoadDir(dir)
}
