package reward

import (
	"math"
	"math/big"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Answers are compared as exact rationals (math/big), so 10^30 and
// 1000000000000000000000000000001 differ under exact comparison, 1/3 equals
// \frac{1}{3}, and 0.1+0.2-style float error never decides a reward.

// Bounds that keep parsing cheap on adversarial input.
const (
	maxAnswerChars = 400 // longer candidate answers are compared as strings only
	maxExponent    = 400 // |e| in 1e…, 10^…; larger is not a number we accept
)

// number is a parsed numeric answer. pct records a trailing percent sign,
// which comparison may treat as a factor of 1/100.
type number struct {
	v   *big.Rat
	pct bool
}

// digitValue returns the value of any Unicode decimal digit (category Nd),
// e.g. '５' (fullwidth) or '٥' (Arabic-Indic) both give 5.
func digitValue(r rune) (int, bool) {
	if r >= '0' && r <= '9' {
		return int(r - '0'), true
	}
	if r < 0x80 || !unicode.Is(unicode.Nd, r) {
		return 0, false
	}
	// Every Nd range in the Unicode tables is made of whole 0..9 runs.
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10, true
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10, true
		}
	}
	return 0, false
}

// asciiDigits rewrites non-ASCII decimal digits to ASCII and Unicode minus
// signs and dashes to '-'. It returns s unchanged (no allocation) when there
// is nothing to rewrite.
func asciiDigits(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '−' || r == '–' || r == '﹣' || r == '－':
			b.WriteByte('-')
		case r >= 0x80:
			if d, ok := digitValue(r); ok {
				b.WriteByte(byte('0' + d))
			} else {
				b.WriteRune(r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

var latexCleaner = strings.NewReplacer(
	`\left`, "", `\right`, "", `\!`, "", `\,`, "", `\;`, "", `\:`, "", `\ `, "",
	`\$`, "", "$", "", `^\circ`, "", `^{\circ}`, "", "°", "",
	`\dfrac`, `\frac`, `\tfrac`, `\frac`, `\%`, "%",
	`\cdot`, "*", `\times`, "*", "×", "*", `\displaystyle`, "",
)

// unwrapCommands replaces \text{X}, \mathrm{X}, \textbf{X}, \mathbf{X} and
// \boxed{X} by X.
func unwrapCommands(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	for _, cmd := range []string{`\text`, `\mathrm`, `\textbf`, `\mathbf`, `\boxed`, `\operatorname`} {
		for guard := 0; guard < 32; guard++ {
			i := strings.Index(s, cmd+"{")
			if i < 0 {
				break
			}
			open := i + len(cmd)
			end := matchBrace(s, open)
			if end < 0 {
				break
			}
			s = s[:i] + s[open+1:end] + s[end+1:]
		}
	}
	return s
}

// cleanAnswer turns a candidate answer into a compact canonical string:
// LaTeX spacing and wrappers removed, Unicode digits made ASCII, only the
// right-hand side of an equation kept, unit words and whitespace dropped.
func cleanAnswer(s string) string {
	s = asciiDigits(s)
	s = latexCleaner.Replace(s)
	s = unwrapCommands(s)
	if i := strings.LastIndexByte(s, '='); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.LastIndex(s, `\approx`); i >= 0 {
		s = s[i+len(`\approx`):]
	}
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, ".")
	s = dropUnitWords(s)
	if strings.ContainsAny(s, " \t\n\r") {
		s = strings.Join(strings.Fields(s), "")
	}
	s = strings.TrimRight(s, ".")
	return s
}

// dropUnitWords removes trailing words made of letters ("5 cm", "12 apples")
// when something precedes them; "2x" keeps its x because there is no space.
func dropUnitWords(s string) string {
	for {
		i := strings.LastIndexAny(s, " \t\n")
		if i < 0 {
			return s
		}
		word := s[i+1:]
		if word == "" || !allLetters(word) || strings.TrimSpace(s[:i]) == "" {
			return s
		}
		s = strings.TrimSpace(s[:i])
	}
}

func allLetters(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return true
}

// parseNumber parses a cleaned answer: integers, decimals, thousands
// separators (1,234,567), fractions (3/4, \frac{3}{4}, \frac34), percent,
// scientific forms (1.5e3, 1.5*10^{3}, 10^30) and a leading sign.
func parseNumber(s string) (number, bool) {
	if len(s) == 0 || len(s) > maxAnswerChars {
		return number{}, false
	}
	var n number
	if strings.HasSuffix(s, "%") {
		n.pct = true
		s = s[:len(s)-1]
	}
	v, ok := parseSigned(s, 0)
	if !ok {
		return number{}, false
	}
	n.v = v
	return n, true
}

func parseSigned(s string, depth int) (*big.Rat, bool) {
	if depth > 4 || s == "" {
		return nil, false
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	for k := 0; k < 8; k++ {
		inner := stripOuter(s)
		if inner == s {
			break
		}
		s = inner
	}
	v, ok := parseUnsigned(s, depth)
	if !ok {
		return nil, false
	}
	if neg {
		v.Neg(v)
	}
	return v, true
}

// stripOuter removes one pair of enclosing (), {} or [] around the whole string.
func stripOuter(s string) string {
	if len(s) >= 2 {
		o, c := s[0], s[len(s)-1]
		if (o == '(' && c == ')') || (o == '{' && c == '}') || (o == '[' && c == ']') {
			inner := s[1 : len(s)-1]
			if !strings.ContainsAny(inner, "(){}[]") {
				return inner
			}
			if o == '{' && matchBrace(s, 0) == len(s)-1 {
				return inner
			}
		}
	}
	return s
}

func parseUnsigned(s string, depth int) (*big.Rat, bool) {
	if rest, ok := strings.CutPrefix(s, `\frac`); ok {
		return parseFrac(rest, depth)
	}
	if i := strings.IndexByte(s, '/'); i > 0 {
		a, ok1 := parseSigned(s[:i], depth+1)
		b, ok2 := parseSigned(s[i+1:], depth+1)
		if !ok1 || !ok2 || b.Sign() == 0 {
			return nil, false
		}
		return a.Quo(a, b), true
	}
	return parseReal(s)
}

// parseFrac parses the arguments of \frac: {A}{B} or two single digits.
func parseFrac(s string, depth int) (*big.Rat, bool) {
	var a, b string
	if len(s) == 2 && isDigit(s[0]) && isDigit(s[1]) {
		a, b = s[:1], s[1:]
	} else {
		if s == "" || s[0] != '{' {
			return nil, false
		}
		e1 := matchBrace(s, 0)
		if e1 < 0 || e1+1 >= len(s) || s[e1+1] != '{' {
			return nil, false
		}
		e2 := matchBrace(s, e1+1)
		if e2 != len(s)-1 {
			return nil, false
		}
		a, b = s[1:e1], s[e1+2:e2]
	}
	x, ok1 := parseSigned(a, depth+1)
	y, ok2 := parseSigned(b, depth+1)
	if !ok1 || !ok2 || y.Sign() == 0 {
		return nil, false
	}
	return x.Quo(x, y), true
}

// parseReal parses a decimal with optional exponent: 1,234.5  .5  1e30
// 1.5*10^{3}  10^30.
func parseReal(s string) (*big.Rat, bool) {
	mant, exp := s, ""
	powBase := false
	if i := strings.Index(s, "*10^"); i > 0 {
		mant, exp = s[:i], s[i+4:]
	} else if i := strings.IndexAny(s, "eE"); i > 0 {
		mant, exp = s[:i], s[i+1:]
	} else if i := strings.IndexByte(s, '^'); i > 0 {
		mant, exp = s[:i], s[i+1:]
		powBase = true
	}
	m, ok := parseDecimal(mant)
	if !ok {
		return nil, false
	}
	if exp == "" {
		if mant != s {
			return nil, false
		}
		return m, true
	}
	exp = stripOuter(exp)
	e, ok := parseSmallInt(exp)
	if !ok || e > maxExponent || e < -maxExponent {
		return nil, false
	}
	if powBase {
		if !m.IsInt() {
			return nil, false
		}
		base := m.Num()
		if base.BitLen()*absInt(e) > 4096 {
			return nil, false
		}
		p := new(big.Int).Exp(base, big.NewInt(int64(absInt(e))), nil)
		r := new(big.Rat).SetInt(p)
		if e < 0 {
			if p.Sign() == 0 {
				return nil, false
			}
			r.Inv(r)
		}
		return r, true
	}
	p := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(absInt(e))), nil))
	if e < 0 {
		return m.Quo(m, p), true
	}
	return m.Mul(m, p), true
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func parseSmallInt(s string) (int, bool) {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || len(s) > 6 {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// parseDecimal accepts digits with optional comma thousands groups and an
// optional fraction part: 12  1,234,567  3.25  .5  7.
func parseDecimal(s string) (*big.Rat, bool) {
	if s == "" {
		return nil, false
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" && (!hasDot || frac == "") {
		return nil, false
	}
	for i := 0; i < len(frac); i++ {
		if !isDigit(frac[i]) {
			return nil, false
		}
	}
	if strings.IndexByte(intPart, ',') >= 0 {
		groups := strings.Split(intPart, ",")
		if len(groups[0]) == 0 || len(groups[0]) > 3 {
			return nil, false
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return nil, false
			}
		}
		intPart = strings.ReplaceAll(intPart, ",", "")
	}
	for i := 0; i < len(intPart); i++ {
		if !isDigit(intPart[i]) {
			return nil, false
		}
	}
	if intPart == "" {
		intPart = "0"
	}
	// Fast path: small integers avoid the string-parsing allocation.
	if frac == "" && len(intPart) <= 18 {
		var v int64
		for i := 0; i < len(intPart); i++ {
			v = v*10 + int64(intPart[i]-'0')
		}
		return new(big.Rat).SetInt64(v), true
	}
	r, ok := new(big.Rat).SetString(intPart + "." + frac + "0")
	return r, ok
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// matchBrace returns the index of the '}' closing the '{' at s[open], or -1.
// Backslash-escaped braces (\{ \}) do not count.
func matchBrace(s string, open int) int {
	if open >= len(s) || s[open] != '{' {
		return -1
	}
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // skip the escaped character
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// ratClose reports a == b exactly, or within tol relative to max(1, |b|).
func ratClose(a, b *big.Rat, tol float64) bool {
	if a.Cmp(b) == 0 {
		return true
	}
	if tol <= 0 {
		return false
	}
	d, _ := new(big.Rat).Sub(a, b).Float64()
	bf, _ := b.Float64()
	return math.Abs(d) <= tol*math.Max(1, math.Abs(bf))
}

// numbersEqual compares two parsed answers. With pctAsFraction, "50%" also
// equals 0.5 (the percent side divided by 100 is tried too).
func numbersEqual(a, b number, tol float64, pctAsFraction bool) bool {
	if ratClose(a.v, b.v, tol) {
		return true
	}
	if !pctAsFraction || a.pct == b.pct {
		return false
	}
	hundred := big.NewRat(100, 1)
	if a.pct {
		return ratClose(new(big.Rat).Quo(a.v, hundred), b.v, tol)
	}
	return ratClose(a.v, new(big.Rat).Quo(b.v, hundred), tol)
}

// validUTF8 guards string scans against invalid input by replacing bad bytes.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
