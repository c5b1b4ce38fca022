package data

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func mustTask(t *testing.T, name string, params map[string]any) Task {
	t.Helper()
	task, err := NewTask(name, params)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func TestTasksDeterministicAndSelfConsistent(t *testing.T) {
	configs := []struct {
		name   string
		params map[string]any
		chars  string // every character a short-format prompt may use
	}{
		{"arithmetic", nil, "0123456789+-="},
		{"arithmetic", map[string]any{"difficulty": 5}, "0123456789+-*/="},
		{"arithmetic", map[string]any{"ops": "*/", "digits": 3, "terms": 4, "allow_negative": true}, "0123456789*/="},
		{"countdown", nil, "0123456789,:="},
		{"countdown", map[string]any{"count": 4, "max_value": 20, "ops": "+-*/", "max_target": 500}, "0123456789,:="},
	}
	for _, cfg := range configs {
		task := mustTask(t, cfg.name, cfg.params)
		for _, split := range []Split{Train, Eval} {
			for i := uint64(0); i < 300; i++ {
				ex := task.Generate(42, split, i)
				if again := task.Generate(42, split, i); !reflect.DeepEqual(ex, again) {
					t.Fatalf("%s: example %d not deterministic", task.Describe(), i)
				}
				if strings.Trim(ex.Prompt, cfg.chars) != "" {
					t.Fatalf("%s: prompt %q uses characters outside %q", cfg.name, ex.Prompt, cfg.chars)
				}
				if len(ex.Prompt) > 24 {
					t.Fatalf("%s: prompt %q is long for a tiny model", cfg.name, ex.Prompt)
				}
				for _, r := range ex.Prompt + ex.Answer {
					if !strings.ContainsRune(task.Alphabet(), r) {
						t.Fatalf("%s: %q of %q+%q is not in the alphabet %q", cfg.name, r, ex.Prompt, ex.Answer, task.Alphabet())
					}
				}
				if task.Score(ex, ex.Answer) != 1 {
					t.Fatalf("%s: reference answer %q of %q scores 0", cfg.name, ex.Answer, ex.Prompt)
				}
				if task.Score(ex, ex.Answer+"1") != 0 {
					t.Fatalf("%s: wrong answer %q of %q scores 1", cfg.name, ex.Answer+"1", ex.Prompt)
				}
			}
		}
	}
}

// The arithmetic answer is the exact value of the prompt's expression,
// checked here with an independent evaluator over int64 with precedence.
func TestArithmeticAnswers(t *testing.T) {
	task := mustTask(t, "arithmetic", map[string]any{"difficulty": 5, "allow_negative": true})
	for i := uint64(0); i < 500; i++ {
		ex := task.Generate(1, Train, i)
		expr := strings.TrimSuffix(ex.Prompt, "=")
		if got := strconv.FormatInt(evalInt(t, expr), 10); got != ex.Answer {
			t.Fatalf("%s: answer %s, independent evaluation %s", ex.Prompt, ex.Answer, got)
		}
	}
}

// evalInt evaluates a flat expression: split into +/- terms, each a
// left-to-right chain of * and exact /.
func evalInt(t *testing.T, expr string) int64 {
	var total int64
	sign := int64(1)
	start := 0
	for i := 0; i <= len(expr); i++ {
		if i == len(expr) || expr[i] == '+' || expr[i] == '-' {
			total += sign * evalProduct(t, expr[start:i])
			if i < len(expr) && expr[i] == '-' {
				sign = -1
			} else {
				sign = 1
			}
			start = i + 1
		}
	}
	return total
}

func evalProduct(t *testing.T, term string) int64 {
	fields := strings.FieldsFunc(term, func(r rune) bool { return r == '*' || r == '/' })
	ops := strings.Map(func(r rune) rune {
		if r == '*' || r == '/' {
			return r
		}
		return -1
	}, term)
	v, _ := strconv.ParseInt(fields[0], 10, 64)
	for i, op := range ops {
		w, _ := strconv.ParseInt(fields[i+1], 10, 64)
		if op == '*' {
			v *= w
		} else {
			if w == 0 || v%w != 0 {
				t.Fatalf("term %q divides inexactly", term)
			}
			v /= w
		}
	}
	return v
}

func TestArithmeticDifficultyAndRanges(t *testing.T) {
	tests := []struct {
		params            map[string]any
		minTerms, maxTerm int
		maxOperand        int
		noNegative        bool
	}{
		{map[string]any{"difficulty": 1}, 2, 2, 9, true},
		{map[string]any{"difficulty": 3}, 2, 3, 99, true},
		{map[string]any{"difficulty": 1, "digits": 2}, 2, 2, 99, true}, // explicit field overrides preset
		{map[string]any{"terms": 4, "min_terms": 4}, 4, 4, 99, true},
		{map[string]any{"difficulty": 5}, 3, 4, 999, true}, // divisions keep operand sizes
	}
	for _, tt := range tests {
		task := mustTask(t, "arithmetic", tt.params)
		for i := uint64(0); i < 200; i++ {
			ex := task.Generate(3, Train, i)
			expr := strings.TrimSuffix(ex.Prompt, "=")
			nums := strings.FieldsFunc(expr, func(r rune) bool { return strings.ContainsRune("+-*/", r) })
			if len(nums) < tt.minTerms || len(nums) > tt.maxTerm {
				t.Fatalf("%v: %q has %d terms", tt.params, expr, len(nums))
			}
			for _, n := range nums {
				if v, _ := strconv.Atoi(n); v > tt.maxOperand {
					t.Fatalf("%v: operand %d > %d in %q", tt.params, v, tt.maxOperand, expr)
				}
			}
			if tt.noNegative && strings.HasPrefix(ex.Answer, "-") {
				t.Fatalf("%v: negative answer %s for %q", tt.params, ex.Answer, expr)
			}
		}
	}
}

func TestAlphabet(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"arithmetic", nil, "+-0123456789="},
		{"arithmetic", map[string]any{"ops": "+*"}, "*+0123456789="},
		{"arithmetic", map[string]any{"ops": "+", "allow_negative": true}, "+-0123456789="},
		{"arithmetic", map[string]any{"format": "text"}, " +-0123456789:?AWaehinrstw"},
		{"countdown", nil, "()*+,-0123456789:="},
	}
	for _, tt := range tests {
		if got := mustTask(t, tt.name, tt.params).Alphabet(); got != tt.want {
			t.Errorf("%s %v: alphabet %q, want %q", tt.name, tt.params, got, tt.want)
		}
	}
	// Every character of generated text format examples is covered.
	for _, name := range TaskNames() {
		task := mustTask(t, name, map[string]any{"format": "text"})
		for i := uint64(0); i < 300; i++ {
			ex := task.Generate(2, Train, i)
			for _, r := range ex.Prompt + ex.Answer {
				if !strings.ContainsRune(task.Alphabet(), r) {
					t.Fatalf("%s: %q of %q is not in the alphabet %q", name, r, ex.Prompt, task.Alphabet())
				}
			}
		}
	}
}

