package tokenizer

import (
	"fmt"
	"strings"

	"github.com/dlclark/regexp2"
	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites a section of input text before pre-tokenization.
type normalizer func(string) string

func buildNormalizer(c *componentJSON) (normalizer, error) {
	if c == nil {
		return nil, nil
	}
	switch c.Type {
	case "Sequence":
		var steps []normalizer
		for i := range c.Normalizers {
			n, err := buildNormalizer(&c.Normalizers[i])
			if err != nil {
				return nil, err
			}
			if n != nil {
				steps = append(steps, n)
			}
		}
		return func(s string) string {
			for _, n := range steps {
				s = n(s)
			}
			return s
		}, nil
	case "NFC":
		return unicodeForm(norm.NFC), nil
	case "NFD":
		return unicodeForm(norm.NFD), nil
	case "NFKC":
		return unicodeForm(norm.NFKC), nil
	case "NFKD":
		return unicodeForm(norm.NFKD), nil
	case "Prepend":
		p := c.Prepend
		return func(s string) string { return p + s }, nil
	case "Replace":
		return buildReplace(c.Pattern, c.Content)
	case "Lowercase":
		return strings.ToLower, nil
	case "Strip":
		left, right := c.StripLeft, c.StripRight
		return func(s string) string {
			if left {
				s = strings.TrimLeftFunc(s, isSpaceJS)
			}
			if right {
				s = strings.TrimRightFunc(s, isSpaceJS)
			}
			return s
		}, nil
	default:
		return nil, fmt.Errorf("normalizer type %q is not supported", c.Type)
	}
}

func unicodeForm(f norm.Form) normalizer {
	return func(s string) string {
		if f.IsNormalString(s) {
			return s
		}
		return f.String(s)
	}
}

// buildReplace handles Replace for normalizers and decoders alike.
func buildReplace(p *patternJSON, content string) (normalizer, error) {
	if p == nil {
		return nil, fmt.Errorf("Replace: missing pattern")
	}
	if p.String != nil {
		old := *p.String
		return func(s string) string { return strings.ReplaceAll(s, old, content) }, nil
	}
	if p.Regex == nil {
		return nil, fmt.Errorf("Replace: pattern has neither String nor Regex")
	}
	re, err := regexp2.Compile(*p.Regex, regexp2.Unicode)
	if err != nil {
		return nil, fmt.Errorf("Replace: compile %q: %w", *p.Regex, err)
	}
	return func(s string) string {
		out, err := re.Replace(s, content, -1, -1)
		if err != nil {
			return s // only a timeout can fail, and none is set
		}
		return out
	}, nil
}
