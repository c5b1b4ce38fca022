package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rltrain/rltrain/model/tokenizer"
)

// The files besides the weights that make a directory a complete Hugging
// Face model: the tokenizer with its config (whose chat_template is the
// Jinja string the run used), special_tokens_map.json carried over from
// the source, and generation_config.json (the source's, or one naming the
// end-of-sequence ids and the sampling the policy was trained with).
const (
	tokenizerFileName   = "tokenizer.json"
	tokenizerConfigName = "tokenizer_config.json"
	specialTokensName   = "special_tokens_map.json"
	generationName      = "generation_config.json"
)

// TokenizerFiles holds the tokenizer's files as loaded and what else a
// saved model directory carries over from its source.
type TokenizerFiles struct {
	Tokenizer        []byte // tokenizer.json
	Config           []byte // tokenizer_config.json; nil when the source has none
	SpecialTokens    []byte // special_tokens_map.json; nil when the source has none
	GenerationConfig []byte // generation_config.json of the source model; nil when none
}

// ReadTokenizerFiles reads the tokenizer files of a model directory or of
// a tokenizer.json path (its directory supplies the others).
func ReadTokenizerFiles(path string) (TokenizerFiles, error) {
	var f TokenizerFiles
	dir, file := path, filepath.Join(path, tokenizerFileName)
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		dir, file = filepath.Dir(path), path
	}
	var err error
	if f.Tokenizer, err = os.ReadFile(file); err != nil {
		return f, err
	}
	for _, opt := range []struct {
		name string
		dst  *[]byte
	}{{tokenizerConfigName, &f.Config}, {specialTokensName, &f.SpecialTokens}} {
		b, err := os.ReadFile(filepath.Join(dir, opt.name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return f, err
		}
		*opt.dst = b
	}
	return f, nil
}

// readGenerationConfig reads a model directory's generation_config.json,
// nil when it has none.
func readGenerationConfig(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, generationName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// tokenizerConfigWithTemplate returns tokenizer_config.json with
// chat_template set to the Jinja source the tokenizer renders with (the
// model's own, a model.chat_template file, or a built-in format written in
// Jinja), every other entry kept as it was.
func tokenizerConfigWithTemplate(cfg []byte, tok *tokenizer.Tokenizer) ([]byte, error) {
	src := tok.ChatTemplateSource()
	if src == "" {
		return cfg, nil
	}
	fields := map[string]json.RawMessage{}
	if len(cfg) > 0 {
		if err := json.Unmarshal(cfg, &fields); err != nil {
			return nil, fmt.Errorf("%s: %w", tokenizerConfigName, err)
		}
	}
	if old, ok := fields["chat_template"]; ok {
		var s string
		if json.Unmarshal(old, &s) == nil && s == src {
			return cfg, nil // unchanged: keep the file byte for byte
		}
	}
	js, err := json.Marshal(src)
	if err != nil {
		return nil, err
	}
	fields["chat_template"] = js
	return json.MarshalIndent(fields, "", "  ")
}

// generationConfig is the generation_config.json of a model trained here
// from a source without one: the end-of-sequence ids it stops on and the
// sampling parameters of its rollouts.
func generationConfig(bos int, eos []int32, pad int, temperature, topP float64, topK int) ([]byte, error) {
	g := map[string]any{}
	if bos >= 0 {
		g["bos_token_id"] = bos
	}
	switch len(eos) {
	case 0:
	case 1:
		g["eos_token_id"] = eos[0]
	default:
		g["eos_token_id"] = eos
	}
	if pad >= 0 {
		g["pad_token_id"] = pad
	}
	if temperature > 0 {
		g["do_sample"] = true
		g["temperature"] = temperature
		if topP > 0 && topP < 1 {
			g["top_p"] = topP
		}
		if topK > 0 {
			g["top_k"] = topK
		}
	} else {
		g["do_sample"] = false
	}
	return json.MarshalIndent(g, "", "  ")
}

// writeHFFiles writes the tokenizer and generation files of a saved model
// into dir.
func (p *Policy) writeHFFiles(dir string, temperature, topP float64, topK int) error {
	if err := writeSynced(filepath.Join(dir, tokenizerFileName), p.files.Tokenizer); err != nil {
		return err
	}
	tc, err := tokenizerConfigWithTemplate(p.files.Config, p.Tok)
	if err != nil {
		return err
	}
	if tc != nil {
		if err := writeSynced(filepath.Join(dir, tokenizerConfigName), tc); err != nil {
			return err
		}
	}
	if p.files.SpecialTokens != nil {
		if err := writeSynced(filepath.Join(dir, specialTokensName), p.files.SpecialTokens); err != nil {
			return err
		}
	}
	gen := p.files.GenerationConfig
	if gen == nil {
		if gen, err = generationConfig(p.Tok.BOS(), p.EOS, p.Tok.PAD(), temperature, topP, topK); err != nil {
			return err
		}
	}
	return writeSynced(filepath.Join(dir, generationName), gen)
}

// WriteTo writes the tokenizer files (those present) into dir, as they
// were read.
func (f TokenizerFiles) WriteTo(dir string) error {
	for _, file := range []struct {
		name string
		data []byte
	}{{tokenizerFileName, f.Tokenizer}, {tokenizerConfigName, f.Config}, {specialTokensName, f.SpecialTokens}} {
		if file.data == nil {
			continue
		}
		if err := writeSynced(filepath.Join(dir, file.name), file.data); err != nil {
			return fmt.Errorf("write %s: %w", file.name, err)
		}
	}
	return nil
}
