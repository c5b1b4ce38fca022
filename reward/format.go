package reward

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// FormatParams configures format.
type FormatParams struct {
	// Mode is "tags" (default): the completion is a sequence of tagged
	// sections; or "regex": the completion must match patterns.
	Mode string `json:"mode"`
	// Tags are the expected sections, in order. Default [think, answer]:
	// <think>…</think><answer>…</answer>.
	Tags []string `json:"tags"`
	// ThinkInPrompt says the chat template already opened <think> in the
	// prompt, so the completion starts inside it.
	ThinkInPrompt bool `json:"think_in_prompt"`
	// Patterns are RE2 regular expressions (linear-time matching; no
	// catastrophic backtracking) for mode regex. Pattern is a shorthand
	// for one.
	Patterns []string `json:"patterns"`
	Pattern  string   `json:"pattern"`
	// FullMatch anchors each pattern to the whole completion (default
	// true); false searches for a match anywhere.
	FullMatch bool `json:"full_match"`
	// Partial gives the fraction of checks passed instead of all-or-
	// nothing. Tag checks, per tag: opened and closed exactly once in
	// order; content with at least one letter or digit. Overall: tags in
	// the given order; nothing but whitespace outside the tags.
	Partial bool `json:"partial"`
}

// DefaultFormatParams returns format's defaults.
func DefaultFormatParams() FormatParams {
	return FormatParams{Mode: "tags", Tags: []string{"think", "answer"}, FullMatch: true}
}

// Format rewards structure. Range [0, 1].
type Format struct {
	p   FormatParams
	res []*regexp.Regexp
}

// NewFormat validates params and builds the reward.
func NewFormat(p FormatParams) (*Format, error) {
	f := &Format{p: p}
	switch p.Mode {
	case "tags":
		if len(p.Tags) == 0 {
			return nil, fmt.Errorf("param \"tags\": empty")
		}
		for _, t := range p.Tags {
			if t == "" || strings.ContainsAny(t, "<>/ \t\n") {
				return nil, fmt.Errorf("param \"tags\": bad tag name %q", t)
			}
		}
	case "regex":
		pats := p.Patterns
		if p.Pattern != "" {
			pats = append([]string{p.Pattern}, pats...)
		}
		if len(pats) == 0 {
			return nil, fmt.Errorf("mode regex needs param \"pattern\" or \"patterns\"")
		}
		for _, pat := range pats {
			src := pat
			if p.FullMatch {
				src = `^(?:` + pat + `)$`
			}
			re, err := regexp.Compile(src)
			if err != nil {
				return nil, fmt.Errorf("param \"patterns\": %q: %w", pat, err)
			}
			f.res = append(f.res, re)
		}
	default:
		return nil, fmt.Errorf("param \"mode\": unknown %q (want tags or regex)", p.Mode)
	}
	return f, nil
}

// Range implements Ranged.
func (f *Format) Range() (float64, float64) { return 0, 1 }

// Score implements Reward.
func (f *Format) Score(ctx context.Context, samples []Sample) (Scores, error) {
	var ok int64
	out, err := scoreEach(ctx, samples, func(s *Sample) (float64, bool, error) {
		passed, total := f.check(s.Completion)
		if passed == total {
			return 1, true, nil
		}
		if f.p.Partial {
			return float64(passed) / float64(total), false, nil
		}
		return 0, false, nil
	}, &ok)
	if len(samples) > 0 {
		out.Metrics = map[string]float64{"ok_frac": float64(ok) / float64(len(samples))}
	}
	return out, err
}

// check returns how many of the format's checks the text passes.
func (f *Format) check(text string) (passed, total int) {
	if f.p.Mode == "regex" {
		for _, re := range f.res {
			if re.MatchString(text) {
				passed++
			}
		}
		return passed, len(f.res)
	}
	if f.p.ThinkInPrompt && len(f.p.Tags) > 0 && f.p.Tags[0] == "think" && !strings.Contains(text, "<think>") {
		text = "<think>" + text
	}
	tags := f.p.Tags
	total = 2*len(tags) + 2
	inOrder := true
	prevEnd := 0
	var spans [][2]int // [open start, close end] of each well-formed tag
	for _, t := range tags {
		open, closeTag := "<"+t+">", "</"+t+">"
		oi := strings.Index(text, open)
		ci := strings.Index(text, closeTag)
		once := oi >= 0 && ci > oi &&
			strings.Count(text, open) == 1 && strings.Count(text, closeTag) == 1
		if !once {
			inOrder = false
			continue
		}
		passed++
		if hasAlnum(text[oi+len(open) : ci]) {
			passed++
		}
		if oi < prevEnd {
			inOrder = false
		}
		prevEnd = ci + len(closeTag)
		spans = append(spans, [2]int{oi, prevEnd})
	}
	if inOrder {
		passed++
	}
	// Nothing but whitespace outside the tags (only meaningful when every
	// tag is well formed and in order).
	if inOrder && len(spans) == len(tags) {
		clean := strings.TrimSpace(text[:spans[0][0]]) == ""
		for k := 1; k < len(spans) && clean; k++ {
			clean = strings.TrimSpace(text[spans[k-1][1]:spans[k][0]]) == ""
		}
		if clean && strings.TrimSpace(text[spans[len(spans)-1][1]:]) == "" {
			passed++
		}
	}
	return passed, total
}

func hasAlnum(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return true
		}
	}
	return false
}

func init() {
	Register("format", "structure: <think>…</think><answer>…</answer> tags or regular expressions, strict or partial credit",
		func() any { p := DefaultFormatParams(); return &p },
		func(p any) (Reward, error) { return NewFormat(*p.(*FormatParams)) })
}
