package reward

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

// hangLimit bounds the wall-clock time of a call whose failure would take
// an hour or forever (a reward waited for past its timeout, a regular
// expression backtracking exponentially), never the machine's speed: the
// suite runs on loaded 2-core machines, where a call taking 2 s alone has
// taken 15.
const hangLimit = 2 * time.Minute

// within runs f and fails t if it took longer than limit.
func within(t *testing.T, limit time.Duration, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	if el := time.Since(start); el > limit {
		t.Errorf("%s took %v (limit %v)", what, el, limit)
	}
}

func score1(t *testing.T, r Reward, s Sample) (float64, error) {
	t.Helper()
	out, err := r.Score(context.Background(), []Sample{s})
	if err != nil {
		t.Fatal(err)
	}
	if out.Errs != nil && out.Errs[0] != nil {
		return 0, out.Errs[0]
	}
	return out.Values[0], nil
}

func TestFormatTags(t *testing.T) {
	strict, err := NewFormat(DefaultFormatParams())
	if err != nil {
		t.Fatal(err)
	}
	pp := DefaultFormatParams()
	pp.Partial = true
	partial, err := NewFormat(pp)
	if err != nil {
		t.Fatal(err)
	}
	ip := DefaultFormatParams()
	ip.ThinkInPrompt = true
	inPrompt, err := NewFormat(ip)
	if err != nil {
		t.Fatal(err)
	}
	// Partial credit counts 6 checks for two tags.
	cases := []struct {
		name string
		r    *Format
		text string
		want float64
	}{
		{"well formed", strict, "<think>reason 1</think>\n<answer>42</answer>", 1},
		{"well formed partial", partial, "<think>reason</think><answer>42</answer>", 1},
		{"empty", strict, "", 0},
		{"empty partial", partial, "", 0},
		{"thought process only", partial, "Thought process:", 0},
		{"colon only", partial, ":", 0},
		{"colon answer", partial, "<think>ok</think><answer>:</answer>", 5.0 / 6},
		{"text after answer", strict, "<think>a</think><answer>1</answer> and more", 0},
		{"text after answer partial", partial, "<think>a</think><answer>1</answer> and more", 5.0 / 6},
		{"unclosed answer", partial, "<think>a</think><answer>1", 2.0 / 6},
		{"unclosed think", partial, "<think>a<answer>1</answer>", 2.0 / 6},
		{"wrong order", partial, "<answer>1</answer><think>a</think>", 4.0 / 6},
		{"duplicated answer", partial, "<think>a</think><answer>1</answer><answer>2</answer>", 2.0 / 6},
		{"think opened in prompt", inPrompt, "reasoning</think><answer>7</answer>", 1},
		{"think opened in prompt strict miss", strict, "reasoning</think><answer>7</answer>", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := score1(t, c.r, Sample{Completion: c.text})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-c.want) > 1e-12 {
				t.Errorf("score(%q) = %v, want %v", c.text, got, c.want)
			}
		})
	}
}

func TestFormatRegex(t *testing.T) {
	p := DefaultFormatParams()
	p.Mode = "regex"
	p.Pattern = `(a+)+$`
	f, err := NewFormat(p)
	if err != nil {
		t.Fatal(err)
	}
	// Catastrophic backtracking input for backtracking engines: RE2 is
	// linear, so 100k characters must take milliseconds, not ages.
	evil := strings.Repeat("a", 100000) + "b"
	var got float64
	within(t, hangLimit, "regex on adversarial input", func() { got, err = score1(t, f, Sample{Completion: evil}) })
	if err != nil {
		t.Fatal(err)
	}
	if got != 0 {
		t.Errorf("full match of %q…: got %v, want 0", evil[:5], got)
	}
	if got, _ := score1(t, f, Sample{Completion: "aaaa"}); got != 1 {
		t.Errorf("aaaa: got %v, want 1", got)
	}
	p.Pattern, p.Patterns, p.FullMatch, p.Partial = "", []string{`\d`, `^Answer:`}, false, true
	f, err = NewFormat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := score1(t, f, Sample{Completion: "Answer: none"}); got != 0.5 {
		t.Errorf("partial regex: got %v, want 0.5", got)
	}
	p.Patterns = []string{`(`}
	if _, err := NewFormat(p); err == nil {
		t.Error("bad pattern accepted")
	}
}

