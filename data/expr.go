package data

import (
	"math/big"

	"github.com/rltrain/rltrain/internal/mathx"
)

// The task verifiers evaluate integer arithmetic written by a model, so the
// evaluator is exact (rationals: "7/2*2" is 7, not 6) and bounded (length,
// nesting and literal limits keep hostile completions cheap). It is the
// reward package's evaluator, so a task's Score and its reward verifier
// judge an expression identically.
var exprLimits = mathx.Limits{MaxChars: 256, MaxDepth: 32, MaxLiterals: 64, MaxDigits: 18}

// evalExpr evaluates an expression of non-negative integer literals,
// + - * / (and their Unicode forms), parentheses and spaces, with the usual
// precedence and left-to-right association. It also returns the literals in
// the order they appear.
func evalExpr(s string) (*big.Rat, []int64, error) {
	r, err := mathx.Eval(s, exprLimits)
	if err != nil {
		return nil, nil, err
	}
	return r.Value, r.Literals, nil
}
