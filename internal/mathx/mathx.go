// Package mathx evaluates small arithmetic expressions safely: a
// hand-written parser over + − × ÷ and parentheses with exact rational
// arithmetic (math/big). Nothing is executed; input size, nesting depth
// and literal size are bounded, so hostile input costs little.
package mathx

import (
	"errors"
	"fmt"
	"math/big"
	"unicode/utf8"
)

// Limits bound the work Eval may do.
type Limits struct {
	MaxChars    int  // longest accepted expression in bytes; default 256
	MaxDepth    int  // deepest parenthesis nesting; default 16
	MaxLiterals int  // most number literals; default 16
	MaxDigits   int  // most digits in one literal; default 12
	AllowUnary  bool // accept unary minus/plus ("-3 + 5"); Countdown rules forbid it
}

// DefaultLimits are the limits used when a field is zero.
var DefaultLimits = Limits{MaxChars: 256, MaxDepth: 16, MaxLiterals: 16, MaxDigits: 12}

func (l Limits) withDefaults() Limits {
	if l.MaxChars <= 0 {
		l.MaxChars = DefaultLimits.MaxChars
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxLiterals <= 0 {
		l.MaxLiterals = DefaultLimits.MaxLiterals
	}
	if l.MaxDigits <= 0 {
		l.MaxDigits = DefaultLimits.MaxDigits
	}
	return l
}

// ErrDivByZero is returned for a division by zero.
var ErrDivByZero = errors.New("division by zero")

// Result is an evaluated expression.
type Result struct {
	Value    *big.Rat
	Literals []int64 // the number literals in order of appearance
}

// Eval parses and evaluates expr. Accepted: non-negative integer literals,
// + - * / and the Unicode forms − × ÷ ·, parentheses, spaces.
func Eval(expr string, lim Limits) (Result, error) {
	lim = lim.withDefaults()
	if len(expr) > lim.MaxChars {
		return Result{}, fmt.Errorf("expression longer than %d bytes", lim.MaxChars)
	}
	toks, err := lex(expr, lim)
	if err != nil {
		return Result{}, err
	}
	p := &parser{toks: toks, lim: lim}
	v, err := p.expr(0)
	if err != nil {
		return Result{}, err
	}
	if p.pos != len(p.toks) {
		return Result{}, fmt.Errorf("unexpected %q", p.toks[p.pos].text())
	}
	return Result{Value: v, Literals: p.lits}, nil
}

type token struct {
	op  byte // one of + - * / ( ) or 0 for a number
	num int64
}

func (t token) text() string {
	if t.op == 0 {
		return fmt.Sprint(t.num)
	}
	return string(t.op)
}

func lex(s string, lim Limits) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == ' ' || r == '\t':
		case r == '+' || r == '(' || r == ')' || r == '*' || r == '/' || r == '-':
			toks = append(toks, token{op: byte(r)})
		case r == '−' || r == '–':
			toks = append(toks, token{op: '-'})
		case r == '×' || r == '·' || r == '⋅':
			toks = append(toks, token{op: '*'})
		case r == '÷':
			toks = append(toks, token{op: '/'})
		case r >= '0' && r <= '9':
			j := i
			var v int64
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				if j-i >= lim.MaxDigits {
					return nil, fmt.Errorf("number literal longer than %d digits", lim.MaxDigits)
				}
				v = v*10 + int64(s[j]-'0')
				j++
			}
			if j < len(s) && (s[j] == '.' || s[j] == ',') && j+1 < len(s) && s[j+1] >= '0' && s[j+1] <= '9' {
				return nil, fmt.Errorf("only integer literals are allowed")
			}
			toks = append(toks, token{num: v})
			i = j
			continue
		default:
			return nil, fmt.Errorf("unexpected character %q", r)
		}
		i += size
	}
	if len(toks) == 0 {
		return nil, errors.New("empty expression")
	}
	return toks, nil
}

type parser struct {
	toks []token
	pos  int
	lim  Limits
	lits []int64
}

func (p *parser) peek() (byte, bool) {
	if p.pos >= len(p.toks) {
		return 0, false
	}
	t := p.toks[p.pos]
	return t.op, t.op != 0
}

// expr := term (('+'|'-') term)*
func (p *parser) expr(depth int) (*big.Rat, error) {
	v, err := p.term(depth)
	if err != nil {
		return nil, err
	}
	for {
		op, ok := p.peek()
		if !ok || (op != '+' && op != '-') {
			return v, nil
		}
		p.pos++
		w, err := p.term(depth)
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

// term := factor (('*'|'/') factor)*
func (p *parser) term(depth int) (*big.Rat, error) {
	v, err := p.factor(depth)
	if err != nil {
		return nil, err
	}
	for {
		op, ok := p.peek()
		if !ok || (op != '*' && op != '/') {
			return v, nil
		}
		p.pos++
		w, err := p.factor(depth)
		if err != nil {
			return nil, err
		}
		if op == '*' {
			v.Mul(v, w)
		} else {
			if w.Sign() == 0 {
				return nil, ErrDivByZero
			}
			v.Quo(v, w)
		}
	}
}

// factor := number | '(' expr ')' | ('-'|'+') factor   (unary only if allowed)
func (p *parser) factor(depth int) (*big.Rat, error) {
	if p.pos >= len(p.toks) {
		return nil, errors.New("unexpected end of expression")
	}
	t := p.toks[p.pos]
	switch t.op {
	case 0:
		p.pos++
		if len(p.lits) >= p.lim.MaxLiterals {
			return nil, fmt.Errorf("more than %d numbers", p.lim.MaxLiterals)
		}
		p.lits = append(p.lits, t.num)
		return new(big.Rat).SetInt64(t.num), nil
	case '(':
		if depth >= p.lim.MaxDepth {
			return nil, fmt.Errorf("parentheses nested deeper than %d", p.lim.MaxDepth)
		}
		p.pos++
		v, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if op, ok := p.peek(); !ok || op != ')' {
			return nil, errors.New("missing )")
		}
		p.pos++
		return v, nil
	case '-', '+':
		if !p.lim.AllowUnary {
			return nil, fmt.Errorf("unary %c is not allowed", t.op)
		}
		if depth >= p.lim.MaxDepth {
			return nil, fmt.Errorf("expression nested deeper than %d", p.lim.MaxDepth)
		}
		p.pos++
		v, err := p.factor(depth + 1)
		if err != nil {
			return nil, err
		}
		if t.op == '-' {
			v.Neg(v)
		}
		return v, nil
	}
	return nil, fmt.Errorf("unexpected %q", t.text())
}
