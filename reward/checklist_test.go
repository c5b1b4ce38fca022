package reward

import (
	"context"
	"math"
	"strings"
	"testing"
)

func TestCriteria(t *testing.T) {
	cases := []struct {
		name string
		crit map[string]any
		text string
		want bool
	}{
		{"contains fold", map[string]any{"type": "contains", "value": "PARIS"}, "it is paris", true},
		{"contains case", map[string]any{"type": "contains", "value": "PARIS", "case_sensitive": true}, "it is paris", false},
		{"not contains", map[string]any{"type": "not_contains", "value": "sorry"}, "Sorry, I can't", false},
		{"regex", map[string]any{"type": "regex", "pattern": `^\d{3}-\d{4}$`}, "555-1234", true},
		{"not regex", map[string]any{"type": "not_regex", "pattern": `(?i)as an ai`}, "As an AI model", false},
		{"length chars", map[string]any{"type": "length", "min": 2.0, "max": 5.0}, "héllo", true},
		{"length words", map[string]any{"type": "max_length", "max": 3.0, "unit": "words"}, "one two three four", false},
		{"length lines", map[string]any{"type": "min_length", "min": 2.0, "unit": "lines"}, "a\nb\n", true},
		{"json", map[string]any{"type": "json"}, "```json\n{\"a\": [1, 2]}\n```", true},
		{"json invalid", map[string]any{"type": "json"}, "{\"a\": }", false},
		{"number range", map[string]any{"type": "number_range", "min": 10.0, "max": 20.0}, "about 1,5 then 15.5 kg", true},
		{"number range out", map[string]any{"type": "number_range", "min": 10.0}, "it is 9", false},
		{"number range none", map[string]any{"type": "number_range", "min": 10.0}, "no numbers", false},
		{"equals answer", map[string]any{"type": "equals", "value": "0.5", "target": "answer"}, "<answer>\\frac{1}{2}</answer>", true},
		{"response drops think", map[string]any{"type": "not_contains", "value": "secret"}, "<think>secret</think>public", true},
		{"completion keeps think", map[string]any{"type": "not_contains", "value": "secret", "target": "completion"}, "<think>secret</think>public", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr, err := criterionFromAny(c.crit)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cr.pass(&targets{s: &Sample{Completion: c.text}})
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("pass = %v, want %v", got, c.want)
			}
		})
	}
	bad := []map[string]any{
		{"type": "contains"},
		{"type": "regex", "pattern": "("},
		{"type": "length"},
		{"type": "json", "weight": -1.0},
		{"type": "shout"},
		{"type": "json", "colour": "red"},
		{"type": "json", "target": "middle"},
	}
	for _, b := range bad {
		if _, err := criterionFromAny(b); err == nil {
			t.Errorf("criterion %v accepted", b)
		}
	}
}

func TestChecklistScore(t *testing.T) {
	list := []any{
		map[string]any{"type": "contains", "value": "hello", "weight": 3.0},
		map[string]any{"type": "json"},
	}
	c, err := NewChecklist(DefaultChecklistParams())
	if err != nil {
		t.Fatal(err)
	}
	samples := []Sample{
		{Completion: "hello", Fields: map[string]any{"checklist": list}},
		{Completion: `{"x": "hello"}`, Fields: map[string]any{"checklist": list}},
		{Completion: `[1]`, Fields: map[string]any{"checklist": list}},
		{Completion: "", Fields: map[string]any{"checklist": list}},
		{Completion: "hello", Fields: map[string]any{}},                                                // no criteria: error
		{Completion: "hello", Fields: map[string]any{"checklist": []any{map[string]any{"type": "x"}}}}, // bad criterion: error
	}
	out, err := c.Score(context.Background(), samples)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0.75, 1, 0.25, 0}
	for i, w := range want {
		if math.Abs(out.Values[i]-w) > 1e-12 {
			t.Errorf("sample %d: %v, want %v", i, out.Values[i], w)
		}
	}
	if out.Errs == nil || out.Errs[4] == nil || out.Errs[5] == nil {
		t.Errorf("want errors for samples 4 and 5, got %v", out.Errs)
	}
	// Params criteria apply to every sample.
	p := DefaultChecklistParams()
	p.Criteria = []Criterion{{Type: "not_contains", Value: "sorry"}}
	c2, err := NewChecklist(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := score1(t, c2, Sample{Completion: "hello", Fields: map[string]any{"checklist": list}})
	if err != nil || math.Abs(got-(1+3)/5.0) > 1e-12 {
		t.Errorf("global+own: %v (%v), want 0.8", got, err)
	}
}

