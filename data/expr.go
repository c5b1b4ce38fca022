package data

import (
	"errors"
	"fmt"
	"math/big"
)

// The task verifiers evaluate integer arithmetic written by a model, so the
// evaluator is exact (rationals: "7/2*2" is 7, not 6) and bounded (length and
// nesting limits keep hostile completions cheap).

const (
	maxExprLen   = 256
	maxExprDepth = 32
)

// evalExpr evaluates an expression of non-negative integer literals, + - * /,
// parentheses and spaces, with the usual precedence and left-to-right
// association. It also returns the literals in the order they appear.
func evalExpr(s string) (*big.Rat, []int64, error) {
	if len(s) > maxExprLen {
		return nil, nil, fmt.Errorf("expression longer than %d bytes", maxExprLen)
	}
	p := &exprParser{s: s}
	v, err := p.sum(0)
	if err != nil {
		return nil, nil, err
	}
	p.skipSpace()
	if p.i != len(p.s) {
		return nil, nil, fmt.Errorf("unexpected %q at offset %d", p.s[p.i], p.i)
	}
	return v, p.nums, nil
}

type exprParser struct {
	s    string
	i    int
	nums []int64
}

func (p *exprParser) skipSpace() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *exprParser) peek() byte {
	p.skipSpace()
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *exprParser) sum(depth int) (*big.Rat, error) {
	v, err := p.product(depth)
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		if op != '+' && op != '-' {
			return v, nil
		}
		p.i++
		w, err := p.product(depth)
		if err != nil {
			return nil, err
		}
		if op == '+' {
			v.Add(v, w)
		} else {
			v.Sub(v, w)
		}
	}
}

func (p *exprParser) product(depth int) (*big.Rat, error) {
	v, err := p.atom(depth)
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		if op != '*' && op != '/' {
			return v, nil
		}
		p.i++
		w, err := p.atom(depth)
		if err != nil {
			return nil, err
		}
		if op == '*' {
			v.Mul(v, w)
		} else {
			if w.Sign() == 0 {
				return nil, errors.New("division by zero")
			}
			v.Quo(v, w)
		}
	}
}

func (p *exprParser) atom(depth int) (*big.Rat, error) {
	c := p.peek()
	switch {
	case c == '(':
		if depth >= maxExprDepth {
			return nil, errors.New("parentheses nested too deeply")
		}
		p.i++
		v, err := p.sum(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			return nil, errors.New("missing )")
		}
		p.i++
		return v, nil
	case c >= '0' && c <= '9':
		var n int64
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			if n > (1<<62)/10 {
				return nil, errors.New("number too large")
			}
			n = n*10 + int64(p.s[p.i]-'0')
			p.i++
		}
		p.nums = append(p.nums, n)
		return new(big.Rat).SetInt64(n), nil
	case c == 0:
		return nil, errors.New("unexpected end of expression")
	default:
		return nil, fmt.Errorf("unexpected %q at offset %d", c, p.i)
	}
}
