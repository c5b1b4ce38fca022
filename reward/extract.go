package reward

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Extraction methods for final answers, tried in the configured order.
const (
	ExtractAnswerTag  = "answer_tag"  // content of the last complete <answer>…</answer>
	ExtractBoxed      = "boxed"       // content of \boxed{…} (nested braces), also \fbox{…}
	ExtractHash       = "hash"        // text after the last "####" on its line (GSM8K style)
	ExtractLastNumber = "last_number" // the last number in the text
	ExtractLastLine   = "last_line"   // the last non-empty line
	ExtractFirstLine  = "first_line"  // the first non-empty line (the synthetic tasks' convention)
	ExtractFull       = "full"        // the whole text, trimmed
)

// DefaultExtract is the extraction order math_answer and arithmetic use.
var DefaultExtract = []string{ExtractAnswerTag, ExtractBoxed, ExtractHash, ExtractLastNumber}

func checkExtract(methods []string, allowed ...string) error {
	if len(methods) == 0 {
		return fmt.Errorf("param \"extract\": empty list")
	}
	for _, m := range methods {
		ok := false
		for _, a := range allowed {
			ok = ok || m == a
		}
		if !ok {
			return fmt.Errorf("param \"extract\": unknown method %q (want one of %s)", m, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// Pick rules when a completion holds several \boxed{} answers.
const (
	PickLast       = "last"       // the last one (default)
	PickFirst      = "first"      // the first one
	PickConsistent = "consistent" // all must be equal, otherwise no answer (stops hedging)
)

// stripThink returns the text after the last </think>. A <think> that is
// never closed means the whole completion is reasoning: no answer.
func stripThink(s string) string {
	if i := strings.LastIndex(s, "</think>"); i >= 0 {
		return s[i+len("</think>"):]
	}
	if strings.Contains(s, "<think>") {
		return ""
	}
	return s
}

// lastTagContent returns the content of the last complete <tag>…</tag>.
func lastTagContent(s, tag string) (string, bool) {
	closeTag := "</" + tag + ">"
	end := strings.LastIndex(s, closeTag)
	if end < 0 {
		return "", false
	}
	start := strings.LastIndex(s[:end], "<"+tag+">")
	if start < 0 {
		return "", false
	}
	return s[start+len(tag)+2 : end], true
}

// boxedContents returns the contents of every complete \boxed{…} and
// \fbox{…}, in order. Unclosed boxes are ignored.
func boxedContents(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], `\boxed`)
		k := strings.Index(s[i:], `\fbox`)
		cmdLen := len(`\boxed`)
		if j < 0 || (k >= 0 && k < j) {
			j, cmdLen = k, len(`\fbox`)
		}
		if j < 0 {
			break
		}
		p := i + j + cmdLen
		for p < len(s) && s[p] == ' ' {
			p++
		}
		if p < len(s) && s[p] == '{' {
			end := matchBrace(s, p)
			if end < 0 {
				i = p + 1
				continue
			}
			out = append(out, s[p+1:end])
			i = end + 1
			continue
		}
		// "\boxed 5": the next space-free token.
		q := p
		for q < len(s) && s[q] != ' ' && s[q] != '$' && s[q] != '\n' {
			q++
		}
		if q > p && p > i+j+cmdLen {
			out = append(out, s[p:q])
		}
		i = p
	}
	return out
}

// hashAnswer returns the text after the last "####", up to the end of line.
func hashAnswer(s string) (string, bool) {
	i := strings.LastIndex(s, "####")
	if i < 0 {
		return "", false
	}
	return headLine(s[i+4:])
}

// firstLine returns the first line of s that is not blank.
func firstLine(s string) (string, bool) {
	return headLine(strings.TrimLeft(s, " \t\r\n"))
}

// headLine returns s up to its first line break, trimmed, and whether
// that is not empty.
func headLine(s string) (string, bool) {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.TrimSpace(s)
	return s, s != ""
}

func lastLine(s string) (string, bool) {
	s = strings.TrimRight(s, " \t\r\n")
	if s == "" {
		return "", false
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	return s, s != ""
}

// lastNumber returns the last number in s as written: sign, digits (any
// Unicode decimal digits), thousands groups, decimal part, a fraction a/b,
// an exponent (e5, ^30, ^{30}) and a percent sign are kept together. A '-'
// counts as a sign only when it does not follow a letter or digit (so the
// last number of "10-5" is 5).
func lastNumber(s string) (string, bool) {
	start, end := -1, -1
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if _, ok := digitValue(r); !ok {
			i += size
			continue
		}
		st := i
		// sign before the number
		if st > 0 {
			pr, psize := utf8.DecodeLastRuneInString(s[:st])
			if pr == '-' || pr == '−' {
				before := st - psize
				ok := true
				if before > 0 {
					bb, _ := utf8.DecodeLastRuneInString(s[:before])
					ok = !isWordRune(bb)
				}
				if ok {
					st = before
				}
			}
		}
		e := scanNumberEnd(s, i)
		start, end = st, e
		i = e
	}
	if start < 0 {
		return "", false
	}
	return s[start:end], true
}

func isWordRune(r rune) bool {
	if r < 0x80 {
		return r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
	}
	_, digit := digitValue(r)
	return digit || (r >= 0xC0 && r != '−' && r != '×' && r != '÷')
}

// scanNumberEnd returns the end of the number whose first digit is at i.
func scanNumberEnd(s string, i int) int {
	i = scanDigits(s, i)
	// thousands groups ",ddd"
	for i+3 < len(s) && s[i] == ',' && countDigits(s, i+1) == 3 {
		i = scanDigits(s, i+1)
	}
	if i+1 < len(s) && s[i] == '.' && countDigits(s, i+1) > 0 {
		i = scanDigits(s, i+1)
	}
	switch {
	case i+1 < len(s) && s[i] == '/' && countDigits(s, i+1) > 0:
		i = scanDigits(s, i+1)
	case i+1 < len(s) && (s[i] == 'e' || s[i] == 'E'):
		j := i + 1
		if j < len(s) && (s[j] == '-' || s[j] == '+') {
			j++
		}
		if n := countDigits(s, j); n > 0 {
			k := scanDigits(s, j)
			// "2e5" but not "3eggs"
			if k >= len(s) || !isWordRune(rune(s[k])) {
				i = k
			}
		}
	case i+1 < len(s) && s[i] == '^':
		j := i + 1
		brace := j < len(s) && s[j] == '{'
		if brace {
			j++
		}
		if j < len(s) && s[j] == '-' {
			j++
		}
		if countDigits(s, j) > 0 {
			k := scanDigits(s, j)
			if !brace {
				i = k
			} else if k < len(s) && s[k] == '}' {
				i = k + 1
			}
		}
	}
	if i < len(s) && s[i] == '%' {
		i++
	}
	return i
}

func scanDigits(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if _, ok := digitValue(r); !ok {
			break
		}
		i += size
	}
	return i
}

