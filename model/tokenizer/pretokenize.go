package tokenizer

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// preTokenizer cuts a normalized section into the pieces BPE encodes one by
// one. first tells whether the section starts the input (Metaspace's
// prepend_scheme "first" needs it).
type preTokenizer interface {
	split(s string, first bool, dst []string, sc *scratch) []string
}

// scratch holds buffers reused across one Encode call, so encoding many
// short texts does not allocate per piece.
type scratch struct {
	pieces   []string
	tmp      []string
	spans    [][2]int
	sections []section
}

var scratchPool = sync.Pool{New: func() any { return &scratch{} }}

// Regex patterns of the common byte-level tokenizers. They are matched by
// hand-written scanners, which are several times faster than a
// backtracking regex engine; any other pattern goes to regexp2.
const (
	patternGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	patternQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	patternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// buildPreTokenizer returns the pre-tokenizer for c and whether the pipeline
// is byte-level (contains a ByteLevel step).
func buildPreTokenizer(c *componentJSON) (preTokenizer, bool, error) {
	if c == nil {
		return nil, false, nil
	}
	switch c.Type {
	case "Sequence":
		var seq sequencePre
		byteLevel := false
		for i := range c.Pretokenizers {
			p, bl, err := buildPreTokenizer(&c.Pretokenizers[i])
			if err != nil {
				return nil, false, err
			}
			if byteLevel && c.Pretokenizers[i].Type != "ByteLevel" {
				return nil, false, fmt.Errorf("pre-tokenizer %s after ByteLevel is not supported", c.Pretokenizers[i].Type)
			}
			byteLevel = byteLevel || bl
			seq = append(seq, p)
		}
		return seq, byteLevel, nil
	case "ByteLevel":
		p := &byteLevelPre{useRegex: c.UseRegex == nil || *c.UseRegex, addPrefixSpace: c.AddPrefixSpace != nil && *c.AddPrefixSpace}
		if p.useRegex {
			p.re = scannerSplit{scan: scanGPT2}
		}
		return p, true, nil
	case "Split":
		m, err := newMatcher(c.Pattern)
		if err != nil {
			return nil, false, fmt.Errorf("Split pre-tokenizer: %w", err)
		}
		behavior := strings.ToLower(c.Behavior)
		switch behavior {
		case "isolated", "removed", "mergedwithprevious", "mergedwithnext", "contiguous":
		default:
			return nil, false, fmt.Errorf("Split pre-tokenizer: unknown behavior %q", c.Behavior)
		}
		return &splitPre{m: m, behavior: behavior, invert: c.Invert}, false, nil
	case "Metaspace":
		rep := c.Replacement
		if rep == "" {
			rep = "▁"
		}
		scheme := c.PrependScheme
		if scheme == "" {
			scheme = "always"
			if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
				scheme = "never"
			}
		}
		return &metaspacePre{rep: rep, scheme: scheme, splitOn: c.Split == nil || *c.Split}, false, nil
	case "Digits":
		return digitsPre{individual: c.IndividualDigits}, false, nil
	case "WhitespaceSplit":
		return whitespaceSplitPre{}, false, nil
	default:
		return nil, false, fmt.Errorf("pre-tokenizer type %q is not supported", c.Type)
	}
}

type sequencePre []preTokenizer

func (s sequencePre) split(text string, first bool, dst []string, sc *scratch) []string {
	start := len(dst)
	dst = append(dst, text)
	for _, p := range s {
		// Nested sequences would share sc.tmp; give them their own.
		tmp := sc.tmp[:0]
		if _, nested := p.(sequencePre); nested {
			tmp = nil
		}
		for _, piece := range dst[start:] {
			tmp = p.split(piece, first, tmp, sc)
		}
		dst = append(dst[:start], tmp...)
		if _, nested := p.(sequencePre); !nested {
			sc.tmp = tmp
		}
	}
	return dst
}

// byteLevelPre is GPT-2's pre-tokenizer. The byte-to-rune rewrite itself
// is implicit: the BPE model works on raw bytes in byte-level mode.
type byteLevelPre struct {
	useRegex       bool
	addPrefixSpace bool
	re             scannerSplit
}

func (p *byteLevelPre) split(s string, first bool, dst []string, _ *scratch) []string {
	if p.addPrefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	if !p.useRegex {
		return append(dst, s)
	}
	return p.re.matches(s, dst)
}

