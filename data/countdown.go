package data

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rltrain/rltrain/reward"
)

// CountdownParams configures the countdown task: combine the given numbers
// with arithmetic to reach the target. Every problem is solvable because the
// target is computed from a random expression over the numbers, and that
// expression is the example's Answer (an SFT warm-up target).
type CountdownParams struct {
	// Problems have MinCount..Count numbers.
	MinCount int `json:"min_count"`
	Count    int `json:"count"`
	// Numbers are drawn from 1..MaxValue.
	MaxValue int `json:"max_value"`
	// Targets lie in 1..MaxTarget.
	MaxTarget int `json:"max_target"`
	// Ops is the operator set, a subset of "+-*/". Every intermediate
	// result of the generated solution is a positive integer.
	Ops string `json:"ops"`
	// UseAll requires a solution to use every number exactly once; without
	// it each number may be used at most once.
	UseAll bool `json:"use_all"`
	// Format is "short" ("3,5,7:26=") or "text" ("Using the numbers 3, 5,
	// 7, make 26. Answer: "). The completion is an expression like "3*7+5".
	Format string `json:"format"`
	// Holdout is the fraction of all possible prompts reserved for eval.
	Holdout float64 `json:"holdout"`
}

func defaultCountdown() CountdownParams {
	return CountdownParams{MinCount: 3, Count: 3, MaxValue: 9, MaxTarget: 100, Ops: "+-*",
		UseAll: true, Format: "short", Holdout: 0.1}
}

type countdown struct {
	p      CountdownParams
	verify *reward.Countdown
}

func newCountdown(params map[string]any) (*countdown, error) {
	p := defaultCountdown()
	if err := decodeParams("countdown", params, &p); err != nil {
		return nil, err
	}
	switch {
	case p.MinCount < 2 || p.Count < p.MinCount || p.Count > 6:
		return nil, fmt.Errorf("task countdown: need 2 <= min_count <= count <= 6, got min_count %d count %d", p.MinCount, p.Count)
	case p.MaxValue < 1 || p.MaxValue > 1000:
		return nil, fmt.Errorf("task countdown: max_value must be in [1, 1000], got %d", p.MaxValue)
	case p.MaxTarget < 1:
		return nil, fmt.Errorf("task countdown: max_target must be >= 1, got %d", p.MaxTarget)
	case strings.Trim(p.Ops, "+-*/") != "" || !strings.ContainsAny(p.Ops, "+*"):
		return nil, fmt.Errorf("task countdown: ops must be a subset of \"+-*/\" containing + or *, got %q", p.Ops)
	case p.Format != "short" && p.Format != "text":
		return nil, fmt.Errorf("task countdown: format must be \"short\" or \"text\", got %q", p.Format)
	case !(p.Holdout >= 0 && p.Holdout < 1):
		return nil, fmt.Errorf("task countdown: holdout must be in [0, 1), got %v", p.Holdout)
	}
	rp := reward.DefaultCountdownParams()
	rp.UseAll = p.UseAll
	verify, err := reward.NewCountdown(rp)
	if err != nil {
		return nil, fmt.Errorf("task countdown: %w", err)
	}
	return &countdown{p: p, verify: verify}, nil
}

func (c *countdown) Name() string { return "countdown" }

func (c *countdown) Describe() string { return fmt.Sprintf("countdown%+v", c.p) }

// node is an expression tree used to generate and print solutions.
type node struct {
	op          byte // 0 for a leaf
	val         int
	left, right *node
}

func prec(op byte) int {
	switch op {
	case '+', '-':
		return 1
	case '*', '/':
		return 2
	}
	return 3 // leaf
}

// String prints with the fewest parentheses that keep the meaning.
func (n *node) String() string {
	if n.op == 0 {
		return strconv.Itoa(n.val)
	}
	l, r := n.left.String(), n.right.String()
	if prec(n.left.op) < prec(n.op) {
		l = "(" + l + ")"
	}
	// The right operand needs parentheses at equal precedence when the
	// operator does not associate: a-(b+c), a/(b*c).
	if prec(n.right.op) < prec(n.op) || (prec(n.right.op) == prec(n.op) && (n.op == '-' || n.op == '/')) {
		r = "(" + r + ")"
	}
	return l + string(n.op) + r
}

