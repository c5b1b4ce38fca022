package reward

import (
	"context"
	"strings"
	"testing"
)

func mustMath(t *testing.T, mod func(*MathAnswerParams)) *MathAnswer {
	t.Helper()
	p := DefaultMathAnswerParams()
	if mod != nil {
		mod(&p)
	}
	m, err := NewMathAnswer(p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMathAnswerDefaults(t *testing.T) {
	m := mustMath(t, nil)
	cases := []struct {
		name, completion, gold string
		want, found            bool
	}{
		{"plain last number", "So the total is 42.", "42", true, true},
		{"not 5 it is 6", "the answer is not 5, it is 6", "6", true, true},
		{"not 5 it is 6 gold 5", "the answer is not 5, it is 6", "5", false, true},
		{"boxed", `so $\boxed{12}$ apples`, "12", true, true},
		{"boxed nested frac", `\boxed{\frac{1}{2}}`, "0.5", true, true},
		{"boxed dfrac vs slash", `\boxed{\dfrac{3}{4}}`, "3/4", true, true},
		{"boxed nested braces", `\boxed{{{7}}}`, "7", true, true},
		{"several boxed: last wins", `\boxed{3} no wait \boxed{4}`, "4", true, true},
		{"several boxed: last wins (wrong)", `\boxed{3} no wait \boxed{4}`, "3", false, true},
		{"boxed inside think ignored", `<think>maybe \boxed{5}</think> The answer is 6`, "6", true, true},
		{"boxed inside think not credited", `<think>maybe \boxed{5}</think> The answer is 6`, "5", false, true},
		{"unclosed think has no answer", `<think>I think \boxed{5}`, "5", false, false},
		{"answer tag", "<think>x</think><answer>17</answer>", "17", true, true},
		{"answer tag with words", "<answer>The total is 1,234 apples</answer>", "1234", true, true},
		{"answer tag beats earlier number", "first 3 then <answer>9</answer> and 12", "9", true, true},
		{"unclosed answer tag falls through", "<answer>9", "9", true, true},
		{"hash", "blah 3\n#### 72\n", "72", true, true},
		{"gsm8k gold", "#### 72", "Natalia sold 48/2 = 24 clips.\n#### 72", true, true},
		{"thousands", "It costs 1,234,567 dollars", "1234567", true, true},
		{"bad thousands", `\boxed{1,23}`, "123", false, true},
		{"negative", "The result is -5.", "-5", true, true},
		{"unicode minus", `\boxed{−5}`, "-5", true, true},
		{"negative not subtraction", "10-5", "5", true, true},
		{"percent equals number", `\boxed{50\%}`, "50", true, true},
		{"percent equals fraction", `\boxed{50\%}`, "0.5", true, true},
		{"decimal tolerance", `\boxed{0.3333333}`, "1/3", true, true},
		{"decimal too far", `\boxed{0.333}`, "1/3", false, true},
		{"fraction equal", `\boxed{2/4}`, `\frac12`, true, true},
		{"fullwidth digits", "答案是 ４２", "42", true, true},
		{"arabic-indic digits", "الجواب ٤٢", "42", true, true},
		{"10^30 vs 1e30", `\boxed{10^{30}}`, "1e30", true, true},
		{"10^30 as last number", `it is 10^30`, "1000000000000000000000000000000", true, true},
		{"times ten", `\boxed{2.5 \times 10^{3}}`, "2500", true, true},
		{"equation rhs", `\boxed{x = 4}`, "4", true, true},
		{"units dropped", `\boxed{5 \text{ cm}}`, "5", true, true},
		{"gold is boxed", `\boxed{8}`, `\boxed{8}`, true, true},
		{"string answer", `\boxed{\sqrt{2}}`, `\sqrt{2}`, true, true},
		{"string answer spacing", `\boxed{\sqrt {2}}`, `\sqrt{2}`, true, true},
		{"multiple choice", `\boxed{\text{(B)}}`, "B", true, true},
		{"multiple choice lower", `<answer>b.</answer>`, "(B)", true, true},
		{"multiple choice wrong", `\boxed{(C)}`, "B", false, true},
		{"wrong string answer", `\boxed{\sqrt{3}}`, `\sqrt{2}`, false, true},
		{"empty completion", "", "5", false, false},
		{"thought process only", "Thought process:", "5", false, false},
		{"colon only", ":", "5", false, false},
		{"2x is not 2", `\boxed{2x}`, "2", false, true},
		{"superscript is not a digit", "x²", "2", false, false},
		{"huge exponent rejected", `\boxed{10^{99999999}}`, "1", false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, found := m.Check(c.completion, []string{c.gold})
			if ok != c.want || found != c.found {
				t.Errorf("Check(%q, %q) = (%v, %v), want (%v, %v)", c.completion, c.gold, ok, found, c.want, c.found)
			}
		})
	}
}

func TestMathAnswerOptions(t *testing.T) {
	cases := []struct {
		name       string
		mod        func(*MathAnswerParams)
		completion string
		gold       string
		want       bool
	}{
		{"exact tolerance distinguishes 10^30+1", func(p *MathAnswerParams) { p.Tolerance = 0 }, `\boxed{1000000000000000000000000000001}`, "10^30", false},
		{"default tolerance accepts 10^30+1", nil, `\boxed{1000000000000000000000000000001}`, "10^30", true},
		{"first boxed", func(p *MathAnswerParams) { p.Multiple = PickFirst }, `\boxed{3} \boxed{4}`, "3", true},
		{"consistent rejects hedging", func(p *MathAnswerParams) { p.Multiple = PickConsistent }, `\boxed{3} \boxed{4}`, "4", false},
		{"consistent accepts agreement", func(p *MathAnswerParams) { p.Multiple = PickConsistent }, `\boxed{4} so \boxed{4}`, "4", true},
		{"percent strict", func(p *MathAnswerParams) { p.PercentAsFraction = false }, `\boxed{50\%}`, "0.5", false},
		{"exact compare", func(p *MathAnswerParams) { p.Compare = CompareExact }, `\boxed{0.50}`, "0.5", false},
		{"normalized compare", func(p *MathAnswerParams) { p.Compare = CompareNormalized }, `\boxed{ \frac{1}{2} }`, `\dfrac{1}{2}`, true},
		{"last number only", func(p *MathAnswerParams) { p.Extract = []string{ExtractLastNumber} }, `\boxed{3} then 4`, "4", true},
		{"think kept", func(p *MathAnswerParams) { p.IgnoreThink = false }, `<think>\boxed{5}</think> so 6`, "5", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mustMath(t, c.mod)
			if ok, _ := m.Check(c.completion, []string{c.gold}); ok != c.want {
				t.Errorf("Check(%q, %q) = %v, want %v", c.completion, c.gold, ok, c.want)
			}
		})
	}
}

