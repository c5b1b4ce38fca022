package reward

import (
	"context"
	"fmt"
	"math"
	"unicode/utf8"
)

// LengthParams configures length.
type LengthParams struct {
	// Mode: "linear" or "cosine" (band shaping, default linear), or
	// "overlong" (DAPO's soft overlong punishment).
	Mode string `json:"mode"`
	// Unit: "tokens" (len of CompletionIDs, default) or "chars" (runes).
	Unit string `json:"unit"`
	// Band modes: lengths in [lo, hi] score Inside; a length d units
	// outside the band scores Inside + (Outside − Inside)·ramp(d/Ramp),
	// where ramp is t (linear) or (1 − cos(πt))/2 (cosine), t clamped to
	// [0, 1]. Defaults lo 0, inside 1, outside 0; hi and ramp required.
	Lo      float64 `json:"lo"`
	Hi      float64 `json:"hi"`
	Ramp    float64 `json:"ramp"`
	Inside  float64 `json:"inside"`
	Outside float64 `json:"outside"`
	// Overlong mode: 0 up to MaxLength − Buffer, then a linear fall to
	// −1 at MaxLength, −1 beyond. Both required, 0 < buffer <= max_length.
	MaxLength float64 `json:"max_length"`
	Buffer    float64 `json:"buffer"`
}

// DefaultLengthParams returns length's defaults.
func DefaultLengthParams() LengthParams {
	return LengthParams{Mode: "linear", Unit: "tokens", Inside: 1}
}

// Length shapes by completion length. Range: [min(inside, outside),
// max(inside, outside)] for bands, [−1, 0] for overlong.
type Length struct{ p LengthParams }

// NewLength validates params and builds the reward.
func NewLength(p LengthParams) (*Length, error) {
	switch p.Unit {
	case "tokens", "chars":
	default:
		return nil, fmt.Errorf("param \"unit\": unknown %q (want tokens or chars)", p.Unit)
	}
	switch p.Mode {
	case "linear", "cosine":
		if p.Hi <= 0 || p.Hi < p.Lo || p.Lo < 0 {
			return nil, fmt.Errorf("params \"lo\", \"hi\": want 0 <= lo <= hi and hi > 0, got lo=%v hi=%v", p.Lo, p.Hi)
		}
		if p.Ramp <= 0 {
			return nil, fmt.Errorf("param \"ramp\": want > 0, got %v", p.Ramp)
		}
		if !finite(p.Inside) || !finite(p.Outside) || !finite(p.Hi) || !finite(p.Ramp) {
			return nil, fmt.Errorf("params must be finite")
		}
	case "overlong":
		if p.Buffer <= 0 || p.MaxLength < p.Buffer || !finite(p.MaxLength) {
			return nil, fmt.Errorf("params \"max_length\", \"buffer\": want 0 < buffer <= max_length, got max_length=%v buffer=%v", p.MaxLength, p.Buffer)
		}
	default:
		return nil, fmt.Errorf("param \"mode\": unknown %q (want linear, cosine or overlong)", p.Mode)
	}
	return &Length{p: p}, nil
}

// Range implements Ranged.
func (l *Length) Range() (float64, float64) {
	if l.p.Mode == "overlong" {
		return -1, 0
	}
	return math.Min(l.p.Inside, l.p.Outside), math.Max(l.p.Inside, l.p.Outside)
}

// Score implements Reward.
func (l *Length) Score(ctx context.Context, samples []Sample) (Scores, error) {
	return scoreEach(ctx, samples, func(s *Sample) (float64, bool, error) {
		var n float64
		if l.p.Unit == "chars" {
			n = float64(utf8.RuneCountInString(s.Completion))
		} else {
			if s.CompletionIDs == nil && s.Completion != "" {
				return 0, false, fmt.Errorf("sample has no completion token ids (use unit: chars to count characters)")
			}
			n = float64(len(s.CompletionIDs))
		}
		return l.Value(n), false, nil
	}, nil)
}

// Value is the score for a completion of length n.
func (l *Length) Value(n float64) float64 {
	p := l.p
	if p.Mode == "overlong" {
		switch edge := p.MaxLength - p.Buffer; {
		case n <= edge:
			return 0
		case n <= p.MaxLength:
			return (edge - n) / p.Buffer
		default:
			return -1
		}
	}
	d := 0.0
	if n < p.Lo {
		d = p.Lo - n
	} else if n > p.Hi {
		d = n - p.Hi
	}
	t := math.Min(d/p.Ramp, 1)
	if p.Mode == "cosine" {
		t = (1 - math.Cos(math.Pi*t)) / 2
	}
	return p.Inside + (p.Outside-p.Inside)*t
}

func init() {
	Register("length", "length shaping: linear or cosine bands, DAPO overlong punishment",
		func() any { p := DefaultLengthParams(); return &p },
		func(p any) (Reward, error) { return NewLength(*p.(*LengthParams)) })
}
