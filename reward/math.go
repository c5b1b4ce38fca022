package reward

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
)

// Comparison modes for math_answer.
const (
	CompareNumeric    = "numeric"    // as numbers (tolerance, fractions, percent); strings when not numbers
	CompareExact      = "exact"      // trimmed strings, byte for byte
	CompareNormalized = "normalized" // canonical strings (LaTeX spacing and wrappers removed)
)

// MathAnswerParams configures math_answer.
type MathAnswerParams struct {
	// Field is the sample field with the reference answer: a string
	// ("72", "#### 72", "\frac{1}{2}"), a number, or a list of acceptable
	// answers. Default "answer".
	Field string `json:"field"`
	// Extract is the order of extraction methods: answer_tag, boxed,
	// hash, last_number, first_line, last_line, full. Default
	// [answer_tag, boxed, hash, last_number].
	Extract []string `json:"extract"`
	// Multiple picks among several \boxed{}: last (default), first,
	// consistent (all must agree, else no answer).
	Multiple string `json:"multiple"`
	// IgnoreThink drops everything up to the last </think>, so a box in
	// the reasoning does not count; an unclosed <think> leaves no answer.
	// Default true.
	IgnoreThink bool `json:"ignore_think"`
	// Compare is numeric (default), exact or normalized.
	Compare string `json:"compare"`
	// Tolerance is the allowed |a−b| relative to max(1, |b|) in numeric
	// mode. Default 1e-6; 0 demands exact rational equality.
	Tolerance float64 `json:"tolerance"`
	// PercentAsFraction lets "50%" match 0.5 (and 50). Default true.
	PercentAsFraction bool `json:"percent_as_fraction"`
	// Scores for a correct answer, a wrong one and no extractable
	// answer. Defaults 1, 0, 0.
	Correct float64 `json:"correct"`
	Wrong   float64 `json:"wrong"`
	Missing float64 `json:"missing"`
}

// DefaultMathAnswerParams returns math_answer's defaults.
func DefaultMathAnswerParams() MathAnswerParams {
	return MathAnswerParams{
		Field:             "answer",
		Extract:           append([]string(nil), DefaultExtract...),
		Multiple:          PickLast,
		IgnoreThink:       true,
		Compare:           CompareNumeric,
		Tolerance:         1e-6,
		PercentAsFraction: true,
		Correct:           1,
	}
}

// MathAnswer checks a final answer against the reference. Range: between
// min and max of Correct, Wrong and Missing ([0, 1] by default).
type MathAnswer struct {
	p MathAnswerParams
	// integers accepts only an integer written as digits (arithmetic):
	// "19.0" or "38/2" is then not 19.
	integers bool
}

// NewMathAnswer validates params and builds the reward.
func NewMathAnswer(p MathAnswerParams) (*MathAnswer, error) {
	if p.Field == "" {
		return nil, fmt.Errorf("param \"field\": empty")
	}
	if err := checkExtract(p.Extract, ExtractAnswerTag, ExtractBoxed, ExtractHash, ExtractLastNumber, ExtractLastLine, ExtractFirstLine, ExtractFull); err != nil {
		return nil, err
	}
	switch p.Multiple {
	case PickLast, PickFirst, PickConsistent:
	default:
		return nil, fmt.Errorf("param \"multiple\": unknown %q (want last, first or consistent)", p.Multiple)
	}
	switch p.Compare {
	case CompareNumeric, CompareExact, CompareNormalized:
	default:
		return nil, fmt.Errorf("param \"compare\": unknown %q (want numeric, exact or normalized)", p.Compare)
	}
	if p.Tolerance < 0 || !finite(p.Tolerance) {
		return nil, fmt.Errorf("param \"tolerance\": want >= 0, got %v", p.Tolerance)
	}
	for _, v := range []float64{p.Correct, p.Wrong, p.Missing} {
		if !finite(v) {
			return nil, fmt.Errorf("scores must be finite")
		}
	}
	return &MathAnswer{p: p}, nil
}

// Range implements Ranged.
func (m *MathAnswer) Range() (float64, float64) {
	return min(m.p.Correct, m.p.Wrong, m.p.Missing), max(m.p.Correct, m.p.Wrong, m.p.Missing)
}

// Score implements Reward.
func (m *MathAnswer) Score(ctx context.Context, samples []Sample) (Scores, error) {
	var extracted int64
	out, err := scoreEach(ctx, samples, func(s *Sample) (float64, bool, error) {
		golds, err := fieldStrings(s.Fields, m.p.Field)
		if err != nil {
			return 0, false, err
		}
		verdict, found := m.Check(s.Completion, golds)
		if !found {
			return m.p.Missing, false, nil
		}
		if verdict {
			return m.p.Correct, true, nil
		}
		return m.p.Wrong, true, nil
	}, &extracted)
	if err != nil {
		return out, err
	}
	if len(samples) > 0 {
		out.Metrics = map[string]float64{"extracted_frac": float64(extracted) / float64(len(samples))}
	}
	return out, nil
}

// Check extracts the completion's final answer and compares it with each
// reference; found reports whether an answer could be extracted.
func (m *MathAnswer) Check(completion string, golds []string) (correct, found bool) {
	text := validUTF8(completion)
	if m.p.IgnoreThink {
		text = stripThink(text)
	}
	cand, ok := extractAnswer(text, m.p.Extract, m.p.Multiple)
	if !ok {
		return false, false
	}
	for _, g := range golds {
		if m.equal(cand, goldAnswer(g)) {
			return true, true
		}
	}
	return false, true
}