// matcher finds consecutive regex matches.
type matcher interface {
	// matches appends, in order, the [start,end) spans of the
	// non-overlapping matches in s.
	spans(s string, dst [][2]int) [][2]int
}

func newMatcher(p *patternJSON) (matcher, error) {
	if p == nil {
		return nil, fmt.Errorf("missing pattern")
	}
	if p.String != nil {
		if *p.String == "" {
			return nil, fmt.Errorf("empty string pattern")
		}
		return literalMatcher(*p.String), nil
	}
	if p.Regex == nil {
		return nil, fmt.Errorf("pattern has neither String nor Regex")
	}
	switch *p.Regex {
	case patternGPT2:
		return scannerSplit{scan: scanGPT2}, nil
	case patternQwen2:
		return scannerSplit{scan: scanGPT4(1)}, nil
	case patternLlama3:
		return scannerSplit{scan: scanGPT4(3)}, nil
	}
	return newRegexMatcher(*p.Regex)
}

type literalMatcher string

func (l literalMatcher) spans(s string, dst [][2]int) [][2]int {
	for i := 0; ; {
		j := strings.Index(s[i:], string(l))
		if j < 0 {
			return dst
		}
		dst = append(dst, [2]int{i + j, i + j + len(l)})
		i += j + len(l)
	}
}

// scannerSplit matches a pattern that covers every character, so its
// matches tile the text and a scanner only needs each match's end.
type scannerSplit struct {
	scan func(s string, i int) int
}

func (m scannerSplit) spans(s string, dst [][2]int) [][2]int {
	for i := 0; i < len(s); {
		j := m.scan(s, i)
		dst = append(dst, [2]int{i, j})
		i = j
	}
	return dst
}

func (m scannerSplit) matches(s string, dst []string) []string {
	for i := 0; i < len(s); {
		j := m.scan(s, i)
		dst = append(dst, s[i:j])
		i = j
	}
	return dst
}

// regexMatcher runs an arbitrary pattern with lookaround through regexp2.
type regexMatcher struct{ re *regexp2.Regexp }

func newRegexMatcher(pattern string) (matcher, error) {
	re, err := regexp2.Compile(jsWhitespace(pattern), regexp2.Unicode)
	if err != nil {
		return nil, fmt.Errorf("compile %q: %w", pattern, err)
	}
	return regexMatcher{re: re}, nil
}

func (m regexMatcher) spans(s string, dst [][2]int) [][2]int {
	// regexp2 reports rune offsets; map them back to byte offsets.
	offs := make([]int, 0, len(s)+1)
	for i := range s {
		offs = append(offs, i)
	}
	offs = append(offs, len(s))
	match, err := m.re.FindStringMatch(s)
	for err == nil && match != nil {
		a := match.Index
		dst = append(dst, [2]int{offs[a], offs[a+match.Length]})
		match, err = m.re.FindNextMatch(match)
	}
	return dst
}

// jsSpaces lists JavaScript's \s, for use inside a character class.
const jsSpaces = `\t\n\v\f\r\x20\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff`