func TestTextFormat(t *testing.T) {
	a := mustTask(t, "arithmetic", map[string]any{"format": "text"}).Generate(0, Train, 0)
	if !strings.HasPrefix(a.Prompt, "What is ") || !strings.HasSuffix(a.Prompt, "? Answer: ") {
		t.Fatalf("arithmetic text prompt %q", a.Prompt)
	}
	c := mustTask(t, "countdown", map[string]any{"format": "text"}).Generate(0, Train, 0)
	if !strings.HasPrefix(c.Prompt, "Using the numbers ") {
		t.Fatalf("countdown text prompt %q", c.Prompt)
	}
}

// Held-out prompts never appear in the training stream, and the eval set
// does not depend on the seed's training stream.
func TestHeldOutDisjoint(t *testing.T) {
	for _, name := range TaskNames() {
		task := mustTask(t, name, nil)
		eval := map[string]bool{}
		for _, ex := range EvalSet(task, 5, 200) {
			eval[ex.Prompt] = true
		}
		if len(eval) < 50 {
			t.Fatalf("%s: eval set has only %d distinct prompts", name, len(eval))
		}
		for i := uint64(0); i < 5000; i++ {
			if p := task.Generate(5, Train, i).Prompt; eval[p] {
				t.Fatalf("%s: training example %d %q is in the eval set", name, i, p)
			}
		}
		if !reflect.DeepEqual(EvalSet(task, 5, 10), EvalSet(task, 5, 10)) {
			t.Fatalf("%s: eval set not deterministic", name)
		}
		if reflect.DeepEqual(EvalSet(task, 5, 10), EvalSet(task, 6, 10)) {
			t.Fatalf("%s: eval set ignores the seed", name)
		}
	}
}

