package data

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rltrain/rltrain/reward"
)

// ArithmeticParams configures the arithmetic task. The short format keeps
// prompts tiny and formulaic ("37+5*2=" → "47") so a character-level model
// of a few hundred thousand parameters can learn it on a CPU in minutes.
type ArithmeticParams struct {
	// Difficulty (1–5) picks a preset for the fields below; fields given
	// explicitly override the preset. 0 means no preset.
	Difficulty int `json:"difficulty"`
	// Operands have MinDigits..Digits decimal digits.
	MinDigits int `json:"min_digits"`
	Digits    int `json:"digits"`
	// Expressions have MinTerms..Terms operands.
	MinTerms int `json:"min_terms"`
	Terms    int `json:"terms"`
	// Ops is the operator set, a subset of "+-*/". Division is always exact.
	Ops string `json:"ops"`
	// AllowNegative permits negative results.
	AllowNegative bool `json:"allow_negative"`
	// Format is "short" ("12+7=") or "text" ("What is 12+7? Answer: "),
	// whose completion is the bare integer, or "steps" ("12+7-3=", only
	// with ops + and -), whose completion works left to right and gives
	// each running result, the last being the answer ("19;16"): the
	// warm-up learns the steps, rewards get the final integer as the
	// answer field, and the likelihood reward can score the answer after
	// the steps (marker ";").
	Format string `json:"format"`
	// Holdout is the fraction of all possible prompts reserved for eval.
	Holdout float64 `json:"holdout"`
}

// arithmeticPresets are the difficulty levels: digits, terms, operators.
var arithmeticPresets = map[int]ArithmeticParams{
	1: {MinDigits: 1, Digits: 1, MinTerms: 2, Terms: 2, Ops: "+"},
	2: {MinDigits: 1, Digits: 2, MinTerms: 2, Terms: 2, Ops: "+-"},
	3: {MinDigits: 1, Digits: 2, MinTerms: 2, Terms: 3, Ops: "+-*"},
	4: {MinDigits: 1, Digits: 3, MinTerms: 2, Terms: 3, Ops: "+-*"},
	5: {MinDigits: 2, Digits: 3, MinTerms: 3, Terms: 4, Ops: "+-*/"},
}

func defaultArithmetic() ArithmeticParams {
	p := arithmeticPresets[2]
	p.Format = "short"
	p.Holdout = 0.1
	return p
}

type arithmetic struct {
	p      ArithmeticParams
	verify *reward.MathAnswer
}

func newArithmetic(params map[string]any) (*arithmetic, error) {
	p := defaultArithmetic()
	if d, ok := params["difficulty"]; ok {
		var probe struct {
			Difficulty int `json:"difficulty"`
		}
		if err := decodeParams("arithmetic", map[string]any{"difficulty": d}, &probe); err != nil {
			return nil, err
		}
		preset, ok := arithmeticPresets[probe.Difficulty]
		if !ok && probe.Difficulty != 0 {
			return nil, &ParamError{Task: "arithmetic", Param: "difficulty", Msg: fmt.Sprintf("difficulty must be 0 (none) or 1–5, got %d", probe.Difficulty)}
		}
		if ok {
			preset.Format, preset.Holdout = p.Format, p.Holdout
			p = preset
		}
	}
	if err := decodeParams("arithmetic", params, &p); err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("task arithmetic: %w", err)
	}
	verify, err := reward.NewArithmetic(arithmeticVerifier(p))
	if err != nil {
		return nil, fmt.Errorf("task arithmetic: %w", err)
	}
	return &arithmetic{p: p, verify: verify}, nil
}

func (p ArithmeticParams) validate() error {
	switch {
	case p.MinDigits < 1 || p.Digits < p.MinDigits || p.Digits > 9:
		return fmt.Errorf("need 1 <= min_digits <= digits <= 9, got min_digits %d digits %d", p.MinDigits, p.Digits)
	case p.MinTerms < 2 || p.Terms < p.MinTerms || p.Terms > 8:
		return fmt.Errorf("need 2 <= min_terms <= terms <= 8, got min_terms %d terms %d", p.MinTerms, p.Terms)
	case p.Ops == "" || strings.Trim(p.Ops, "+-*/") != "":
		return fmt.Errorf("ops must be a non-empty subset of \"+-*/\", got %q", p.Ops)
	case p.Format != "short" && p.Format != "text" && p.Format != "steps":
		return fmt.Errorf("format must be \"short\", \"text\" or \"steps\", got %q", p.Format)
	case p.Format == "steps" && strings.Trim(p.Ops, "+-") != "":
		return fmt.Errorf("format \"steps\" works left to right: ops must be a subset of \"+-\", got %q", p.Ops)
	case !(p.Holdout >= 0 && p.Holdout < 1):
		return fmt.Errorf("holdout must be in [0, 1), got %v", p.Holdout)
	}
	return nil
}

func (a *arithmetic) Name() string { return "arithmetic" }

func (a *arithmetic) Describe() string { return fmt.Sprintf("arithmetic%+v", a.p) }

// Prompt renders an expression in the configured format.
func (a *arithmetic) prompt(expr string) string {
	if a.p.Format == "text" {
		return "What is " + expr + "? Answer: "
	}
	return expr + "="
}

func pow10(d int) int {
	n := 1
	for ; d > 0; d-- {
		n *= 10
	}
	return n
}

