package tokenizer

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A tokenizer.json is mostly its vocabulary and merges: hundreds of
// thousands of short strings. encoding/json spends most of a second on
// them (reflection, a map of its own); these small readers for exactly
// those two shapes load Qwen3's file several times faster. Anything they
// do not expect is an error, and the caller falls back to encoding/json.

type jsonReader struct {
	b   []byte
	pos int
	buf []byte
}

func (r *jsonReader) ws() {
	for r.pos < len(r.b) {
		switch r.b[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

func (r *jsonReader) expect(c byte) error {
	r.ws()
	if r.pos >= len(r.b) || r.b[r.pos] != c {
		return fmt.Errorf("offset %d: want %q", r.pos, c)
	}
	r.pos++
	return nil
}

// peek returns the next non-space byte, or 0 at the end.
func (r *jsonReader) peek() byte {
	r.ws()
	if r.pos >= len(r.b) {
		return 0
	}
	return r.b[r.pos]
}

func (r *jsonReader) str() (string, error) {
	if err := r.expect('"'); err != nil {
		return "", err
	}
	start := r.pos
	// Fast path: no escapes.
	for r.pos < len(r.b) {
		c := r.b[r.pos]
		if c == '"' {
			s := string(r.b[start:r.pos])
			r.pos++
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		r.pos++
	}
	r.buf = append(r.buf[:0], r.b[start:r.pos]...)
	for r.pos < len(r.b) {
		c := r.b[r.pos]
		switch {
		case c == '"':
			r.pos++
			return string(r.buf), nil
		case c < 0x20:
			return "", fmt.Errorf("offset %d: control character in string", r.pos)
		case c != '\\':
			r.buf = append(r.buf, c)
			r.pos++
			continue
		}
		if r.pos+1 >= len(r.b) {
			break
		}
		e := r.b[r.pos+1]
		r.pos += 2
		switch e {
		case '"', '\\', '/':
			r.buf = append(r.buf, e)
		case 'b':
			r.buf = append(r.buf, '\b')
		case 'f':
			r.buf = append(r.buf, '\f')
		case 'n':
			r.buf = append(r.buf, '\n')
		case 'r':
			r.buf = append(r.buf, '\r')
		case 't':
			r.buf = append(r.buf, '\t')
		case 'u':
			u, err := r.hex4()
			if err != nil {
				return "", err
			}
			ru := rune(u)
			if utf16.IsSurrogate(ru) {
				ru = utf8.RuneError
				if r.pos+6 <= len(r.b) && r.b[r.pos] == '\\' && r.b[r.pos+1] == 'u' {
					save := r.pos
					r.pos += 2
					u2, err := r.hex4()
					if err == nil {
						if d := utf16.DecodeRune(rune(u), rune(u2)); d != utf8.RuneError {
							ru = d
						} else {
							r.pos = save
						}
					} else {
						r.pos = save
					}
				}
			}
			r.buf = utf8.AppendRune(r.buf, ru)
		default:
			return "", fmt.Errorf("offset %d: bad escape \\%c", r.pos-1, e)
		}
	}
	return "", fmt.Errorf("unterminated string")
}

func (r *jsonReader) hex4() (uint64, error) {
	if r.pos+4 > len(r.b) {
		return 0, fmt.Errorf("offset %d: short \\u escape", r.pos)
	}
	u, err := strconv.ParseUint(string(r.b[r.pos:r.pos+4]), 16, 16)
	if err != nil {
		return 0, fmt.Errorf("offset %d: bad \\u escape", r.pos)
	}
	r.pos += 4
	return u, nil
}

func (r *jsonReader) integer() (int, error) {
	r.ws()
	start := r.pos
	if r.pos < len(r.b) && r.b[r.pos] == '-' {
		r.pos++
	}
	for r.pos < len(r.b) && r.b[r.pos] >= '0' && r.b[r.pos] <= '9' {
		r.pos++
	}
	n, err := strconv.Atoi(string(r.b[start:r.pos]))
	if err != nil {
		return 0, fmt.Errorf("offset %d: want an integer", start)
	}
	return n, nil
}

func (r *jsonReader) end() error {
	r.ws()
	if r.pos != len(r.b) {
		return fmt.Errorf("offset %d: trailing data", r.pos)
	}
	return nil
}

// readVocab parses {"token": id, ...}.
func readVocab(data []byte) (map[string]int, error) {
	r := &jsonReader{b: data}
	out := make(map[string]int, len(data)/16)
	if err := r.expect('{'); err != nil {
		return nil, err
	}
	if r.peek() == '}' {
		r.pos++
		return out, r.end()
	}
	for {
		k, err := r.str()
		if err != nil {
			return nil, err
		}
		if err := r.expect(':'); err != nil {
			return nil, err
		}
		v, err := r.integer()
		if err != nil {
			return nil, err
		}
		out[k] = v
		switch r.peek() {
		case ',':
			r.pos++
		case '}':
			r.pos++
			return out, r.end()
		default:
			return nil, fmt.Errorf("offset %d: want , or }", r.pos)
		}
	}
}

// readMerges parses ["a b", ...] or [["a", "b"], ...].
func readMerges(data []byte) ([][2]string, error) {
	r := &jsonReader{b: data}
	if err := r.expect('['); err != nil {
		return nil, err
	}
	var out [][2]string
	if r.peek() == ']' {
		r.pos++
		return out, r.end()
	}
	for {
		var pair [2]string
		if r.peek() == '[' {
			r.pos++
			a, err := r.str()
			if err != nil {
				return nil, err
			}
			if err := r.expect(','); err != nil {
				return nil, err
			}
			b, err := r.str()
			if err != nil {
				return nil, err
			}
			if err := r.expect(']'); err != nil {
				return nil, err
			}
			pair = [2]string{a, b}
		} else {
			s, err := r.str()
			if err != nil {
				return nil, err
			}
			a, b, ok := cutSpace(s)
			if !ok {
				return nil, fmt.Errorf("merge %d %q: want two tokens separated by a space", len(out), s)
			}
			pair = [2]string{a, b}
		}
		out = append(out, pair)
		switch r.peek() {
		case ',':
			r.pos++
		case ']':
			r.pos++
			return out, r.end()
		default:
			return nil, fmt.Errorf("offset %d: want , or ]", r.pos)
		}
	}
}
