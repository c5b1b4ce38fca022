package reward

import (
	"context"
	"fmt"
	"strings"
	"unicode"
)

// ExactMatchParams configures exact_match.
type ExactMatchParams struct {
	// Field is the reference: a string or a list of acceptable strings.
	// Default "answer".
	Field string `json:"field"`
	// Extract is the order of extraction methods (answer_tag, boxed,
	// hash, last_line, last_number, full). Default [answer_tag, full].
	Extract []string `json:"extract"`
	// IgnoreThink drops the text up to the last </think>. Default true.
	IgnoreThink bool `json:"ignore_think"`
	// Normalisation, applied to both sides. Defaults: lowercase true,
	// strip_punctuation true, collapse_whitespace true, strip_articles
	// false (SQuAD-style normalisation sets all four).
	Lowercase          bool `json:"lowercase"`
	StripPunctuation   bool `json:"strip_punctuation"`
	CollapseWhitespace bool `json:"collapse_whitespace"`
	StripArticles      bool `json:"strip_articles"`
}

// DefaultExactMatchParams returns exact_match's defaults.
func DefaultExactMatchParams() ExactMatchParams {
	return ExactMatchParams{
		Field: "answer", Extract: []string{ExtractAnswerTag, ExtractFull}, IgnoreThink: true,
		Lowercase: true, StripPunctuation: true, CollapseWhitespace: true,
	}
}

// ExactMatch is 1 when the normalised answer equals a normalised
// reference, else 0. Range [0, 1].
type ExactMatch struct{ p ExactMatchParams }

// NewExactMatch validates params and builds the reward.
func NewExactMatch(p ExactMatchParams) (*ExactMatch, error) {
	if p.Field == "" {
		return nil, fmt.Errorf("param \"field\": empty")
	}
	if err := checkExtract(p.Extract, ExtractAnswerTag, ExtractBoxed, ExtractHash, ExtractLastLine, ExtractFirstLine, ExtractLastNumber, ExtractFull); err != nil {
		return nil, err
	}
	return &ExactMatch{p: p}, nil
}

// Range implements Ranged.
func (e *ExactMatch) Range() (float64, float64) { return 0, 1 }

// Score implements Reward.
func (e *ExactMatch) Score(ctx context.Context, samples []Sample) (Scores, error) {
	return scoreEach(ctx, samples, func(s *Sample) (float64, bool, error) {
		refs, err := fieldStrings(s.Fields, e.p.Field)
		if err != nil {
			return 0, false, err
		}
		text := validUTF8(s.Completion)
		if e.p.IgnoreThink {
			text = stripThink(text)
		}
		cand, ok := extractAnswer(text, e.p.Extract, PickLast)
		if !ok {
			return 0, false, nil
		}
		c := e.Normalize(cand)
		for _, r := range refs {
			if c == e.Normalize(r) {
				return 1, true, nil
			}
		}
		return 0, false, nil
	}, nil)
}

// Normalize applies the configured normalisation.
func (e *ExactMatch) Normalize(s string) string {
	if e.p.Lowercase {
		s = strings.ToLower(s)
	}
	if e.p.StripPunctuation {
		s = strings.Map(func(r rune) rune {
			if unicode.IsPunct(r) {
				return -1
			}
			return r
		}, s)
	}
	if e.p.StripArticles {
		words := strings.Fields(s)
		kept := words[:0]
		for _, w := range words {
			lw := strings.ToLower(w)
			if lw != "a" && lw != "an" && lw != "the" {
				kept = append(kept, w)
			}
		}
		s = strings.Join(kept, " ")
	}
	if e.p.CollapseWhitespace {
		s = strings.Join(strings.Fields(s), " ")
	}
	return s
}

func init() {
	Register("exact_match", "normalised string equality with the reference answer",
		func() any { p := DefaultExactMatchParams(); return &p },
		func(p any) (Reward, error) { return NewExactMatch(*p.(*ExactMatchParams)) })
}
