package reward

import (
	"context"
	"fmt"
	"math/big"
	"strings"

	"github.com/rltrain/rltrain/internal/mathx"
)

// CountdownParams configures the countdown verifier.
type CountdownParams struct {
	NumbersField string `json:"numbers_field"` // list of allowed integers; default "numbers"
	TargetField  string `json:"target_field"`  // integer target; default "target"
	// UseAll demands each number be used exactly once; default false:
	// each at most once.
	UseAll bool `json:"use_all"`
	// Extract is where the expression is found: answer_tag, boxed,
	// first_line, last_line, full. Default [answer_tag, first_line], the
	// data package's convention (the expression on the first line).
	Extract     []string `json:"extract"`
	IgnoreThink bool     `json:"ignore_think"` // default true
	// MaxChars bounds the expression length. Default 256.
	MaxChars int `json:"max_chars"`
	// FormatScore is given to a well-formed expression that uses only the
	// allowed numbers but misses the target. Default 0.
	FormatScore float64 `json:"format_score"`
}

// DefaultCountdownParams returns countdown's defaults.
func DefaultCountdownParams() CountdownParams {
	return CountdownParams{
		NumbersField: "numbers", TargetField: "target",
		Extract: []string{ExtractAnswerTag, ExtractFirstLine}, IgnoreThink: true, MaxChars: 256,
	}
}

// Countdown verifies the Countdown task: the completion's final expression
// must combine the given numbers (each at most once, or exactly once) with
// + − × ÷ and parentheses and equal the target exactly, in rational
// arithmetic. The expression is parsed by a bounded evaluator; nothing is
// executed. Range [0, 1] (FormatScore must lie in it). The built-in
// countdown task's own Score (data.Task) is this verifier, so eval accuracy
// and the training reward are the same function.
type Countdown struct{ p CountdownParams }

// NewCountdown validates params and builds the reward.
func NewCountdown(p CountdownParams) (*Countdown, error) {
	if p.NumbersField == "" || p.TargetField == "" {
		return nil, fmt.Errorf("params \"numbers_field\", \"target_field\": must not be empty")
	}
	if err := checkExtract(p.Extract, ExtractAnswerTag, ExtractBoxed, ExtractFirstLine, ExtractLastLine, ExtractFull); err != nil {
		return nil, err
	}
	if p.MaxChars <= 0 {
		return nil, fmt.Errorf("param \"max_chars\": want > 0, got %d", p.MaxChars)
	}
	if p.FormatScore < 0 || p.FormatScore > 1 {
		return nil, fmt.Errorf("param \"format_score\": want in [0, 1], got %v", p.FormatScore)
	}
	return &Countdown{p: p}, nil
}

// Range implements Ranged.
func (c *Countdown) Range() (float64, float64) { return 0, 1 }

var countdownCleaner = strings.NewReplacer(`\times`, "*", `\cdot`, "*", `\div`, "/", "$", "", `\(`, "", `\)`, "", `\left`, "", `\right`, "", "{", "(", "}", ")")

// Verify scores one completion.
func (c *Countdown) Verify(completion string, numbers []int64, target int64) float64 {
	text := validUTF8(completion)
	if c.p.IgnoreThink {
		text = stripThink(text)
	}
	expr, ok := extractAnswer(text, c.p.Extract, PickLast)
	if !ok {
		return 0
	}
	expr = countdownCleaner.Replace(expr)
	if i := strings.IndexByte(expr, '='); i >= 0 {
		expr = expr[:i]
	}
	expr = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(expr), "."))
	res, err := mathx.Eval(expr, mathx.Limits{MaxChars: c.p.MaxChars, MaxLiterals: len(numbers) + 1})
	if err != nil {
		return 0
	}
	avail := map[int64]int{}
	for _, n := range numbers {
		avail[n]++
	}
	for _, l := range res.Literals {
		if avail[l] == 0 {
			return 0
		}
		avail[l]--
	}
	if c.p.UseAll && len(res.Literals) != len(numbers) {
		return 0
	}
	if res.Value.Cmp(new(big.Rat).SetInt64(target)) == 0 {
		return 1
	}
	return c.p.FormatScore
}

// VerifyFields scores one completion against the numbers and target
// fields of its sample, as Score does for each sample.
func (c *Countdown) VerifyFields(completion string, fields map[string]any) (float64, error) {
	nums, err := fieldInts(fields, c.p.NumbersField)
	if err != nil {
		return 0, err
	}
	target, err := fieldInt(fields, c.p.TargetField)
	if err != nil {
		return 0, err
	}
	return c.Verify(completion, nums, target), nil
}

// Score implements Reward.
func (c *Countdown) Score(ctx context.Context, samples []Sample) (Scores, error) {
	var solved int64
	out, err := scoreEach(ctx, samples, func(s *Sample) (float64, bool, error) {
		v, err := c.VerifyFields(s.Completion, s.Fields)
		return v, v == 1, err
	}, &solved)
	if len(samples) > 0 {
		out.Metrics = map[string]float64{"solved_frac": float64(solved) / float64(len(samples))}
	}
	return out, err
}

func init() {
	Register("countdown", "verifier for the synthetic countdown task (numbers, target fields; safe bounded evaluator)",
		func() any { p := DefaultCountdownParams(); return &p },
		func(p any) (Reward, error) { return NewCountdown(*p.(*CountdownParams)) })
}