func TestChecklistAdaptive(t *testing.T) {
	// Criterion 0 passes for everyone (no signal), criterion 1 splits the
	// group. Adaptive weighting should move scores toward criterion 1.
	list := []any{
		map[string]any{"type": "contains", "value": "a"},
		map[string]any{"type": "contains", "value": "b"},
	}
	group := []Sample{
		{Group: 7, Completion: "a b", Fields: map[string]any{"checklist": list}},
		{Group: 7, Completion: "a", Fields: map[string]any{"checklist": list}},
	}
	p := DefaultChecklistParams()
	p.Adaptive = true
	c, _ := NewChecklist(p)
	out, err := c.Score(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	// Weights: criterion 0 → 0.1 (p=1), criterion 1 → 0.1 + 2·0.5 = 1.1.
	if math.Abs(out.Values[0]-1) > 1e-12 || math.Abs(out.Values[1]-0.1/1.2) > 1e-12 {
		t.Errorf("adaptive: %v, want [1 %v]", out.Values, 0.1/1.2)
	}
	// Static weights give 1 and 0.5.
	c.p.Adaptive = false
	out, _ = c.Score(context.Background(), group)
	if out.Values[1] != 0.5 {
		t.Errorf("static: %v, want 0.5", out.Values[1])
	}
}

func TestChecklistRegexBoundedTime(t *testing.T) {
	list := []any{map[string]any{"type": "regex", "pattern": `^(a|aa)+$`}, map[string]any{"type": "regex", "pattern": `(x+x+)+y`}}
	c, _ := NewChecklist(DefaultChecklistParams())
	evil := strings.Repeat("a", 50000) + "!" + strings.Repeat("x", 50000)
	var got float64
	var err error
	within(t, hangLimit, "adversarial regex", func() {
		got, err = score1(t, c, Sample{Completion: evil, Fields: map[string]any{"checklist": list}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != 0 {
		t.Errorf("got %v, want 0", got)
	}
}

func TestPartialCredit(t *testing.T) {
	tests := []any{
		map[string]any{"id": "easy", "type": "contains", "value": "a"},
		map[string]any{"id": "hard", "type": "contains", "value": "z"},
	}
	p := DefaultPartialCreditParams()
	p.Decay = 1
	pc, err := NewPartialCredit(p)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(text string) Sample {
		return Sample{Prompt: "q", Completion: text, Fields: map[string]any{"tests": tests}}
	}
	// First batch: both checks start at pass rate 1/2, so equal weights.
	out, err := pc.Score(context.Background(), []Sample{mk("a"), mk("a"), mk("a"), mk("a z")})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Values[0]; math.Abs(got-0.5*0.5) > 1e-12 {
		t.Errorf("first batch, easy only: %v, want 0.25", got)
	}
	if out.Values[3] != 1 {
		t.Errorf("all pass: %v, want 1", out.Values[3])
	}
	// Now easy has rate (4+1)/(4+2), hard (1+1)/(4+2): passing the hard
	// check is worth more than passing the easy one.
	out, err = pc.Score(context.Background(), []Sample{mk("a"), mk("z")})
	if err != nil {
		t.Fatal(err)
	}
	wEasy := 0.05 + 1 - 5.0/6
	wHard := 0.05 + 1 - 2.0/6
	if math.Abs(out.Values[0]-0.5*wEasy/(wEasy+wHard)) > 1e-12 || math.Abs(out.Values[1]-0.5*wHard/(wEasy+wHard)) > 1e-12 {
		t.Errorf("second batch: %v, want [%v %v]", out.Values, 0.5*wEasy/(wEasy+wHard), 0.5*wHard/(wEasy+wHard))
	}
	if out.Values[1] <= out.Values[0] {
		t.Error("the hard check should earn more")
	}
	// State round trip reproduces the next batch's scores.
	state, err := pc.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	pc2, _ := NewPartialCredit(p)
	if err := pc2.UnmarshalState(state); err != nil {
		t.Fatal(err)
	}
	a, _ := pc.Score(context.Background(), []Sample{mk("a")})
	b, _ := pc2.Score(context.Background(), []Sample{mk("a")})
	if a.Values[0] != b.Values[0] {
		t.Errorf("restored state scores %v, original %v", b.Values[0], a.Values[0])
	}
	if err := pc2.UnmarshalState([]byte("{")); err == nil {
		t.Error("bad state accepted")
	}
}

func TestPartialCreditCap(t *testing.T) {
	p := DefaultPartialCreditParams()
	p.MaxTracked = 1
	pc, _ := NewPartialCredit(p)
	s := func(prompt string) Sample {
		return Sample{Prompt: prompt, Completion: "a", Fields: map[string]any{"tests": []any{map[string]any{"type": "contains", "value": "a"}}}}
	}
	out, err := pc.Score(context.Background(), []Sample{s("p1"), s("p2"), s("p3")})
	if err != nil {
		t.Fatal(err)
	}
	if out.Metrics["tracked_checks"] != 1 {
		t.Errorf("tracked %v, want 1", out.Metrics["tracked_checks"])
	}
}