// operand draws a number with MinDigits..Digits digits (one-digit numbers
// include 0; a divisor never is 0).
func (a *arithmetic) operand(r *rng, nonzero bool) int {
	d := r.IntRange(a.p.MinDigits, a.p.Digits)
	lo, hi := pow10(d-1), pow10(d)-1
	if d == 1 {
		lo = 0
	}
	if nonzero && lo == 0 {
		lo = 1
	}
	return r.IntRange(lo, hi)
}

// candidate draws operands and operators. The right operand of '/' is a
// random divisor of its left neighbour, so most draws divide exactly and
// operands keep their digit counts; the rest (chained divisions) are
// rejected.
func (a *arithmetic) candidate(r *rng) (string, bool) {
	n := r.IntRange(a.p.MinTerms, a.p.Terms)
	nums := make([]int, n)
	ops := make([]byte, n-1)
	for i := range ops {
		ops[i] = a.p.Ops[r.Intn(len(a.p.Ops))]
	}
	for i := range nums {
		nums[i] = a.operand(r, i < n-1 && ops[i] == '/')
		if i > 0 && ops[i-1] == '/' {
			nums[i] = randomDivisor(r, nums[i-1])
		}
	}
	var b strings.Builder
	for i, v := range nums {
		if i > 0 {
			b.WriteByte(ops[i-1])
		}
		b.WriteString(strconv.Itoa(v))
	}
	expr := b.String()
	val, _, err := evalExpr(expr)
	if err != nil || !val.IsInt() || (!a.p.AllowNegative && val.Sign() < 0) {
		return expr, false
	}
	return expr, true
}

func (a *arithmetic) Generate(seed uint64, split Split, i uint64) Example {
	ex := generateSplit(seed, split, i, a.p.Holdout, func(r *rng) Example {
		var expr string
		for try := 0; try < 64; try++ {
			var ok bool
			if expr, ok = a.candidate(r); ok {
				break
			}
			// After 64 rejected draws (rare: chained divisions or
			// negative results) the operators become all '+', which is
			// always valid.
			if try == 63 {
				expr = strings.NewReplacer("-", "+", "*", "+", "/", "+").Replace(expr)
			}
		}
		val, _, _ := evalExpr(expr) // valid by construction
		ex := Example{Prompt: a.prompt(expr), Answer: val.Num().String(),
			Fields: map[string]any{"expression": expr}}
		if a.p.Format == "steps" {
			// The warm-up's target shows the steps; rewards compare
			// with the final integer.
			ex.Fields["answer"] = ex.Answer
			ex.Answer = runningResults(expr)
		}
		return ex
	})
	ex.ID = fmt.Sprintf("arithmetic/%s/%d", split, i)
	return ex
}

func (a *arithmetic) Alphabet() string {
	text := "="
	if a.p.Format == "text" {
		text = a.prompt("")
	}
	neg := ""
	if a.p.AllowNegative {
		neg = "-"
	}
	steps := ""
	if a.p.Format == "steps" {
		steps = ";"
	}
	return alphabet("0123456789", a.p.Ops, text, neg, steps)
}

// runningResults evaluates an expression of + and − left to right and
// joins the result after each operation with ";" ("12+7-3" → "19;16").
func runningResults(expr string) string {
	var out []string
	acc, num, op, first := 0, 0, byte('+'), true
	flush := func() {
		if op == '+' {
			acc += num
		} else {
			acc -= num
		}
		if !first {
			out = append(out, strconv.Itoa(acc))
		}
		first = false
		num = 0
	}
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c >= '0' && c <= '9' {
			num = num*10 + int(c-'0')
			continue
		}
		flush()
		op = c
	}
	flush()
	return strings.Join(out, ";")
}

// Score is the arithmetic reward's verifier (reward.NewArithmetic): 1 when
// the completion's answer (its first line, <answer> tags or \boxed{}; a
// sentence reduced to its last number) is the integer ex.Answer written as
// digits.
func (a *arithmetic) Score(ex Example, completion string) float64 {
	want := ex.Answer
	if s, ok := ex.Fields["answer"].(string); ok && a.p.Format == "steps" {
		want = s // ex.Answer holds the steps
	}
	if ok, _ := a.verify.Check(completion, []string{want}); ok {
		return 1
	}
	return 0
}

// Reward is the training reward that judges like Score.
func (a *arithmetic) Reward() (string, map[string]any) {
	if a.p.Format == "steps" {
		return "arithmetic", map[string]any{"extract": arithmeticVerifier(a.p).Extract}
	}
	return "arithmetic", nil
}

// arithmeticVerifier is the verifier's configuration: the steps format's
// answer is the last number of the completion ("19;16" → 16).
func arithmeticVerifier(p ArithmeticParams) reward.ArithmeticParams {
	v := reward.DefaultArithmeticParams()
	if p.Format == "steps" {
		v.Extract = []string{reward.ExtractAnswerTag, reward.ExtractBoxed, reward.ExtractLastNumber}
	}
	return v
}

// randomDivisor returns a uniformly chosen divisor of n > 0, preferring
// proper divisors (not 1 or n) when there are any.
func randomDivisor(r *rng, n int) int {
	var all, proper []int
	for d := 1; d*d <= n; d++ {
		if n%d == 0 {
			all = append(all, d)
			if d != n/d {
				all = append(all, n/d)
			}
		}
	}
	for _, d := range all {
		if d != 1 && d != n {
			proper = append(proper, d)
		}
	}
	if len(proper) > 0 {
		return proper[r.Intn(len(proper))]
	}
	return all[r.Intn(len(all))]
}