func TestCountdownSolvableAndInRange(t *testing.T) {
	task := mustTask(t, "countdown", map[string]any{"min_count": 3, "count": 4, "max_value": 12, "max_target": 150, "ops": "+-*/"})
	for i := uint64(0); i < 1000; i++ {
		ex := task.Generate(9, Train, i)
		nums := ex.Fields["numbers"].([]int)
		target := ex.Fields["target"].(int)
		if len(nums) < 3 || len(nums) > 4 || target < 1 || target > 150 {
			t.Fatalf("%q: numbers %v target %d out of range", ex.Prompt, nums, target)
		}
		for _, n := range nums {
			if n < 1 || n > 12 {
				t.Fatalf("%q: number %d out of range", ex.Prompt, n)
			}
		}
	}
}

func TestCountdownScore(t *testing.T) {
	task := mustTask(t, "countdown", nil)
	ex := Example{Prompt: "3,5,7:26=", Fields: map[string]any{"numbers": []int{3, 5, 7}, "target": 26}}
	fromJSON := Example{Fields: map[string]any{"numbers": []any{3.0, 5.0, 7.0}, "target": 26.0}}
	tests := []struct {
		completion string
		want       float64
	}{
		{"3*7+5", 1},
		{" (7*3)+5 \nextra text", 1},
		{"5+7*3=26", 1},
		{"7*3+5+0", 0}, // 0 is not an available number
		{"3*7+5*1", 0},
		{"5*5+1", 0},   // numbers not available
		{"3*7", 0},     // wrong value and misses 5
		{"7*5-3*3", 0}, // reuses 3
		{"26", 0},
		{"(3*7+5", 0},
		{"3/0+26", 0},
		{"", 0},
		{strings.Repeat("(", 300) + "3", 0},
		{"<answer>3*7+5</answer>", 1}, // the training reward's extraction
	}
	for _, tt := range tests {
		if got := task.Score(ex, tt.completion); got != tt.want {
			t.Errorf("Score(%q) = %v, want %v", tt.completion, got, tt.want)
		}
	}
	if task.Score(fromJSON, "3*7+5") != 1 {
		t.Error("example with JSON-decoded fields does not score")
	}
	partial := mustTask(t, "countdown", map[string]any{"use_all": false})
	if partial.Score(ex, "3*7+5") != 1 || partial.Score(Example{Fields: map[string]any{"numbers": []int{3, 5, 7}, "target": 21}}, "3*7") != 1 {
		t.Error("use_all=false rejects a solution using a subset")
	}
}

func TestArithmeticScore(t *testing.T) {
	task := mustTask(t, "arithmetic", nil)
	ex := Example{Prompt: "12+7=", Answer: "19"}
	for completion, want := range map[string]float64{"19": 1, " 19 \n12": 1, "19.0": 0, "1 9": 0, "": 0, "-19": 0, "190": 0,
		// The training reward's extraction: tags, a box, a sentence's last number.
		"<answer>19</answer>": 1, `\boxed{19}`: 1, "The answer is 19": 1, "The answer is 19.5": 0, "19/1": 0} {
		if got := task.Score(ex, completion); got != want {
			t.Errorf("Score(%q) = %v, want %v", completion, got, want)
		}
	}
}

