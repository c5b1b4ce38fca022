package reward

import (
	"context"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// Pieces that random completions are built from: tags, boxes, numbers in
// many notations, Unicode digits, broken structure.
var pieces = []string{
	"<think>", "</think>", "<answer>", "</answer>", `\boxed{`, "}", "{", `\frac{`, "####", "\n",
	"the answer is ", "not ", "5", "-6", "1,234", "3/4", "50%", "10^30", "1e30", "٤٢", "４", "−7", ".", ",",
	":", "Thought process:", " ", "(", ")", "+", "*", "÷", "×", "3", "2", "7", "=", "x", "é", "\xff",
	"```json\n{\"a\":1}\n```", "hello", "sorry",
}

func randomCompletion(rng *rand.Rand) string {
	var b strings.Builder
	n := rng.Intn(30)
	for i := 0; i < n; i++ {
		b.WriteString(pieces[rng.Intn(len(pieces))])
	}
	return b.String()
}

func randomSample(rng *rand.Rand, i int) Sample {
	text := randomCompletion(rng)
	ids := make([]int32, rng.Intn(1200))
	return Sample{
		Prompt: "q", Completion: text, CompletionIDs: ids, Group: i / 4,
		Fields: map[string]any{
			"answer":     []any{"5", "-6", "3/4", "1234"}[rng.Intn(4)],
			"numbers":    []any{3.0, 2.0, 7.0},
			"target":     13.0,
			"references": []any{"the answer is 5", "5"},
			"checklist": []any{
				map[string]any{"type": "contains", "value": "answer", "weight": 2.0},
				map[string]any{"type": "json"},
				map[string]any{"type": "regex", "pattern": `\d+`},
				map[string]any{"type": "number_range", "min": 0.0, "max": 10.0},
			},
			"tests": []any{
				map[string]any{"type": "contains", "value": "5"},
				map[string]any{"type": "not_contains", "value": "sorry"},
			},
		},
	}
}

// Property: every built-in returns finite scores inside its documented range
// on arbitrary (including malformed) completions, and never a per-sample
// error when the sample's fields are well formed.
func TestScoresInDocumentedRange(t *testing.T) {
	specs := []Spec{
		{Type: "math_answer"},
		{Type: "math_answer", Params: map[string]any{"missing": -1.0, "wrong": -0.5, "multiple": "consistent"}},
		{Type: "arithmetic"},
		{Type: "countdown", Params: map[string]any{"format_score": 0.1}},
		{Type: "exact_match"},
		{Type: "format"},
		{Type: "format", Params: map[string]any{"partial": true}},
		{Type: "format", Params: map[string]any{"mode": "regex", "pattern": `(?s).*<answer>.*`, "partial": true}},
		{Type: "length", Params: map[string]any{"lo": 100, "hi": 500, "ramp": 200}},
		{Type: "length", Params: map[string]any{"mode": "cosine", "hi": 500, "ramp": 200, "inside": 0.5, "outside": -2}},
		{Type: "length", Params: map[string]any{"mode": "overlong", "max_length": 1000, "buffer": 300}},
		{Type: "checklist"},
		{Type: "checklist", Params: map[string]any{"adaptive": true}},
		{Type: "partial_credit"},
		{Type: "bleu"},
	}
	rng := rand.New(rand.NewSource(7))
	samples := make([]Sample, 400)
	for i := range samples {
		samples[i] = randomSample(rng, i)
	}
	for _, spec := range specs {
		r, err := Build(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec.Type, err)
		}
		lo, hi := r.(Ranged).Range()
		for round := 0; round < 2; round++ { // twice: stateful rewards change
			out, err := r.Score(context.Background(), samples)
			if err != nil {
				t.Fatalf("%s: %v", spec.Type, err)
			}
			for i, v := range out.Values {
				if out.Errs != nil && out.Errs[i] != nil {
					t.Fatalf("%s %v: sample %d (%q): %v", spec.Type, spec.Params, i, samples[i].Completion, out.Errs[i])
				}
				if !finite(v) || v < lo || v > hi {
					t.Fatalf("%s %v: sample %d (%q): score %v outside [%v, %v]", spec.Type, spec.Params, i, samples[i].Completion, v, lo, hi)
				}
			}
		}
	}
}

// FuzzMathAnswer checks that arbitrary completions and references never
// panic and that a reference always matches itself when boxed.
func FuzzMathAnswer(f *testing.F) {
	for _, s := range []string{`\boxed{\frac{1}{2}}`, "#### 1,234", "10^{400}", "٤٢", `\boxed{{`, "1e-400", "<answer>5</answer>"} {
		f.Add(s, "5")
	}
	m, err := NewMathAnswer(DefaultMathAnswerParams())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, completion, gold string) {
		// A number like 10^{400000} expanded digit by digit takes minutes;
		// any honest input takes milliseconds, even on a loaded machine.
		within(t, 10*time.Second, "Check", func() { m.Check(completion, []string{gold}) })
		if n, ok := parseNumber(cleanAnswer(gold)); ok && !strings.ContainsAny(gold, "{}\\#<>") {
			if ok, _ := m.Check(`\boxed{`+gold+`}`, []string{gold}); !ok {
				t.Errorf("boxed %q does not match itself (parsed %v)", gold, n.v)
			}
		}
	})
}
