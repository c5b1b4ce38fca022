package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// byteToRune is GPT-2's byte-level alphabet: every byte maps to a printable
// rune so that BPE vocabularies can be stored as text. Printable Latin-1
// bytes map to themselves; the rest map to U+0100 onwards in byte order.
var byteToRune [256]rune

// runeToByteTable inverts byteToRune; -1 where the rune is not in the
// alphabet (all of the alphabet lies below U+0144).
var runeToByteTable [0x144]int16

func init() {
	for i := range runeToByteTable {
		runeToByteTable[i] = -1
	}
	n := 0
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByteTable[byteToRune[b]] = int16(b)
	}
}

// runeToByte maps a rune of the byte-level alphabet to its byte.
func runeToByte(r rune) (int, bool) {
	if r < 0 || int(r) >= len(runeToByteTable) || runeToByteTable[r] < 0 {
		return 0, false
	}
	return int(runeToByteTable[r]), true
}

// byteLevelDecode turns a byte-level token ("Ġthe") into its raw bytes
// (" the"). ok is false when the token holds a rune outside the alphabet.
func byteLevelDecode(tok string) (string, bool) {
	var sb strings.Builder
	sb.Grow(len(tok))
	for _, r := range tok {
		b, ok := runeToByte(r)
		if !ok {
			return "", false
		}
		sb.WriteByte(byte(b))
	}
	return sb.String(), true
}

// byteLevelEncode is the inverse of byteLevelDecode.
func byteLevelEncode(raw string) string {
	var sb strings.Builder
	sb.Grow(len(raw) * 2)
	for i := 0; i < len(raw); i++ {
		sb.WriteRune(byteToRune[raw[i]])
	}
	return sb.String()
}

// ValidUTF8 replaces each maximal invalid UTF-8 subsequence of s with
// U+FFFD, as the WHATWG decoder does (JavaScript's TextDecoder, Python's
// errors="replace"). Text that came in as bytes should pass through here
// before it is compared with tokenizers that only see Unicode strings.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError || n > 1 {
			sb.WriteString(s[i : i+n])
			i += n
			continue
		}
		sb.WriteRune(utf8.RuneError)
		i += invalidPrefixLen(s[i:])
	}
	return sb.String()
}

// invalidPrefixLen is the length of the maximal subpart of an ill-formed
// sequence at the start of s (Unicode 3.9, "U+FFFD Substitution of Maximal
// Subparts"): a lead byte followed by as many valid continuation bytes as fit
// before the sequence breaks. It is at least 1.
func invalidPrefixLen(s string) int {
	b := s[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case b >= 0xC2 && b <= 0xDF:
		need = 1
	case b == 0xE0:
		need, lo = 2, 0xA0
	case b >= 0xE1 && b <= 0xEC, b == 0xEE, b == 0xEF:
		need = 2
	case b == 0xED:
		need, hi = 2, 0x9F
	case b == 0xF0:
		need, lo = 3, 0x90
	case b >= 0xF1 && b <= 0xF3:
		need = 3
	case b == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(s); k++ {
		c := s[n]
		if c < lo || c > hi {
			break
		}
		lo, hi = 0x80, 0xBF
		n++
	}
	return n
}
