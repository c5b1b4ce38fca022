package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpeModel is a byte-pair-encoding model over token ids. In byte-level mode
// the vocabulary is keyed by raw bytes (the GPT-2 alphabet is undone at
// load time), so pieces of the input are encoded without first rewriting
// them into "Ġ"-style text. In character mode the initial symbols are runes
// and characters outside the vocabulary fall back to <0xXX> byte tokens or
// the unknown token.
type bpeModel struct {
	byteLevel    bool
	vocab        map[string]int // raw bytes in byte-level mode, text otherwise
	idToToken    []string       // tokenizer.json spelling, for display
	idToRaw      []string       // what an id decodes to before the decoder chain
	merges       map[uint64]mergeRule
	byteIDs      [256]int32 // byte-level: the single-byte tokens; char mode: <0xXX>
	runeIDs      map[rune]int32
	unk          int32
	byteFallback bool
	fuseUnk      bool
	ignoreMerges bool
	cache        wordCache
	// wordStart, when set, is SentencePiece's "▁" and no token holds it
	// except as a prefix run, so no token can span a "▁" that follows
	// another character. Pieces are then cut before such a "▁" and
	// encoded one word at a time: same ids, and cacheable words instead of
	// one BPE over a whole paragraph.
	wordStart string
}

type mergeRule struct {
	rank   int32
	result int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func newBPEModel(m modelJSON, byteLevel bool) (*bpeModel, error) {
	if err := checkBPEOptions(m); err != nil {
		return nil, err
	}
	vocab, merges, err := readBPE(m)
	if err != nil {
		return nil, err
	}
	maxID := -1
	for _, id := range vocab {
		maxID = max(maxID, id)
	}
	b := &bpeModel{
		byteLevel:    byteLevel,
		vocab:        make(map[string]int, len(vocab)),
		idToToken:    make([]string, maxID+1),
		idToRaw:      make([]string, maxID+1),
		merges:       make(map[uint64]mergeRule, len(merges)),
		runeIDs:      map[rune]int32{},
		unk:          -1,
		byteFallback: m.ByteFallback,
		fuseUnk:      m.FuseUnk,
		ignoreMerges: m.IgnoreMerges,
	}
	b.cache.init()
	b.indexVocab(vocab)
	if m.UnkToken != nil {
		id, ok := vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("BPE unk_token %q is not in the vocabulary", *m.UnkToken)
		}
		b.unk = int32(id)
	}
	b.indexMerges(merges)
	return b, nil
}

// checkBPEOptions rejects the models and BPE options the encoder does not
// implement.
func checkBPEOptions(m modelJSON) error {
	switch m.Type {
	case "BPE", "":
	case "WordPiece", "Unigram", "WordLevel":
		return fmt.Errorf("model type %s is not supported (only BPE)", m.Type)
	default:
		return fmt.Errorf("unknown model type %q (only BPE is supported)", m.Type)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" {
		return fmt.Errorf("BPE continuing_subword_prefix %q is not supported", *m.ContinuingSubwordPrefix)
	}
	if m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return fmt.Errorf("BPE end_of_word_suffix %q is not supported", *m.EndOfWordSuffix)
	}
	if m.Dropout != nil && *m.Dropout > 0 {
		return fmt.Errorf("BPE dropout %g is not supported (encoding must be deterministic)", *m.Dropout)
	}
	return nil
}

// readBPE decodes the model's vocabulary and merges, by the fast readers
// where the JSON has their plain shape, and checks them.
func readBPE(m modelJSON) (map[string]int, [][2]string, error) {
	vocab, err := readVocab(m.Vocab)
	if err != nil {
		// Not the plain shape the fast reader expects: let encoding/json
		// decide, and report its error.
		vocab = nil
		if err := json.Unmarshal(m.Vocab, &vocab); err != nil {
			return nil, nil, fmt.Errorf("BPE vocab: %w", err)
		}
	}
	merges, err := readMerges(m.Merges)
	if err != nil {
		if merges, err = parseMerges(m.Merges); err != nil {
			return nil, nil, err
		}
	}
	if err := checkVocab(vocab, merges); err != nil {
		return nil, nil, err
	}
	return vocab, merges, nil
}

// indexVocab fills the lookup tables from the vocabulary: tokens by raw
// bytes (byte-level) or text, the single-byte and single-rune tokens, and
// whether words can be encoded one at a time (wordStart).
func (b *bpeModel) indexVocab(vocab map[string]int) {
	for tok, id := range vocab {
		b.idToToken[id] = tok
		key := tok
		if b.byteLevel {
			raw, ok := byteLevelDecode(tok)
			if !ok {
				// Not reachable from bytes; decodes as its literal text.
				b.idToRaw[id] = tok
				continue
			}
			key = raw
		}
		b.idToRaw[id] = key
		b.vocab[key] = id
	}
	for c := range b.byteIDs {
		b.byteIDs[c] = -1
		key := string([]byte{byte(c)})
		if !b.byteLevel {
			key = fmt.Sprintf("<0x%02X>", c)
		}
		if id, ok := b.vocab[key]; ok {
			b.byteIDs[c] = int32(id)
		}
	}
	if b.byteLevel {
		return
	}
	for tok, id := range b.vocab {
		if r, n := utf8.DecodeRuneInString(tok); n == len(tok) && n > 0 && (r != utf8.RuneError || n > 1) {
			b.runeIDs[r] = int32(id)
		}
	}
	b.wordStart = "▁"
	for tok := range b.vocab {
		if strings.Contains(strings.TrimLeft(tok, "▁"), "▁") {
			b.wordStart = ""
			break
		}
	}
}