// goldAnswer strips dataset wrappers from a reference answer: GSM8K's
// "reasoning #### 72" and a \boxed{…}.
func goldAnswer(g string) string {
	if h, ok := hashAnswer(g); ok {
		return h
	}
	if bs := boxedContents(g); len(bs) > 0 {
		return bs[len(bs)-1]
	}
	return g
}

func (m *MathAnswer) equal(cand, gold string) bool {
	if m.integers {
		return integerEqual(cand, gold)
	}
	switch m.p.Compare {
	case CompareExact:
		return strings.TrimSpace(cand) == strings.TrimSpace(gold)
	case CompareNormalized:
		return cleanAnswer(cand) == cleanAnswer(gold)
	}
	cc, gc := cleanAnswer(cand), cleanAnswer(gold)
	gn, gok := parseNumber(gc)
	if !gok {
		return cc == gc || (choiceLetter(cc) != 0 && choiceLetter(cc) == choiceLetter(gc))
	}
	cn, cok := parseNumber(cc)
	if !cok && strings.ContainsAny(strings.TrimSpace(cand), " \t\n") {
		// A sentence such as "<answer>The total is 72 apples</answer>":
		// use its last number. A single token such as "2x" is not a
		// number and stays wrong.
		if ln, ok := lastNumber(cand); ok {
			cn, cok = parseNumber(cleanAnswer(ln))
		}
	}
	if !cok {
		return false
	}
	return numbersEqual(cn, gn, m.p.Tolerance, m.p.PercentAsFraction)
}

// integerEqual reports whether cand is an integer written as digits (an
// optional sign, no spaces, no decimal point) equal to gold. A candidate
// with spaces in it, a sentence, is judged by its last number.
func integerEqual(cand, gold string) bool {
	c := strings.TrimSpace(cand)
	if strings.ContainsAny(c, " \t\n\r") {
		ln, ok := lastNumber(c)
		if !ok {
			return false
		}
		c = ln
	}
	a, ok1 := new(big.Int).SetString(integerDigits(cleanAnswer(c)), 10)
	b, ok2 := new(big.Int).SetString(integerDigits(cleanAnswer(gold)), 10)
	return ok1 && ok2 && a.Cmp(b) == 0
}

// integerDigits returns s when it is an optional sign followed by ASCII
// digits, else "" (which no integer parses from).
func integerDigits(s string) string {
	if d := strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+"); d == "" || strings.Trim(d, "0123456789") != "" {
		return ""
	}
	return s
}

// choiceLetter returns the upper-case letter of a multiple-choice answer
// written as "B", "(b)" or "B.", else 0.
func choiceLetter(s string) byte {
	s = strings.TrimSuffix(s, ".")
	if len(s) == 3 && s[0] == '(' && s[2] == ')' {
		s = s[1:2]
	}
	if len(s) != 1 {
		return 0
	}
	c := s[0]
	if c >= 'a' && c <= 'z' {
		c -= 'a' - 'A'
	}
	if c < 'A' || c > 'Z' {
		return 0
	}
	return c
}

// scoreEach runs f over samples in parallel with per-sample panic
// isolation; the number of samples for which f reports true is added to
// *hits when hits is not nil.
func scoreEach(ctx context.Context, samples []Sample, f func(s *Sample) (float64, bool, error), hits *int64) (Scores, error) {
	var n atomic.Int64
	out := runEach(ctx, len(samples), func(i int) (float64, error) {
		v, hit, err := f(&samples[i])
		if hit {
			n.Add(1)
		}
		return v, err
	})
	if hits != nil {
		*hits += n.Load()
	}
	return out, nil
}

// ArithmeticParams configures the arithmetic verifier for the built-in
// synthetic task.
type ArithmeticParams struct {
	Field string `json:"field"` // integer answer field; default "answer"
	// Extract defaults to [answer_tag, boxed, first_line]: the data
	// package's tasks answer on the first line; a sentence there ("The
	// answer is 391") is reduced to its last number.
	Extract     []string `json:"extract"`
	IgnoreThink bool     `json:"ignore_think"` // default true
}

// DefaultArithmeticParams returns arithmetic's defaults.
func DefaultArithmeticParams() ArithmeticParams {
	return ArithmeticParams{Field: "answer", Extract: []string{ExtractAnswerTag, ExtractBoxed, ExtractFirstLine}, IgnoreThink: true}
}

// NewArithmetic builds the verifier for the arithmetic task: 1 when the
// final answer is an integer, written as digits, equal to the integer in
// the answer field, else 0. Range [0, 1]. The task's own Score
// (data.Task) is this verifier, so eval accuracy and the training reward
// are the same function.
func NewArithmetic(p ArithmeticParams) (*MathAnswer, error) {
	mp := DefaultMathAnswerParams()
	mp.Field = p.Field
	mp.Extract = p.Extract
	mp.IgnoreThink = p.IgnoreThink
	mp.Tolerance = 0
	mp.PercentAsFraction = false
	m, err := NewMathAnswer(mp)
	if err != nil {
		return nil, err
	}
	m.integers = true
	return m, nil
}

func init() {
	Register("math_answer", "final-answer correctness: extraction (\\boxed, ####, <answer>, last number) and exact/numeric comparison",
		func() any { p := DefaultMathAnswerParams(); return &p },
		func(p any) (Reward, error) { return NewMathAnswer(*p.(*MathAnswerParams)) })
	Register("arithmetic", "verifier for the synthetic arithmetic task (integer answer field)",
		func() any { p := DefaultArithmeticParams(); return &p },
		func(p any) (Reward, error) { return NewArithmetic(*p.(*ArithmeticParams)) })
}
