package safetensors

import (
	"math"
	"math/rand/v2"
	"testing"
)

// halfValue is an independent float64 model of IEEE binary16.
func halfValue(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	case 0:
		return sign * mant * math.Pow(2, -24)
	default:
		return sign * (1 + mant/1024) * math.Pow(2, float64(exp-15))
	}
}

func TestF16ToF32Exhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := f16ToF32(h)
		want := halfValue(h)
		switch {
		case math.IsNaN(want):
			if !math.IsNaN(float64(got)) {
				t.Fatalf("f16 %#04x: got %v, want NaN", h, got)
			}
			// The payload must survive in the top mantissa bits.
			if math.Float32bits(got)>>13&0x3ff != uint32(h&0x3ff) {
				t.Fatalf("f16 %#04x: NaN payload lost: %#08x", h, math.Float32bits(got))
			}
		case float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want):
			t.Fatalf("f16 %#04x: got %v (%#08x), want %v", h, got, math.Float32bits(got), want)
		}
	}
}

// nearestBF16 rounds through float64 arithmetic: it compares the distances
// to the two bfloat16 neighbours, breaking ties to the even one.
func nearestBF16(f float32) uint16 {
	b := math.Float32bits(f)
	lo := uint16(b >> 16)
	if b&0xffff == 0 {
		return lo
	}
	hi := lo + 1
	dl := math.Abs(float64(f) - float64(bf16ToF32(lo)))
	// hi may be an infinity (rounding past the largest finite value): use
	// the value it would have with an unbounded exponent.
	hv := float64(bf16ToF32(hi))
	if math.IsInf(hv, 0) {
		hv = math.Copysign(math.Ldexp(1, 128), hv)
	}
	dh := math.Abs(float64(f) - hv)
	switch {
	case dl < dh:
		return lo
	case dh < dl:
		return hi
	case lo&1 == 0:
		return lo
	default:
		return hi
	}
}

func TestF32ToBF16(t *testing.T) {
	cases := []struct {
		name string
		in   uint32
		want uint16
	}{
		{"one exact", 0x3f800000, 0x3f80},
		{"tie rounds down to even", 0x3f808000, 0x3f80},
		{"tie rounds up to even", 0x3f818000, 0x3f82},
		{"just above tie", 0x3f808001, 0x3f81},
		{"just below tie", 0x3f807fff, 0x3f80},
		{"negative tie", 0xbf818000, 0xbf82},
		{"negative zero", 0x80000000, 0x8000},
		{"subnormal tie to zero", 0x00008000, 0x0000},
		{"largest float overflows to inf", 0x7f7fffff, 0x7f80},
		{"inf", 0x7f800000, 0x7f80},
		{"-inf", 0xff800000, 0xff80},
		{"NaN with low payload stays NaN", 0x7f800001, 0x7fc0},
		{"negative quiet NaN", 0xffc00000, 0xffc0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := f32ToBF16(math.Float32frombits(c.in)); got != c.want {
				t.Errorf("f32ToBF16(%#08x) = %#04x, want %#04x", c.in, got, c.want)
			}
		})
	}
}

func TestF32ToBF16Random(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		b := r.Uint32()
		if i%4 == 0 { // force exact ties, the interesting case
			b = b&^0xffff | 0x8000
		}
		f := math.Float32frombits(b)
		got := f32ToBF16(f)
		if math.IsNaN(float64(f)) {
			if !math.IsNaN(float64(bf16ToF32(got))) {
				t.Fatalf("%#08x: NaN became %#04x", b, got)
			}
			continue
		}
		if want := nearestBF16(f); got != want {
			t.Fatalf("%#08x: got %#04x, want %#04x", b, got, want)
		}
	}
}
