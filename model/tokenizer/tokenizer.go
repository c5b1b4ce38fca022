// Package tokenizer encodes and decodes text exactly as a model's Hugging
// Face tokenizer.json does, for the BPE tokenizers of Llama-family models:
// byte-level BPE (GPT-2, Llama 3, Qwen2/2.5/3, SmolLM) and SentencePiece-style
// BPE with byte fallback (Llama 2, Mistral, TinyLlama). It also renders chat
// templates and writes small character-level tokenizers for synthetic tasks.
//
// Ids are checked against @lenml/tokenizers, a JavaScript port of the
// reference implementation, on real tokenizer files (see the tests). Where
// that port and the Rust tokenizers disagree, this package follows Rust
// for features the tested files do not use (Metaspace splitting, added
// tokens with single_word or normalized set) and the port otherwise (its
// \s, ASCII-only case folding of contractions, clean_up_tokenization_spaces
// defaulting to true).
//
// Pipeline: added tokens are cut out of the raw text first (leftmost,
// longest match); each remaining section is normalized, pre-tokenized into
// pieces and encoded piece by piece with BPE (lowest merge rank first,
// leftmost on ties), with a cache of frequent pieces. The regex patterns of
// GPT-2, Llama 3 and Qwen2/3 are matched by hand-written scanners; other
// patterns go to regexp2. Byte-level models keep their vocabulary as raw
// bytes, so any byte string round-trips through Encode and Decode (given
// no normalizer and CleanUpSpaces off).
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Tokenizer is a loaded tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	model      *bpeModel
	normalizer normalizer
	pre        preTokenizer
	post       []postItem // nil: nothing added around the text
	decoder    decoder
	// plainByteLevelDecoder: the decoder is ByteLevel alone (or absent).
	plainByteLevelDecoder bool

	added       []AddedToken
	addedByText map[string]int // content -> index in added
	addedByID   map[int]int
	rawAdded    addedSet // matched in the input text
	normAdded   addedSet // normalized=true tokens, matched after normalization
	special     map[string]bool

	// CleanUpSpaces applies clean_up_tokenization_spaces in Decode (removes
	// the space before . , ! ? and English contractions). It comes from
	// tokenizer_config.json and defaults to true, as in the reference;
	// turn it off when decoded text must round-trip exactly.
	CleanUpSpaces bool

	bos, eos, pad, unk int
	chat               ChatTemplate
	chatSource         string
	defaultSystem      string // ChatML's system prompt when none is given
	jinja              jinjaState
}

// AddedToken is a token matched in the raw text before the model runs, such
// as "<|im_start|>".
type AddedToken struct {
	ID      int
	Content string
	Special bool // skipped by Decode(ids, true)
	LStrip  bool // swallows whitespace on its left
	RStrip  bool // swallows whitespace on its right
	// SingleWord matches the token only where it is not glued to a
	// letter or digit on either side.
	SingleWord bool
	// Normalized tokens are matched in the normalized text (their content
	// normalized too); the others in the raw input. Without a normalizer
	// there is no difference.
	Normalized bool
}

type postItem struct {
	ids      []int // special-token ids; nil for the text itself
	sequence bool
}

// LoadDir loads tokenizer.json and, when present, tokenizer_config.json
// from a model directory.
func LoadDir(dir string) (*Tokenizer, error) {
	cfg := filepath.Join(dir, "tokenizer_config.json")
	if _, err := os.Stat(cfg); errors.Is(err, os.ErrNotExist) {
		cfg = ""
	}
	return LoadFiles(filepath.Join(dir, "tokenizer.json"), cfg)
}

// Load loads a tokenizer.json file, and the tokenizer_config.json next to
// it when there is one.
func Load(path string) (*Tokenizer, error) {
	cfg := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	if _, err := os.Stat(cfg); errors.Is(err, os.ErrNotExist) {
		cfg = ""
	}
	return LoadFiles(path, cfg)
}