// indexMerges ranks the merges by pair of token ids.
func (b *bpeModel) indexMerges(merges [][2]string) {
	for rank, mg := range merges {
		left, right := mg[0], mg[1]
		if b.byteLevel {
			var ok1, ok2 bool
			left, ok1 = byteLevelDecode(left)
			right, ok2 = byteLevelDecode(right)
			if !ok1 || !ok2 {
				continue
			}
		}
		a, okA := b.vocab[left]
		c, okC := b.vocab[right]
		r, okR := b.vocab[left+right]
		if !okA || !okC || !okR {
			// A merge whose parts or result are not tokens can never fire.
			continue
		}
		// A repeated merge keeps its last rank, as the reference does.
		b.merges[pairKey(int32(a), int32(c))] = mergeRule{rank: int32(rank), result: int32(r)}
	}
}

// MaxTokenID bounds the ids a tokenizer may use (the ids index tables, so a
// huge one would be a huge allocation). It is far above any real
// vocabulary (Gemma's 262,144) and matches the model's vocab_size bound.
const MaxTokenID = 1<<22 - 1

// checkVocab rejects what the Hugging Face tokenizers library rejects or
// cannot mean: an empty vocabulary, ids out of range, two tokens sharing an
// id, and merges whose parts or result are not in the vocabulary
// ("MergeTokenOutOfVocabulary").
func checkVocab(vocab map[string]int, merges [][2]string) error {
	if len(vocab) == 0 {
		return errors.New("model.vocab: the BPE vocabulary is empty")
	}
	byID := make(map[int]string, len(vocab))
	for tok, id := range vocab {
		if id < 0 || id > MaxTokenID {
			return fmt.Errorf("model.vocab: token %q has id %d; ids must be in 0..%d", tok, id, MaxTokenID)
		}
		if other, dup := byID[id]; dup {
			a, b := min(tok, other), max(tok, other)
			return fmt.Errorf("model.vocab: tokens %q and %q have the same id %d", a, b, id)
		}
		byID[id] = tok
	}
	for i, mg := range merges {
		for _, part := range []string{mg[0], mg[1], mg[0] + mg[1]} {
			if _, ok := vocab[part]; !ok {
				return fmt.Errorf("model.merges[%d] [%q %q]: token %q is not in the vocabulary", i, mg[0], mg[1], part)
			}
		}
	}
	return nil
}

// encodePiece appends the ids of one pre-tokenized piece.
func (b *bpeModel) encodePiece(piece string, dst []int) []int {
	if b.wordStart == "" || len(piece) <= maxCachedWord && !strings.Contains(piece, b.wordStart) {
		return b.encodeWord(piece, dst)
	}
	ws := b.wordStart
	start := 0
	for i := 0; i < len(piece); {
		j := strings.Index(piece[i:], ws)
		if j < 0 {
			break
		}
		at := i + j
		if at > start && !strings.HasSuffix(piece[start:at], ws) {
			// "▁" after another character starts a new word.
			dst = b.encodeWord(piece[start:at], dst)
			start = at
		}
		i = at + len(ws)
	}
	return b.encodeWord(piece[start:], dst)
}

// encodeWord appends the ids of one word.
func (b *bpeModel) encodeWord(word string, dst []int) []int {
	if len(word) == 0 {
		return dst
	}
	if b.ignoreMerges {
		if id, ok := b.vocab[word]; ok {
			return append(dst, id)
		}
	}
	cacheable := len(word) <= maxCachedWord
	if cacheable {
		if ids, ok := b.cache.get(word); ok {
			for _, id := range ids {
				dst = append(dst, int(id))
			}
			return dst
		}
	}
	w := getWork()
	defer putWork(w)
	b.initSymbols(w, word)
	b.merge(w)
	start := len(dst)
	dst = b.emit(w, word, dst)
	if cacheable {
		ids := make([]int32, len(dst)-start)
		for i, id := range dst[start:] {
			ids[i] = int32(id)
		}
		b.cache.put(word, ids)
	}
	return dst
}

// symbol is one node of the doubly linked list that BPE merges shrink.
type symbol struct {
	id         int32 // -1: a character outside the vocabulary
	prev, next int32
	start, end int32 // byte span in the word
}

type pairItem struct {
	rank        int32
	left, right int32 // symbol indices
	leftID      int32
	rightID     int32
}

type bpeWork struct {
	syms []symbol
	heap []pairItem
}

