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
	v := &charVocab{ids: map[string]int{}}
	for _, s := range opts.Special {
		if err := v.addSpecial(s); err != nil {
			return nil, nil, err
		}
	}
	model, pre, dec, err := v.model(opts)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := charConfig(opts, v.ids)
	if err != nil {
		return nil, nil, err
	}
	var post any
	if opts.AddBOS {
		if opts.BOS == "" {
			return nil, nil, fmt.Errorf("char tokenizer: AddBOS needs BOS")
		}
		post = bosPostProcessor(opts.BOS, v.ids[opts.BOS])
	}
	file := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil,
		"added_tokens": v.added, "normalizer": nil, "pre_tokenizer": pre,
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

// charVocab is a char tokenizer's vocabulary as it is built: special
// tokens first, then the alphabet or the 256 bytes.
type charVocab struct {
	ids   map[string]int
	added []addedTokenJSON
}

func (v *charVocab) addSpecial(s string) error {
	if s == "" {
		return fmt.Errorf("char tokenizer: empty special token")
	}
	if _, dup := v.ids[s]; dup {
		return fmt.Errorf("char tokenizer: special token %q listed twice", s)
	}
	id := len(v.ids)
	v.ids[s] = id
	v.added = append(v.added, addedTokenJSON{ID: id, Content: s, Special: true})
	return nil
}

// model completes the vocabulary and returns tokenizer.json's model (a BPE
// without merges), pre-tokenizer and decoder sections.
func (v *charVocab) model(opts CharOptions) (model map[string]any, pre, dec any, err error) {
	model = map[string]any{
		"type": "BPE", "dropout": nil, "continuing_subword_prefix": nil,
		"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false,
		"ignore_merges": false, "merges": []string{}, "vocab": v.ids,
	}
	if opts.ByteLevel {
		for b := 0; b < 256; b++ {
			v.ids[string(byteToRune[b])] = len(v.ids)
		}
		model["unk_token"] = nil
		pre = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
		dec = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
		return model, pre, dec, nil
	}
	if err := v.addSpecial("<unk>"); err != nil {
		return nil, nil, nil, err
	}
	model["unk_token"] = "<unk>"
	for i, r := range opts.Chars {
		if r == utf8.RuneError {
			return nil, nil, nil, fmt.Errorf("char tokenizer: invalid UTF-8 at byte %d of Chars", i)
		}
		if _, dup := v.ids[string(r)]; !dup {
			v.ids[string(r)] = len(v.ids)
		}
	}
	return model, nil, map[string]any{"type": "Fuse"}, nil
}

// charConfig is tokenizer_config.json for opts over the vocabulary ids.
func charConfig(opts CharOptions, ids map[string]int) (map[string]any, error) {
	cfg := map[string]any{
		"clean_up_tokenization_spaces": false,
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"model_max_length":             1 << 20,
	}
	for key, name := range map[string]string{"bos_token": opts.BOS, "eos_token": opts.EOS, "pad_token": opts.PAD} {
		if name == "" {
			continue
		}
		if _, ok := ids[name]; !ok {
			return nil, fmt.Errorf("char tokenizer: %s %q is not a special token", key, name)
		}
		cfg[key] = name
	}
	if !opts.ByteLevel {
		cfg["unk_token"] = "<unk>"
	}
	if opts.ChatTemplate != "" {
		// Hugging Face tools expect a Jinja string here, not a name.
		cfg["chat_template"] = BuiltinChatJinja(opts.ChatTemplate)
	}
	return cfg, nil
}

// bosPostProcessor is a TemplateProcessing post-processor that prepends
// bos (of the given id) to every sequence.
func bosPostProcessor(bos string, id int) any {
	special := map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 0}}
	seq := func(name string, typeID int) any {
		return map[string]any{"Sequence": map[string]any{"id": name, "type_id": typeID}}
	}
	return map[string]any{
		"type":           "TemplateProcessing",
		"single":         []any{special, seq("A", 0)},
		"pair":           []any{special, seq("A", 0), seq("B", 1)},
		"special_tokens": map[string]any{bos: map[string]any{"id": bos, "ids": []int{id}, "tokens": []string{bos}}},
	}
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