// LoadFiles loads a tokenizer.json and an optional tokenizer_config.json
// (configPath "" for none).
func LoadFiles(tokenizerPath, configPath string) (*Tokenizer, error) {
	data, err := os.ReadFile(tokenizerPath)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	var cfgData []byte
	if configPath != "" {
		cfgData, err = os.ReadFile(configPath)
		if err != nil {
			return nil, fmt.Errorf("load tokenizer config: %w", err)
		}
	}
	t, err := FromJSON(data, cfgData)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", tokenizerPath, err)
	}
	return t, nil
}

// FromJSON builds a tokenizer from the contents of tokenizer.json and
// tokenizer_config.json (config may be nil).
func FromJSON(tokenizerJSON, configJSONData []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(tokenizerJSON, &f); err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	var cfg configJSON
	if len(configJSONData) > 0 {
		if err := json.Unmarshal(configJSONData, &cfg); err != nil {
			return nil, fmt.Errorf("parse tokenizer_config.json: %w", err)
		}
	}
	t := &Tokenizer{CleanUpSpaces: true, bos: -1, eos: -1, pad: -1, unk: -1}
	if cfg.CleanUpTokenizationSpaces != nil {
		t.CleanUpSpaces = *cfg.CleanUpTokenizationSpaces
	}
	var err error
	if t.normalizer, err = buildNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	var byteLevel bool
	if t.pre, byteLevel, err = buildPreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if f.Decoder != nil && f.Decoder.Type == "ByteLevel" && f.PreTokenizer == nil {
		byteLevel = true
	}
	if t.model, err = newBPEModel(f.Model, byteLevel); err != nil {
		return nil, err
	}
	if t.decoder, err = buildDecoder(f.Decoder); err != nil {
		return nil, err
	}
	t.plainByteLevelDecoder = f.Decoder == nil || f.Decoder.Type == "ByteLevel"
	if err := t.setAddedTokens(f.AddedTokens, cfg); err != nil {
		return nil, err
	}
	if t.post, err = buildPostProcessor(f.PostProcessor, t); err != nil {
		return nil, err
	}
	t.bos = t.lookupSpecial(cfg.BOSToken)
	t.eos = t.lookupSpecial(cfg.EOSToken)
	t.pad = t.lookupSpecial(cfg.PADToken)
	t.unk = t.lookupSpecial(cfg.UNKToken)
	if t.unk < 0 && t.model.unk >= 0 {
		t.unk = int(t.model.unk)
	}
	if t.pad < 0 {
		t.pad = t.eos // as the reference: pad falls back to eos
	}
	if err := t.setChatTemplate(cfg.ChatTemplate); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tokenizer) setAddedTokens(list []addedTokenJSON, cfg configJSON) error {
	t.addedByText = map[string]int{}
	t.addedByID = map[int]int{}
	t.special = map[string]bool{}
	for _, a := range list {
		if a.Content == "" {
			return fmt.Errorf("added token %d has empty content", a.ID)
		}
		if a.ID < 0 || a.ID > MaxTokenID {
			return fmt.Errorf("added_tokens: token %q has id %d; ids must be in 0..%d", a.Content, a.ID, MaxTokenID)
		}
		at := AddedToken{ID: a.ID, Content: a.Content, Special: a.Special, LStrip: a.LStrip, RStrip: a.RStrip, SingleWord: a.SingleWord, Normalized: a.Normalized}
		idx := len(t.added)
		if prev, ok := t.addedByText[a.Content]; ok {
			t.added[prev] = at // a later entry for the same text wins
			idx = prev
		} else {
			t.added = append(t.added, at)
		}
		t.addedByText[a.Content] = idx
		t.addedByID[a.ID] = idx
		if a.Special {
			t.special[a.Content] = true
		}
	}
	for _, s := range cfg.AdditionalSpecialTokens {
		t.special[s.Content] = true
	}
	for i, a := range t.added {
		if a.Normalized && t.normalizer != nil {
			if c := t.normalizer(a.Content); c != "" {
				t.normAdded.add(i, c)
			}
		} else {
			t.rawAdded.add(i, a.Content)
		}
	}
	t.rawAdded.sort()
	t.normAdded.sort()
	return nil
}