func TestMathAnswerScoreFieldsAndErrors(t *testing.T) {
	m := mustMath(t, func(p *MathAnswerParams) { p.Missing = -1 })
	samples := []Sample{
		{Completion: `\boxed{4}`, Fields: map[string]any{"answer": 4.0}},             // JSON number
		{Completion: `\boxed{4}`, Fields: map[string]any{"answer": []any{"3", "4"}}}, // list of answers
		{Completion: `\boxed{4}`, Fields: map[string]any{"answer": "5"}},
		{Completion: `nothing`, Fields: map[string]any{"answer": "5"}},
		{Completion: `\boxed{4}`, Fields: map[string]any{}}, // missing field: error
	}
	out, err := m.Score(context.Background(), samples)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{1, 1, 0, -1}
	for i, w := range want {
		if out.Values[i] != w || (out.Errs != nil && out.Errs[i] != nil) {
			t.Errorf("sample %d: got %v (err %v), want %v", i, out.Values[i], out.Errs[i], w)
		}
	}
	if out.Errs == nil || out.Errs[4] == nil || !strings.Contains(out.Errs[4].Error(), `"answer"`) {
		t.Errorf("missing answer field: want an error naming the field, got %v", out.Errs)
	}
	if got := out.Metrics["extracted_frac"]; got != 3.0/5 {
		t.Errorf("extracted_frac = %v, want 0.6", got)
	}
}

func TestArithmetic(t *testing.T) {
	a, err := NewArithmetic(DefaultArithmeticParams())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		completion string
		answer     any
		want       float64
	}{
		{"<answer>391</answer>", "391", 1},
		{"17 * 23 = 391", "391", 1},
		{"<answer>391.0000001</answer>", "391", 0}, // integers compare exactly
		{"<answer>-12</answer>", "-12", 1},
		{"<answer>-12</answer>", -12.0, 1},
		{"<answer>12</answer>", "-12", 0},
		{"", "1", 0},
		{"391\n12", "391", 1}, // the answer is on the first line
		{"The answer is 391", "391", 1},
	}
	for _, c := range cases {
		out, err := a.Score(context.Background(), []Sample{{Completion: c.completion, Fields: map[string]any{"answer": c.answer}}})
		if err != nil || out.Errs != nil {
			t.Fatalf("%q: %v %v", c.completion, err, out.Errs)
		}
		if out.Values[0] != c.want {
			t.Errorf("%q vs %v: got %v, want %v", c.completion, c.answer, out.Values[0], c.want)
		}
	}
}

func TestLastNumber(t *testing.T) {
	cases := []struct{ in, want string }{
		{"a 1 b 2", "2"},
		{"x = -3.5.", "-3.5"},
		{"1,234 and 5", "5"},
		{"total 1,234", "1,234"},
		{"3/4 of it", "3/4"},
		{"2e5 grams", "2e5"},
		{"3eggs", "3"},
		{"10^{30}", "10^{30}"},
		{"50%", "50%"},
		{"x-1", "1"},
	}
	for _, c := range cases {
		got, _ := lastNumber(c.in)
		if got != c.want {
			t.Errorf("lastNumber(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