// build combines leaves (in order) into a random tree whose every
// intermediate value is a positive integer, or returns nil.
func (c *countdown) build(r *rng, leaves []int) *node {
	if len(leaves) == 1 {
		return &node{val: leaves[0]}
	}
	s := r.IntRange(1, len(leaves)-1)
	left, right := c.build(r, leaves[:s]), c.build(r, leaves[s:])
	if left == nil || right == nil {
		return nil
	}
	ops := []byte(c.p.Ops)
	for i := len(ops) - 1; i > 0; i-- { // try operators in random order
		j := r.Intn(i + 1)
		ops[i], ops[j] = ops[j], ops[i]
	}
	for _, op := range ops {
		var v int
		switch op {
		case '+':
			v = left.val + right.val
		case '-':
			v = left.val - right.val
		case '*':
			v = left.val * right.val
		case '/':
			if left.val%right.val != 0 {
				continue
			}
			v = left.val / right.val
		}
		if v > 0 && v <= 1_000_000 {
			return &node{op: op, val: v, left: left, right: right}
		}
	}
	return nil
}

func (c *countdown) Generate(seed uint64, split Split, i uint64) Example {
	ex := generateSplit(seed, split, i, c.p.Holdout, func(r *rng) Example {
		var nums []int
		var tree *node
		for try := 0; ; try++ {
			k := r.IntRange(c.p.MinCount, c.p.Count)
			nums = make([]int, k)
			for j := range nums {
				nums[j] = r.IntRange(1, c.p.MaxValue)
			}
			tree = c.build(r, nums)
			if tree != nil && tree.val <= c.p.MaxTarget {
				break
			}
			if try >= 256 {
				// Rare (a max_target far below what the numbers make):
				// fall back to a left-to-right sum or product, which is
				// always valid but may exceed max_target.
				tree = c.chain(nums)
				break
			}
		}
		shown := slices.Clone(nums)
		sort.Ints(shown)
		target := tree.val
		return Example{Prompt: c.render(shown, target), Answer: tree.String(),
			Fields: map[string]any{"numbers": shown, "target": target}}
	})
	ex.ID = fmt.Sprintf("countdown/%s/%d", split, i)
	return ex
}

// chain joins nums with '+' (or '*' when '+' is not allowed).
func (c *countdown) chain(nums []int) *node {
	op := byte('+')
	if !strings.ContainsRune(c.p.Ops, '+') {
		op = '*'
	}
	t := &node{val: nums[0]}
	for _, v := range nums[1:] {
		val := t.val + v
		if op == '*' {
			val = t.val * v
		}
		t = &node{op: op, val: val, left: t, right: &node{val: v}}
	}
	return t
}

func (c *countdown) render(nums []int, target int) string {
	s := make([]string, len(nums))
	for i, n := range nums {
		s[i] = strconv.Itoa(n)
	}
	if c.p.Format == "text" {
		return fmt.Sprintf("Using the numbers %s, make %d. Answer: ", strings.Join(s, ", "), target)
	}
	return fmt.Sprintf("%s:%d=", strings.Join(s, ","), target)
}

func (c *countdown) Alphabet() string {
	return alphabet("0123456789()", c.p.Ops, c.render([]int{0, 0}, 0))
}

// Score is the countdown reward's verifier (reward.Countdown, built with
// this task's use_all): 1 when the completion's expression (on its first
// line, or in <answer> tags) combines the example's numbers — each at most
// once, all of them when use_all is set — into exactly the target.
func (c *countdown) Score(ex Example, completion string) float64 {
	v, err := c.verify.VerifyFields(completion, ex.Fields)
	if err != nil {
		return 0
	}
	return v
}

// Reward is the training reward that judges like Score.
func (c *countdown) Reward() (string, map[string]any) {
	return "countdown", map[string]any{"use_all": c.p.UseAll}
}