// addedSet finds added tokens in text: for each first byte, the candidate
// spellings, longest first, so the leftmost match is also the longest.
type addedSet struct {
	n     int
	first [256][]addedEntry
}

type addedEntry struct {
	idx  int // into Tokenizer.added
	text string
}

func (s *addedSet) add(idx int, text string) {
	s.first[text[0]] = append(s.first[text[0]], addedEntry{idx, text})
	s.n++
}

func (s *addedSet) sort() {
	for b := range s.first {
		l := s.first[b]
		sort.SliceStable(l, func(i, j int) bool { return len(l[i].text) > len(l[j].text) })
	}
}

func buildPostProcessor(c *componentJSON, t *Tokenizer) ([]postItem, error) {
	if c == nil {
		return nil, nil
	}
	switch c.Type {
	case "ByteLevel":
		return nil, nil
	case "Sequence":
		var out []postItem
		for i := range c.Processors {
			p, err := buildPostProcessor(&c.Processors[i], t)
			if err != nil {
				return nil, err
			}
			if p != nil {
				if out != nil {
					return nil, fmt.Errorf("post-processor: more than one template in a Sequence")
				}
				out = p
			}
		}
		return out, nil
	case "TemplateProcessing":
		var out []postItem
		for _, it := range c.Single {
			switch {
			case it.Sequence != nil:
				if it.Sequence.ID != "A" {
					return nil, fmt.Errorf("TemplateProcessing: single template refers to sequence %q", it.Sequence.ID)
				}
				out = append(out, postItem{sequence: true})
			case it.SpecialToken != nil:
				st, ok := c.SpecialTokens[it.SpecialToken.ID]
				var ids []int
				if ok {
					ids = st.IDs
				} else if id, found := t.TokenID(it.SpecialToken.ID); found {
					ids = []int{id}
				} else {
					return nil, fmt.Errorf("TemplateProcessing: unknown special token %q", it.SpecialToken.ID)
				}
				out = append(out, postItem{ids: ids})
			}
		}
		if out == nil {
			out = []postItem{{sequence: true}}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("post-processor type %q is not supported", c.Type)
	}
}

func (t *Tokenizer) lookupSpecial(f tokenField) int {
	if !f.Set {
		return -1
	}
	id, ok := t.TokenID(f.Content)
	if !ok {
		return -1
	}
	return id
}

// TokenID returns the id of a token given as written in tokenizer.json
// (byte-level spelling such as "Ġthe" for byte-level models) or as an
// added token's content.
func (t *Tokenizer) TokenID(tok string) (int, bool) {
	if i, ok := t.addedByText[tok]; ok {
		return t.added[i].ID, true
	}
	key := tok
	if t.model.byteLevel {
		raw, ok := byteLevelDecode(tok)
		if !ok {
			return -1, false
		}
		key = raw
	}
	id, ok := t.model.vocab[key]
	return id, ok
}

// Token returns the spelling of an id in tokenizer.json ("" when unknown).
func (t *Tokenizer) Token(id int) string {
	if i, ok := t.addedByID[id]; ok {
		return t.added[i].Content
	}
	if id >= 0 && id < len(t.model.idToToken) {
		return t.model.idToToken[id]
	}
	return ""
}

// VocabSize is one more than the largest id, added tokens included.
func (t *Tokenizer) VocabSize() int {
	n := len(t.model.idToToken)
	for _, a := range t.added {
		n = max(n, a.ID+1)
	}
	return n
}

// BOS, EOS, PAD and UNK return the special-token ids named in
// tokenizer_config.json, or -1. PAD falls back to EOS.
func (t *Tokenizer) BOS() int { return t.bos }
func (t *Tokenizer) EOS() int { return t.eos }
func (t *Tokenizer) PAD() int { return t.pad }
func (t *Tokenizer) UNK() int { return t.unk }

// AddedTokens lists the added tokens.
func (t *Tokenizer) AddedTokens() []AddedToken { return append([]AddedToken(nil), t.added...) }

// IsSpecial tells whether id is a special token (skipped by Decode with
// skipSpecial).
func (t *Tokenizer) IsSpecial(id int) bool {
	i, ok := t.addedByID[id]
	if ok {
		return t.special[t.added[i].Content]
	}
	return t.special[t.Token(id)]
}

// ByteLevel tells whether the model is byte-level BPE: any byte string then
// round-trips through Encode and Decode.
func (t *Tokenizer) ByteLevel() bool { return t.model.byteLevel }

// Encode returns the token ids of text. Added tokens such as
// "<|im_start|>" are recognised anywhere in the text. addSpecial adds what
// the post-processor template adds (Llama 2's <s>, for example).
//
// Byte-level models encode the raw bytes of text, so invalid UTF-8 survives
// a round trip. Other models see invalid UTF-8 replaced by U+FFFD first.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	ids := make([]int, 0, len(text)/3+4)
	if !addSpecial || t.post == nil {
		return t.encodeText(text, ids)
	}
	for _, it := range t.post {
		if it.sequence {
			ids = t.encodeText(text, ids)
		} else {
			ids = append(ids, it.ids...)
		}
	}
	return ids
}

