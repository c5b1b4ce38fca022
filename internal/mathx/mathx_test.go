package mathx

import (
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
)

func TestEval(t *testing.T) {
	cases := []struct {
		expr string
		lim  Limits
		want string // rational as a/b, or "" for an error
		lits []int64
	}{
		{"1 + 2 * 3", Limits{}, "7/1", []int64{1, 2, 3}},
		{"(1 + 2) * 3", Limits{}, "9/1", []int64{1, 2, 3}},
		{"7 / 2", Limits{}, "7/2", []int64{7, 2}},
		{"7 / 2 * 2", Limits{}, "7/1", []int64{7, 2, 2}},
		{"1 / 3 + 1 / 3 + 1 / 3", Limits{}, "1/1", nil},
		{"10 - 2 - 3", Limits{}, "5/1", nil}, // left associative
		{"8 / 4 / 2", Limits{}, "1/1", nil},
		{"(7 − 5) × 8 ÷ 4", Limits{}, "4/1", nil},
		{"2·3", Limits{}, "6/1", nil},
		{"-3 + 5", Limits{}, "", nil},
		{"-3 + 5", Limits{AllowUnary: true}, "2/1", nil},
		{"--3", Limits{AllowUnary: true}, "3/1", nil},
		{"1 / 0", Limits{}, "", nil},
		{"1 / (2 - 2)", Limits{}, "", nil},
		{"", Limits{}, "", nil},
		{"   ", Limits{}, "", nil},
		{"1 +", Limits{}, "", nil},
		{"(1 + 2", Limits{}, "", nil},
		{"1 + 2)", Limits{}, "", nil},
		{"1 2", Limits{}, "", nil},
		{"1.5 * 2", Limits{}, "", nil},
		{"2 ** 3", Limits{}, "", nil},
		{"2 ^ 3", Limits{}, "", nil},
		{"x + 1", Limits{}, "", nil},
		{"os.system('rm')", Limits{}, "", nil},
		{"1234567890123 + 1", Limits{}, "", nil}, // 13 digits > MaxDigits
		{"1 + 1 + 1", Limits{MaxLiterals: 2}, "", nil},
		{strings.Repeat("(", 17) + "1" + strings.Repeat(")", 17), Limits{}, "", nil},
		{strings.Repeat("(", 16) + "1" + strings.Repeat(")", 16), Limits{}, "1/1", nil},
		{strings.Repeat("1+", 200) + "1", Limits{}, "", nil}, // too long / too many literals
	}
	for _, c := range cases {
		res, err := Eval(c.expr, c.lim)
		if c.want == "" {
			if err == nil {
				t.Errorf("Eval(%.40q) = %v, want an error", c.expr, res.Value)
			}
			continue
		}
		if err != nil {
			t.Errorf("Eval(%q): %v", c.expr, err)
			continue
		}
		if res.Value.String() != c.want {
			t.Errorf("Eval(%q) = %s, want %s", c.expr, res.Value, c.want)
		}
		if c.lits != nil && !reflect.DeepEqual(res.Literals, c.lits) {
			t.Errorf("Eval(%q) literals %v, want %v", c.expr, res.Literals, c.lits)
		}
	}
	if _, err := Eval("1/0", Limits{}); !errors.Is(err, ErrDivByZero) {
		t.Errorf("1/0: %v, want ErrDivByZero", err)
	}
}

// FuzzEval checks that no input panics and that results are consistent
// with a re-evaluation (determinism) and within the limits.
func FuzzEval(f *testing.F) {
	for _, s := range []string{"1+2*3", "(7-5)×8÷4", "((((1))))", "1/0", "9/(3-3)", "-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r1, err1 := Eval(s, Limits{})
		r2, err2 := Eval(s, Limits{})
		if (err1 == nil) != (err2 == nil) {
			t.Fatal("nondeterministic")
		}
		if err1 == nil {
			if r1.Value.Cmp(r2.Value) != 0 || len(r1.Literals) > DefaultLimits.MaxLiterals {
				t.Fatal("bad result")
			}
			_ = new(big.Rat).Set(r1.Value)
		}
	})
}