func TestLength(t *testing.T) {
	ids := func(n int) []int32 { return make([]int32, n) }
	mk := func(p LengthParams) *Length {
		l, err := NewLength(p)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	lin := mk(LengthParams{Mode: "linear", Unit: "tokens", Lo: 100, Hi: 200, Ramp: 50, Inside: 1, Outside: 0})
	cos := mk(LengthParams{Mode: "cosine", Unit: "tokens", Lo: 100, Hi: 200, Ramp: 50, Inside: 1, Outside: -1})
	over := mk(LengthParams{Mode: "overlong", Unit: "tokens", MaxLength: 1000, Buffer: 200})
	chars := mk(LengthParams{Mode: "linear", Unit: "chars", Hi: 3, Ramp: 2, Inside: 1})
	cases := []struct {
		name string
		r    *Length
		s    Sample
		want float64
	}{
		{"inside", lin, Sample{CompletionIDs: ids(150)}, 1},
		{"band edge", lin, Sample{CompletionIDs: ids(200)}, 1},
		{"ramp above", lin, Sample{CompletionIDs: ids(225)}, 0.5},
		{"ramp below", lin, Sample{CompletionIDs: ids(75)}, 0.5},
		{"far outside", lin, Sample{CompletionIDs: ids(5000)}, 0},
		{"empty", lin, Sample{CompletionIDs: ids(0)}, 0},
		{"cosine middle", cos, Sample{CompletionIDs: ids(225)}, 0},
		{"cosine partway", cos, Sample{CompletionIDs: ids(213)}, 1 + (-2)*(1-math.Cos(math.Pi*13/50))/2},
		{"overlong short", over, Sample{CompletionIDs: ids(800)}, 0},
		{"overlong buffer", over, Sample{CompletionIDs: ids(900)}, -0.5},
		{"overlong max", over, Sample{CompletionIDs: ids(1000)}, -1},
		{"overlong beyond", over, Sample{CompletionIDs: ids(1500)}, -1},
		{"chars count runes", chars, Sample{Completion: "héllo"}, 0},
		{"chars inside", chars, Sample{Completion: "日本"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := score1(t, c.r, c.s)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-c.want) > 1e-12 {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	if _, err := score1(t, lin, Sample{Completion: "text but no ids"}); err == nil {
		t.Error("tokens unit without ids: want an error")
	}
}

func TestExactMatch(t *testing.T) {
	def, _ := NewExactMatch(DefaultExactMatchParams())
	sp := DefaultExactMatchParams()
	sp.StripArticles = true
	squad, _ := NewExactMatch(sp)
	cp := DefaultExactMatchParams()
	cp.Lowercase, cp.StripPunctuation = false, false
	caseSens, _ := NewExactMatch(cp)
	cases := []struct {
		name string
		r    *ExactMatch
		text string
		ans  any
		want float64
	}{
		{"same", def, "Paris", "Paris", 1},
		{"case and punct", def, "  paris! ", "Paris", 1},
		{"answer tag", def, "<think>hmm London?</think><answer>Paris.</answer>", "paris", 1},
		{"list of answers", def, "NYC", []any{"New York", "NYC"}, 1},
		{"articles kept by default", def, "the Eiffel Tower", "Eiffel Tower", 0},
		{"articles stripped", squad, "the Eiffel Tower", "Eiffel Tower", 1},
		{"case sensitive", caseSens, "paris", "Paris", 0},
		{"empty", def, "", "Paris", 0},
		{"unclosed think", def, "<think>Paris", "Paris", 0},
		{"superset", def, "Paris, France", "Paris", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := score1(t, c.r, Sample{Completion: c.text, Fields: map[string]any{"answer": c.ans}})
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestCountdown(t *testing.T) {
	def, err := NewCountdown(DefaultCountdownParams())
	if err != nil {
		t.Fatal(err)
	}
	ap := DefaultCountdownParams()
	ap.UseAll = true
	all, _ := NewCountdown(ap)
	lp := DefaultCountdownParams()
	lp.Extract = []string{ExtractAnswerTag, ExtractLastLine}
	lastLine, _ := NewCountdown(lp)
	fp := DefaultCountdownParams()
	fp.FormatScore = 0.1
	fmtScore, _ := NewCountdown(fp)
	nums := []any{3.0, 5.0, 7.0, 2.0} // as decoded from JSON
	cases := []struct {
		name string
		r    *Countdown
		text string
		want float64
	}{
		{"exact", def, "<answer>(3 + 5) * 2</answer>", 1},
		{"unicode ops", def, "<answer>(7 − 5) × 8 ÷ 1</answer>", 0}, // 8 and 1 are not given
		{"division exact rational", def, "<answer>7 / 2 * 2 + 5 + 3</answer>", 0},
		{"rational intermediate", def, "<answer>(7 / 2 + 5 - 3 + 0) * 2</answer>", 0},
		{"rational ok", def, "<answer>(7 / 2) * (5 - 3) + 9</answer>", 0},
		{"first line", def, "(3+5)*2 = 16\nthen more text 4", 1},
		{"first line only", def, "I tried things.\n(3+5)*2 = 16", 0},
		{"last line", lastLine, "I tried things.\n(3+5)*2 = 16", 1},
		{"latex times", def, `<answer>$(3+5) \times 2$</answer>`, 1},
		{"number reused", def, "<answer>(3 + 5) * 2 * 2 / 2</answer>", 0},
		{"number not given", def, "<answer>4 * 4</answer>", 0},
		{"use all: missing", all, "<answer>(3 + 5) * 2</answer>", 0},
		{"use all: ok", all, "<answer>(7 - 3 - 2) * 5 + 6 - 6</answer>", 0},
		{"use all: exact", all, "<answer>(7 + 5 - 2) + 3 * 2 - 0</answer>", 0},
		{"use all: exact 2", all, "<answer>7 * 2 + 5 - 3</answer>", 1},
		{"wrong value", def, "<answer>3 + 5</answer>", 0},
		{"wrong value format score", fmtScore, "<answer>3 + 5</answer>", 0.1},
		{"invalid gets no format score", fmtScore, "<answer>3 +</answer>", 0},
		{"code is not run", def, "<answer>__import__('os').system('x')</answer>", 0},
		{"unary minus rejected", def, "<answer>-3 + 5 * 2 + 7 + 2</answer>", 0},
		{"division by zero", def, "<answer>7 / (5 - 5)</answer>", 0},
		{"empty", def, "", 0},
		{"thought process", def, "Thought process:", 0},
		{"deep nesting bounded", def, "<answer>" + strings.Repeat("(", 5000) + "3" + strings.Repeat(")", 5000) + "</answer>", 0},
		{"boxed in think ignored", def, "<think><answer>(3+5)*2</answer></think>\n3+5", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := score1(t, c.r, Sample{Completion: c.text, Fields: map[string]any{"numbers": nums, "target": 16.0}})
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("%q: got %v, want %v", c.text, got, c.want)
			}
		})
	}
	// Go-typed fields from the data package work too.
	got, err := score1(t, def, Sample{Completion: "<answer>7*2+2</answer>", Fields: map[string]any{"numbers": []int{7, 2, 3, 5, 2}, "target": 16}})
	if err != nil || got != 1 {
		t.Errorf("[]int fields: got %v, %v", got, err)
	}
	if _, err := score1(t, def, Sample{Completion: "1", Fields: map[string]any{"target": 1}}); err == nil {
		t.Error("missing numbers field: want an error")
	}
}