// EncodeBatch encodes texts in parallel, one goroutine per CPU.
func (t *Tokenizer) EncodeBatch(texts []string, addSpecial bool) [][]int {
	out := make([][]int, len(texts))
	workers := min(runtime.GOMAXPROCS(0), len(texts))
	if workers <= 1 {
		for i, s := range texts {
			out[i] = t.Encode(s, addSpecial)
		}
		return out
	}
	var next int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	const chunk = 16
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				start := int(next)
				next += chunk
				mu.Unlock()
				if start >= len(texts) {
					return
				}
				for i := start; i < min(start+chunk, len(texts)); i++ {
					out[i] = t.Encode(texts[i], addSpecial)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// section is a stretch of input: either an added token or text.
type section struct {
	text       string
	added      int // index into t.added, or -1
	first      bool
	normalized bool // text has been normalized already
}

// splitAdded cuts text at the added tokens of set (leftmost, longest
// match) and applies their lstrip/rstrip to the neighbouring text. first
// tells whether text starts the input.
func (t *Tokenizer) splitAdded(text string, set *addedSet, first bool, dst []section) []section {
	if set.n == 0 {
		return append(dst, section{text: text, added: -1, first: first})
	}
	base := len(dst)
	start := 0
	for i := 0; i < len(text); {
		matched := -1
		mlen := 0
		for _, c := range set.first[text[i]] {
			if strings.HasPrefix(text[i:], c.text) && (!t.added[c.idx].SingleWord || isSingleWord(text, i, i+len(c.text))) {
				matched, mlen = c.idx, len(c.text)
				break
			}
		}
		if matched < 0 {
			i++
			continue
		}
		if i > start {
			dst = append(dst, section{text: text[start:i], added: -1, first: first && start == 0})
		}
		dst = append(dst, section{text: text[i : i+mlen], added: matched, first: first && i == 0})
		i += mlen
		start = i
	}
	if start < len(text) {
		dst = append(dst, section{text: text[start:], added: -1, first: first && start == 0})
	}
	secs := dst[base:]
	for i, s := range secs {
		if s.added < 0 {
			continue
		}
		a := t.added[s.added]
		if a.LStrip && i > 0 && secs[i-1].added < 0 {
			secs[i-1].text = strings.TrimRightFunc(secs[i-1].text, isSpaceJS)
		}
		if a.RStrip && i+1 < len(secs) && secs[i+1].added < 0 {
			secs[i+1].text = strings.TrimLeftFunc(secs[i+1].text, isSpaceJS)
		}
	}
	return dst
}

// isSingleWord tells whether text[start:end] has no letter or digit right
// before or after it.
func isSingleWord(text string, start, end int) bool {
	wordChar := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) }
	if start > 0 {
		if r, _ := utf8.DecodeLastRuneInString(text[:start]); wordChar(r) {
			return false
		}
	}
	if end < len(text) {
		if r, _ := utf8.DecodeRuneInString(text[end:]); wordChar(r) {
			return false
		}
	}
	return true
}