// jsWhitespace rewrites \s and \S in a pattern to JavaScript's definition
// of white space, which regexp2's differs from (U+FEFF, U+0085): the
// reference tokenizers run their patterns in JavaScript. \S inside a
// character class is left alone.
func jsWhitespace(pattern string) string {
	var sb strings.Builder
	inClass := false
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '\\' && i+1 < len(pattern):
			e := pattern[i+1]
			i++
			switch {
			case e == 's' && inClass:
				sb.WriteString(jsSpaces)
			case e == 's':
				sb.WriteString("[" + jsSpaces + "]")
			case e == 'S' && !inClass:
				sb.WriteString("[^" + jsSpaces + "]")
			default:
				sb.WriteByte(c)
				sb.WriteByte(e)
			}
			continue
		case c == '[' && !inClass:
			inClass = true
			sb.WriteByte(c)
			// A ] right after [ or [^ is a literal.
			if i+1 < len(pattern) && pattern[i+1] == '^' {
				sb.WriteByte('^')
				i++
			}
			if i+1 < len(pattern) && pattern[i+1] == ']' {
				sb.WriteByte(']')
				i++
			}
			continue
		case c == ']' && inClass:
			inClass = false
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

type splitPre struct {
	m        matcher
	behavior string
	invert   bool
}

func (p *splitPre) split(s string, first bool, dst []string, sc *scratch) []string {
	if sm, ok := p.m.(scannerSplit); ok && (p.invert || p.behavior == "isolated") {
		// The scanner's matches tile the text: they are the pieces.
		return sm.matches(s, dst)
	}
	spans := p.m.spans(s, sc.spans[:0])
	sc.spans = spans
	if p.invert {
		// The matches are the pieces; the text between them is dropped,
		// as the reference does.
		for _, sp := range spans {
			if sp[1] > sp[0] {
				dst = append(dst, s[sp[0]:sp[1]])
			}
		}
		return dst
	}
	prev := 0
	pendingMerge := -1 // mergedwithnext: start of a match waiting for its gap
	runStart := -1     // contiguous: start of the current run of matches
	for _, sp := range spans {
		gap := s[prev:sp[0]]
		switch p.behavior {
		case "isolated":
			if gap != "" {
				dst = append(dst, gap)
			}
			if sp[1] > sp[0] {
				dst = append(dst, s[sp[0]:sp[1]])
			}
		case "removed":
			if gap != "" {
				dst = append(dst, gap)
			}
		case "mergedwithprevious":
			if sp[1] > sp[0] || gap != "" {
				dst = append(dst, s[prev:sp[1]])
			}
		case "mergedwithnext":
			// Each match starts a piece that runs to the next match.
			if pendingMerge >= 0 {
				dst = append(dst, s[pendingMerge:sp[0]])
			} else if gap != "" {
				dst = append(dst, gap)
			}
			pendingMerge = sp[0]
		case "contiguous":
			// Adjacent matches form one piece.
			if gap != "" {
				dst = append(dst, gap)
			}
			if sp[1] > sp[0] {
				if gap == "" && len(dst) > 0 && runStart >= 0 {
					dst[len(dst)-1] = s[runStart:sp[1]]
				} else {
					dst = append(dst, s[sp[0]:sp[1]])
					runStart = sp[0]
				}
			}
		}
		prev = sp[1]
	}
	if p.behavior == "mergedwithnext" && pendingMerge >= 0 {
		dst = append(dst, s[pendingMerge:])
		return dst
	}
	if prev < len(s) {
		dst = append(dst, s[prev:])
	}
	return dst
}

// metaspacePre is SentencePiece's whitespace handling: spaces become the
// replacement character, one is prepended per the scheme, and the text is
// split before each replacement character when split is set.
type metaspacePre struct {
	rep     string
	scheme  string
	splitOn bool
}

func (p *metaspacePre) split(s string, first bool, dst []string, _ *scratch) []string {
	s = strings.ReplaceAll(s, " ", p.rep)
	if !strings.HasPrefix(s, p.rep) && (p.scheme == "always" || (p.scheme == "first" && first)) {
		s = p.rep + s
	}
	if !p.splitOn {
		return append(dst, s)
	}
	start := 0
	for i := len(p.rep); i < len(s); {
		j := strings.Index(s[i:], p.rep)
		if j < 0 {
			break
		}
		if i+j > start {
			dst = append(dst, s[start:i+j])
		}
		start = i + j
		i = i + j + len(p.rep)
	}
	return append(dst, s[start:])
}

// digitsPre splits ASCII digits from the rest, one by one when individual.
type digitsPre struct{ individual bool }

func (p digitsPre) split(s string, first bool, dst []string, _ *scratch) []string {
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	for i := 0; i < len(s); {
		j := i + 1
		if isDigit(s[i]) {
			if !p.individual {
				for j < len(s) && isDigit(s[j]) {
					j++
				}
			}
		} else {
			for j < len(s) && !isDigit(s[j]) {
				j++
			}
		}
		dst = append(dst, s[i:j])
		i = j
	}
	return dst
}

type whitespaceSplitPre struct{}

func (whitespaceSplitPre) split(s string, first bool, dst []string, _ *scratch) []string {
	for i := 0; i < len(s); {
		c, _, n := classify(s, i)
		if c == clsSpace {
			i += n
			continue
		}
		j := i
		for j < len(s) {
			c, _, n := classify(s, j)
			if c == clsSpace {
				break
			}
			j += n
		}
		dst = append(dst, s[i:j])
		i = j
	}
	return dst
}

// Character classes of the pre-tokenizer patterns. \s follows JavaScript's
// definition (the reference implementation is JavaScript): it includes
// U+FEFF and excludes U+0085 and U+180E.
const (
	clsOther uint8 = iota
	clsLetter
	clsNumber
	clsSpace
)

var asciiClass [128]uint8

func init() {
	for c := 0; c < 128; c++ {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			asciiClass[c] = clsLetter
		case c >= '0' && c <= '9':
			asciiClass[c] = clsNumber
		case c == ' ', c >= '\t' && c <= '\r':
			asciiClass[c] = clsSpace
		default:
			asciiClass[c] = clsOther
		}
	}
}