func countDigits(s string, i int) int {
	n := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if _, ok := digitValue(r); !ok {
			break
		}
		i += size
		n++
	}
	return n
}

// extractAnswer applies the methods in order and returns the first answer
// found. For boxed answers, pick decides among several.
func extractAnswer(text string, methods []string, pick string) (string, bool) {
	for _, m := range methods {
		switch m {
		case ExtractAnswerTag:
			if c, ok := lastTagContent(text, "answer"); ok {
				c = strings.TrimSpace(c)
				if c == "" {
					continue
				}
				// An answer tag that holds a box: take the box.
				if bs := boxedContents(c); len(bs) > 0 {
					if b, ok := pickBoxed(bs, pick); ok {
						return b, true
					}
					return "", false
				}
				return c, true
			}
		case ExtractBoxed:
			if bs := boxedContents(text); len(bs) > 0 {
				return pickBoxed(bs, pick)
			}
		default:
			if extract, known := textExtractors[m]; known {
				if a, ok := extract(text); ok {
					return a, true
				}
			}
		}
	}
	return "", false
}

// textExtractors are the methods that read an answer straight from the
// text.
var textExtractors = map[string]func(string) (string, bool){
	ExtractHash:       hashAnswer,
	ExtractLastNumber: lastNumber,
	ExtractLastLine:   lastLine,
	ExtractFirstLine:  firstLine,
	ExtractFull: func(s string) (string, bool) {
		s = strings.TrimSpace(s)
		return s, s != ""
	},
}

func pickBoxed(bs []string, pick string) (string, bool) {
	switch pick {
	case PickFirst:
		return bs[0], true
	case PickConsistent:
		first := cleanAnswer(bs[0])
		for _, b := range bs[1:] {
			if cleanAnswer(b) != first {
				return "", false
			}
		}
		return bs[0], true
	default:
		return bs[len(bs)-1], true
	}
}