func (t *Tokenizer) encodeText(text string, ids []int) []int {
	if !t.model.byteLevel {
		text = ValidUTF8(text)
	}
	sc := scratchPool.Get().(*scratch)
	defer func() {
		// Drop references into text before pooling the buffers.
		clear(sc.pieces)
		clear(sc.tmp)
		clear(sc.sections)
		scratchPool.Put(sc)
	}()
	sc.sections = t.splitAdded(text, &t.rawAdded, true, sc.sections[:0])
	for k := 0; k < len(sc.sections); k++ {
		s := sc.sections[k]
		if s.added >= 0 {
			ids = append(ids, t.added[s.added].ID)
			continue
		}
		x := s.text
		if x == "" {
			continue
		}
		if t.normalizer != nil && !s.normalized {
			x = t.normalizer(x)
			if x == "" {
				continue
			}
			if t.normAdded.n > 0 {
				// Split the normalized text at normalized added tokens
				// and handle the pieces in order, in place of this one.
				n := len(sc.sections)
				sc.sections = t.splitAdded(x, &t.normAdded, s.first, sc.sections)
				for j := n; j < len(sc.sections); j++ {
					sc.sections[j].normalized = true
				}
				sc.sections = append(sc.sections[:k+1], append(sc.sections[n:], sc.sections[k+1:n]...)...)
				continue
			}
		}
		pieces := sc.pieces[:0]
		if t.pre != nil {
			pieces = t.pre.split(x, s.first, pieces, sc)
		} else {
			pieces = append(pieces, x)
		}
		sc.pieces = pieces
		start := len(ids)
		for _, p := range pieces {
			ids = t.model.encodePiece(p, ids)
		}
		if t.model.fuseUnk && t.model.unk >= 0 {
			ids = append(ids[:start], fuseUnk(ids[start:], int(t.model.unk))...)
		}
	}
	return ids
}

func fuseUnk(ids []int, unk int) []int {
	out := ids[:0]
	for i, id := range ids {
		if id == unk && i > 0 && ids[i-1] == unk {
			continue
		}
		out = append(out, id)
	}
	return out
}

// Decode turns ids back into text; skipSpecial drops special tokens. Ids
// outside the vocabulary are skipped. For byte-level models the result is
// the exact bytes the ids stand for, which may be invalid UTF-8 when ids end
// mid-character (pass it through ValidUTF8 for display).
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	// The usual byte-level case: model tokens are stored as raw bytes, so
	// the ByteLevel decoder has nothing left to do.
	rawBytes := t.model.byteLevel && t.plainByteLevelDecoder
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if i, ok := t.addedByID[id]; ok {
			a := t.added[i]
			if skipSpecial && t.special[a.Content] {
				continue
			}
			toks = append(toks, a.Content)
			continue
		}
		if id < 0 || id >= len(t.model.idToRaw) {
			continue
		}
		if skipSpecial && t.special[t.model.idToToken[id]] {
			continue
		}
		if t.model.byteLevel && !rawBytes {
			// A decoder chain expects the tokenizer.json spelling.
			toks = append(toks, t.model.idToToken[id])
		} else {
			toks = append(toks, t.model.idToRaw[id])
		}
	}
	var out string
	switch {
	case rawBytes:
		out = strings.Join(toks, "")
	case t.decoder != nil:
		added := func(s string) bool { _, ok := t.addedByText[s]; return ok }
		out = strings.Join(t.decoder(toks, added), "")
	default:
		out = strings.Join(toks, " ")
	}
	if t.CleanUpSpaces {
		out = cleanUpSpaces(out)
	}
	return out
}
