package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// decoder turns token strings back into text pieces; a chain of them ends
// with the pieces joined.
type decoder func(tokens []string, added func(string) bool) []string

func buildDecoder(c *componentJSON) (decoder, error) {
	if c == nil {
		return nil, nil
	}
	switch c.Type {
	case "Sequence":
		var steps []decoder
		for i := range c.Decoders {
			d, err := buildDecoder(&c.Decoders[i])
			if err != nil {
				return nil, err
			}
			steps = append(steps, d)
		}
		return func(toks []string, added func(string) bool) []string {
			for _, d := range steps {
				toks = d(toks, added)
			}
			return toks
		}, nil
	case "ByteLevel":
		return decodeByteLevel, nil
	case "ByteFallback":
		return decodeByteFallback, nil
	case "Fuse":
		return func(toks []string, _ func(string) bool) []string {
			return []string{strings.Join(toks, "")}
		}, nil
	case "Replace":
		rep, err := buildReplace(c.Pattern, c.Content)
		if err != nil {
			return nil, fmt.Errorf("decoder: %w", err)
		}
		return func(toks []string, _ func(string) bool) []string {
			out := make([]string, len(toks))
			for i, t := range toks {
				out[i] = rep(t)
			}
			return out
		}, nil
	case "Strip":
		r, n := utf8.DecodeRuneInString(c.Content)
		if n == 0 || n != len(c.Content) {
			return nil, fmt.Errorf("Strip decoder: content %q must be one character", c.Content)
		}
		start, stop := c.Start, c.Stop
		return func(toks []string, _ func(string) bool) []string {
			out := make([]string, len(toks))
			for i, t := range toks {
				for k := 0; k < start && strings.HasPrefix(t, string(r)); k++ {
					t = t[n:]
				}
				for k := 0; k < stop && strings.HasSuffix(t, string(r)); k++ {
					t = t[:len(t)-n]
				}
				out[i] = t
			}
			return out
		}, nil
	case "Metaspace":
		rep := c.Replacement
		if rep == "" {
			rep = "▁"
		}
		stripFirst := c.PrependScheme != "never" && (c.AddPrefixSpace == nil || *c.AddPrefixSpace)
		return func(toks []string, _ func(string) bool) []string {
			out := make([]string, len(toks))
			for i, t := range toks {
				t = strings.ReplaceAll(t, rep, " ")
				if i == 0 && stripFirst {
					t = strings.TrimPrefix(t, " ")
				}
				out[i] = t
			}
			return out
		}, nil
	default:
		return nil, fmt.Errorf("decoder type %q is not supported", c.Type)
	}
}

// decodeByteLevel undoes the GPT-2 byte alphabet for runs of model tokens;
// added tokens are kept as written.
func decodeByteLevel(toks []string, added func(string) bool) []string {
	var out []string
	var run strings.Builder
	flush := func() {
		if run.Len() > 0 {
			out = append(out, ValidUTF8(run.String()))
			run.Reset()
		}
	}
	for _, t := range toks {
		if added(t) {
			flush()
			out = append(out, t)
			continue
		}
		for _, r := range t {
			if b, ok := runeToByte(r); ok {
				run.WriteByte(byte(b))
			} else {
				run.WriteRune(r)
			}
		}
	}
	flush()
	return out
}

// decodeByteFallback turns runs of <0xXX> tokens into text.
func decodeByteFallback(toks []string, _ func(string) bool) []string {
	var out []string
	var run []byte
	for _, t := range toks {
		if b, ok := parseByteToken(t); ok {
			run = append(run, b)
			continue
		}
		if len(run) > 0 {
			out = append(out, ValidUTF8(string(run)))
			run = run[:0]
		}
		out = append(out, t)
	}
	if len(run) > 0 {
		out = append(out, ValidUTF8(string(run)))
	}
	return out
}

func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || t[:3] != "<0x" || t[5] != '>' {
		return 0, false
	}
	hex := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		}
		return 0, false
	}
	hi, ok1 := hex(t[3])
	lo, ok2 := hex(t[4])
	return hi<<4 | lo, ok1 && ok2
}

// cleanUpSpaces removes the spaces English word-level tokenizers used to
// leave before punctuation and contractions (Hugging Face's
// clean_up_tokenization_spaces). The replacements run one after another
// over the whole string, as in the reference; a single-pass Replacer would
// differ on inputs like "a ' .".
func cleanUpSpaces(s string) string {
	for _, r := range cleanUpRules {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}

var cleanUpRules = [][2]string{
	{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
	{" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
}