func isSpaceJS(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

// classify returns the class of the character at s[i] and its width. An
// invalid UTF-8 byte is a one-byte "other" character.
func classify(s string, i int) (uint8, rune, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return asciiClass[c], rune(c), 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	switch {
	case r == utf8.RuneError && n == 1:
		return clsOther, r, 1
	case isSpaceJS(r):
		return clsSpace, r, n
	case unicode.IsLetter(r):
		return clsLetter, r, n
	case unicode.IsNumber(r):
		return clsNumber, r, n
	}
	return clsOther, r, n
}

func spanClass(s string, i int, cls uint8) int {
	for i < len(s) {
		c, _, n := classify(s, i)
		if c != cls {
			break
		}
		i += n
	}
	return i
}

// contraction returns the length of 's 't 're 've 'm 'll 'd at the start of
// s (which begins after the apostrophe), or 0. foldCase accepts ASCII upper
// case, as the reference's rewrite of (?i:...) does.
func contraction(s string, foldCase bool) int {
	lower := func(c byte) byte {
		if foldCase && c >= 'A' && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	if len(s) == 0 {
		return 0
	}
	switch lower(s[0]) {
	case 's', 't', 'm', 'd':
		return 1
	case 'r', 'v':
		if len(s) > 1 && lower(s[1]) == 'e' {
			return 2
		}
	case 'l':
		if len(s) > 1 && lower(s[1]) == 'l' {
			return 2
		}
	}
	return 0
}

// wsMatch resolves the whitespace alternatives shared by the patterns,
// \s+(?!\S)|\s+ : a whitespace run followed by text gives up its last
// character to that text, unless the run is a single character.
func wsMatch(s string, i int) int {
	end := spanClass(s, i, clsSpace)
	if end == len(s) {
		return end
	}
	_, last := utf8.DecodeLastRuneInString(s[i:end])
	if end-last > i {
		return end - last
	}
	return end
}

// scanGPT2 returns the end of the GPT-2 pattern's match at s[i].
func scanGPT2(s string, i int) int {
	if s[i] == '\'' {
		if n := contraction(s[i+1:], false); n > 0 {
			return i + 1 + n
		}
	}
	c0, _, n0 := classify(s, i)
	if c0 == clsSpace && s[i] == ' ' && i+1 < len(s) {
		c1, _, _ := classify(s, i+1)
		if c1 != clsSpace {
			return spanClass(s, i+1, c1)
		}
	}
	if c0 != clsSpace {
		return spanClass(s, i+n0, c0)
	}
	return wsMatch(s, i)
}

// scanGPT4 returns the scanner for the GPT-4-style pattern (Llama 3, Qwen2
// and later) whose number alternative takes up to maxDigits digits.
func scanGPT4(maxDigits int) func(s string, i int) int {
	return func(s string, i int) int {
		b := s[i]
		if b == '\'' {
			if n := contraction(s[i+1:], true); n > 0 {
				return i + 1 + n
			}
		}
		c0, _, n0 := classify(s, i)
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if c0 == clsLetter {
			return spanClass(s, i+n0, clsLetter)
		}
		if c0 != clsNumber && b != '\r' && b != '\n' && i+n0 < len(s) {
			if c1, _, _ := classify(s, i+n0); c1 == clsLetter {
				return spanClass(s, i+n0, clsLetter)
			}
		}
		// \p{N}{1,maxDigits}
		if c0 == clsNumber {
			j := i + n0
			for k := 1; k < maxDigits && j < len(s); k++ {
				c, _, n := classify(s, j)
				if c != clsNumber {
					break
				}
				j += n
			}
			return j
		}
		// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
		start := -1
		if c0 == clsOther {
			start = i
		} else if b == ' ' && i+1 < len(s) {
			if c1, _, _ := classify(s, i+1); c1 == clsOther {
				start = i + 1
			}
		}
		if start >= 0 {
			j := spanClass(s, start, clsOther)
			for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
				j++
			}
			return j
		}
		// \s*[\r\n]+ : up to and including the run's last line break.
		end := spanClass(s, i, clsSpace)
		for j := end - 1; j >= i; j-- {
			if s[j] == '\r' || s[j] == '\n' {
				return j + 1
			}
		}
		return wsMatch(s, i)
	}
}