func TestTaskParamErrors(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]any
		want   string
	}{
		{"tetris", nil, `unknown task "tetris"`},
		{"arithmetic", map[string]any{"digitz": 2}, `unknown parameter "digitz"`},
		{"arithmetic", map[string]any{"digits": "two"}, `parameter "digits": want int, got string`},
		{"arithmetic", map[string]any{"difficulty": 9}, "difficulty must be 0 (none) or 1–5"},
		{"arithmetic", map[string]any{"ops": "+%"}, "ops must be"},
		{"arithmetic", map[string]any{"digits": 0}, "min_digits <= digits"},
		{"arithmetic", map[string]any{"terms": 1}, "min_terms <= terms"},
		{"arithmetic", map[string]any{"format": "long"}, "format must be"},
		{"arithmetic", map[string]any{"holdout": 1.0}, "holdout must be"},
		{"countdown", map[string]any{"count": 9}, "count <= 6"},
		{"countdown", map[string]any{"ops": "-/"}, "containing + or *"},
		{"countdown", map[string]any{"max_value": 0}, "max_value"},
		{"countdown", map[string]any{"use_all": "yes"}, `parameter "use_all": want bool`},
	}
	for _, tt := range tests {
		_, err := NewTask(tt.name, tt.params)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %v: error %v, want %q", tt.name, tt.params, err, tt.want)
		}
	}
}

func TestEvalExpr(t *testing.T) {
	tests := []struct {
		expr string
		want string // exact rational, or "error"
	}{
		{"1+2*3", "7/1"},
		{"(1+2)*3", "9/1"},
		{"7/2*2", "7/1"},
		{"10-4-3", "3/1"},
		{"2*(3-(4-1))", "0/1"},
		{"8/3", "8/3"},
		{"1/0", "error"},
		{"1+", "error"},
		{"-1", "error"},
		{"1 2", "error"},
		{"99999999999999999999", "error"},
	}
	for _, tt := range tests {
		v, _, err := evalExpr(tt.expr)
		got := "error"
		if err == nil {
			got = v.String()
		}
		if got != tt.want {
			t.Errorf("evalExpr(%q) = %s, want %s", tt.expr, got, tt.want)
		}
	}
}

func TestParamErrorNamesParameter(t *testing.T) {
	_, err := NewTask("arithmetic", map[string]any{"zeta": 1, "alpha": 2})
	var pe *ParamError
	if !errors.As(err, &pe) || pe.Param != "alpha" {
		t.Fatalf("error %v: want a ParamError for the first unknown parameter, alpha", err)
	}
	_, err = NewTask("countdown", map[string]any{"count": "x"})
	if !errors.As(err, &pe) || pe.Param != "count" {
		t.Fatalf("error %v: want a ParamError for count", err)
	}
}

// TestArithmeticSteps: the steps format's warm-up target gives each
// running result left to right, rewards get the final integer, and the
// verifier judges the final result.
func TestArithmeticSteps(t *testing.T) {
	if got := runningResults("12+7-3"); got != "19;16" {
		t.Errorf("running results of 12+7-3: %q", got)
	}
	if got := runningResults("5-9+40-2"); got != "-4;36;34" {
		t.Errorf("running results of 5-9+40-2: %q", got)
	}
	task := mustTask(t, "arithmetic", map[string]any{"format": "steps", "min_terms": 3, "terms": 4, "digits": 2, "ops": "+-"})
	for i := range uint64(50) {
		ex := task.Generate(3, Train, i)
		final, _ := ex.Fields["answer"].(string)
		steps := strings.Split(ex.Answer, ";")
		if len(steps) < 2 || steps[len(steps)-1] != final || !strings.HasSuffix(ex.Prompt, "=") {
			t.Fatalf("example %d: prompt %q, answer %q, final %q", i, ex.Prompt, ex.Answer, final)
		}
		if task.Score(ex, ex.Answer) != 1 || task.Score(ex, final) != 1 {
			t.Errorf("example %d: its own steps %q or final %q judged wrong", i, ex.Answer, final)
		}
		if task.Score(ex, ex.Answer+"1") != 0 {
			t.Errorf("example %d: a wrong final result judged right", i)
		}
	}
	if !strings.Contains(task.Alphabet(), ";") {
		t.Errorf("alphabet %q lacks ';'", task.Alphabet())
	}
	if _, err := NewTask("arithmetic", map[string]any{"format": "steps", "ops": "+*"}); err == nil || !strings.Contains(err.Error(), "subset of") {
		t.Errorf("steps with *: %v", err)
	}
}