var workPool = sync.Pool{New: func() any { return &bpeWork{} }}

func getWork() *bpeWork  { return workPool.Get().(*bpeWork) }
func putWork(w *bpeWork) { w.syms, w.heap = w.syms[:0], w.heap[:0]; workPool.Put(w) }

func (b *bpeModel) initSymbols(w *bpeWork, word string) {
	if b.byteLevel {
		for i := 0; i < len(word); i++ {
			w.syms = append(w.syms, symbol{id: b.byteIDs[word[i]], start: int32(i), end: int32(i + 1)})
		}
	} else {
		for i := 0; i < len(word); {
			r, n := utf8.DecodeRuneInString(word[i:])
			id, ok := b.runeIDs[r]
			if !ok || (r == utf8.RuneError && n == 1) {
				id = -1
			}
			w.syms = append(w.syms, symbol{id: id, start: int32(i), end: int32(i + n)})
			i += n
		}
	}
	for i := range w.syms {
		w.syms[i].prev = int32(i - 1)
		w.syms[i].next = int32(i + 1)
	}
	w.syms[len(w.syms)-1].next = -1
}

// merge applies merges lowest rank first, leftmost first among equal ranks,
// which is the order both reference implementations use.
func (b *bpeModel) merge(w *bpeWork) {
	syms := w.syms
	if len(syms) < 2 {
		return
	}
	for i := 0; i+1 < len(syms); i++ {
		b.pushPair(w, int32(i), int32(i+1))
	}
	for len(w.heap) > 0 {
		it := heapPop(&w.heap)
		l, r := &syms[it.left], &syms[it.right]
		if l.id != it.leftID || l.next != it.right || r.id != it.rightID || l.id < 0 {
			continue // stale: one side has merged since this pair was pushed
		}
		rule := b.merges[pairKey(it.leftID, it.rightID)]
		l.id = rule.result
		l.end = r.end
		l.next = r.next
		r.id = -2 // dead
		if r.next >= 0 {
			syms[r.next].prev = it.left
		}
		if l.prev >= 0 {
			b.pushPair(w, l.prev, it.left)
		}
		if l.next >= 0 {
			b.pushPair(w, it.left, l.next)
		}
	}
}

func (b *bpeModel) pushPair(w *bpeWork, left, right int32) {
	a, c := w.syms[left].id, w.syms[right].id
	if a < 0 || c < 0 {
		return
	}
	rule, ok := b.merges[pairKey(a, c)]
	if !ok {
		return
	}
	heapPush(&w.heap, pairItem{rank: rule.rank, left: left, right: right, leftID: a, rightID: c})
}

// emit appends the final symbols' ids, replacing characters outside the
// vocabulary by byte tokens or the unknown token.
func (b *bpeModel) emit(w *bpeWork, word string, dst []int) []int {
	for i := int32(0); i >= 0; i = w.syms[i].next {
		s := w.syms[i]
		if s.id >= 0 {
			dst = append(dst, int(s.id))
			continue
		}
		piece := word[s.start:s.end]
		if b.byteFallback {
			all := true
			for k := 0; k < len(piece); k++ {
				if b.byteIDs[piece[k]] < 0 {
					all = false
					break
				}
			}
			if all {
				for k := 0; k < len(piece); k++ {
					dst = append(dst, int(b.byteIDs[piece[k]]))
				}
				continue
			}
		}
		if b.unk >= 0 {
			if b.fuseUnk && len(dst) > 0 && dst[len(dst)-1] == int(b.unk) {
				continue
			}
			dst = append(dst, int(b.unk))
		}
	}
	return dst
}

func less(a, b pairItem) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.left < b.left
}

func heapPush(h *[]pairItem, it pairItem) {
	*h = append(*h, it)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !less(s[i], s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func heapPop(h *[]pairItem) pairItem {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && less(s[r], s[l]) {
			m = r
		}
		if !less(s[m], s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// maxCachedWord bounds the pieces kept in the word cache: long pieces are
// rare and rarely repeat.
const maxCachedWord = 256

// wordCache memoises the ids of frequent pieces. It is sharded so parallel
// encoders rarely contend, and a shard is simply emptied when full.
type wordCache struct {
	seed   maphash.Seed
	shards [64]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string][]int32
}

const cacheShardCap = 4096

func (c *wordCache) init() {
	c.seed = maphash.MakeSeed()
	for i := range c.shards {
		c.shards[i].m = make(map[string][]int32)
	}
}

func (c *wordCache) shard(word string) *cacheShard {
	return &c.shards[maphash.String(c.seed, word)&63]
}

func (c *wordCache) get(word string) ([]int32, bool) {
	s := c.shard(word)
	s.mu.RLock()
	ids, ok := s.m[word]
	s.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(word string, ids []int32) {
	s := c.shard(word)
	s.mu.Lock()
	if len(s.m) >= cacheShardCap {
		clear(s.m)
	}
	s.m[string([]byte(word))] = ids
	s.mu.Unlock()
}
