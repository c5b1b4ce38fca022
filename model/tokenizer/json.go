package tokenizer

import (
	"encoding/json"
	"fmt"
)

// fileJSON mirrors the parts of a Hugging Face tokenizer.json that this
// package reads. Components are kept raw and decoded by their builders so a
// missing or null component stays distinguishable from an empty one.
type fileJSON struct {
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    *componentJSON   `json:"normalizer"`
	PreTokenizer  *componentJSON   `json:"pre_tokenizer"`
	PostProcessor *componentJSON   `json:"post_processor"`
	Decoder       *componentJSON   `json:"decoder"`
	Model         modelJSON        `json:"model"`
}

type addedTokenJSON struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelJSON struct {
	Type                    string          `json:"type"`
	Vocab                   json.RawMessage `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
	UnkToken                *string         `json:"unk_token"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	Dropout                 *float64        `json:"dropout"`
}

// componentJSON is the union of the fields of every normalizer,
// pre-tokenizer, post-processor and decoder this package understands; each
// builder reads the fields of its own type.
type componentJSON struct {
	Type string `json:"type"`

	// Sequence variants.
	Normalizers   []componentJSON `json:"normalizers"`
	Pretokenizers []componentJSON `json:"pretokenizers"`
	Decoders      []componentJSON `json:"decoders"`
	Processors    []componentJSON `json:"processors"`

	// Replace, Split, Strip decoder, Prepend.
	Pattern  *patternJSON `json:"pattern"`
	Content  string       `json:"content"`
	Prepend  string       `json:"prepend"`
	Behavior string       `json:"behavior"`
	Invert   bool         `json:"invert"`
	Start    int          `json:"start"`
	Stop     int          `json:"stop"`

	// Strip normalizer.
	StripLeft  bool `json:"strip_left"`
	StripRight bool `json:"strip_right"`

	// ByteLevel, Metaspace, Digits.
	AddPrefixSpace   *bool  `json:"add_prefix_space"`
	UseRegex         *bool  `json:"use_regex"`
	TrimOffsets      bool   `json:"trim_offsets"`
	Replacement      string `json:"replacement"`
	PrependScheme    string `json:"prepend_scheme"`
	Split            *bool  `json:"split"`
	IndividualDigits bool   `json:"individual_digits"`

	// TemplateProcessing.
	Single        []templateItemJSON          `json:"single"`
	Pair          []templateItemJSON          `json:"pair"`
	SpecialTokens map[string]specialTokenJSON `json:"special_tokens"`
}

type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

type templateItemJSON struct {
	SpecialToken *struct {
		ID     string `json:"id"`
		TypeID int    `json:"type_id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID     string `json:"id"`
		TypeID int    `json:"type_id"`
	} `json:"Sequence"`
}

type specialTokenJSON struct {
	ID     string   `json:"id"`
	IDs    []int    `json:"ids"`
	Tokens []string `json:"tokens"`
}

// configJSON is the part of tokenizer_config.json this package reads.
type configJSON struct {
	BOSToken                  tokenField      `json:"bos_token"`
	EOSToken                  tokenField      `json:"eos_token"`
	PADToken                  tokenField      `json:"pad_token"`
	UNKToken                  tokenField      `json:"unk_token"`
	ChatTemplate              json.RawMessage `json:"chat_template"`
	CleanUpTokenizationSpaces *bool           `json:"clean_up_tokenization_spaces"`
	AdditionalSpecialTokens   []tokenField    `json:"additional_special_tokens"`
}

// tokenField is a special-token entry of tokenizer_config.json: either a
// plain string or an AddedToken object with a "content" field.
type tokenField struct {
	Content string
	Set     bool
}

func (t *tokenField) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		t.Content, t.Set = s, true
		return nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return fmt.Errorf("special token: want a string or an object with content, got %s", b)
	}
	t.Content, t.Set = obj.Content, true
	return nil
}

// parseMerges accepts both serialisations of BPE merges: "a b" strings
// (tokenizers < 0.20) and ["a", "b"] pairs, which can hold tokens with spaces.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var asStrings []string
	if err := json.Unmarshal(raw, &asStrings); err == nil {
		out := make([][2]string, len(asStrings))
		for i, m := range asStrings {
			a, b, ok := cutSpace(m)
			if !ok {
				return nil, fmt.Errorf("merge %d %q: want two tokens separated by a space", i, m)
			}
			out[i] = [2]string{a, b}
		}
		return out, nil
	}
	var asPairs [][]string
	if err := json.Unmarshal(raw, &asPairs); err != nil {
		return nil, fmt.Errorf("merges: want strings or pairs: %w", err)
	}
	out := make([][2]string, len(asPairs))
	for i, p := range asPairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("merge %d: want a pair, got %d items", i, len(p))
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

// cutSpace splits "a b" at its first space, as the reference implementations do.
func cutSpace(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}
