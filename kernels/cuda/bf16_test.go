package cuda

import (
	"math"
	"testing"
)

func TestBF16BitsTable(t *testing.T) {
	for _, tc := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3f80},
		{-2, 0xc000},
		{1.00390625, 0x3f80}, // halfway between 1 and 1+2⁻⁷: ties to even (down)
		{1.01171875, 0x3f82}, // halfway between 1+2⁻⁷ and 1+2⁻⁶: ties to even (up)
		{math.Nextafter32(1.00390625, 2), 0x3f81}, // just above halfway: up
		{3.1415927, 0x4049},                       // π
		{65504, 0x4780},                           // rounds up into the next binade
		{float32(math.Inf(1)), 0x7f80},
		{math.MaxFloat32, 0x7f80}, // overflows to +Inf
		{1e-40, 0x0001},           // subnormal
	} {
		if got := BF16Bits(tc.f); got != tc.want {
			t.Errorf("BF16Bits(%g) = %#04x, want %#04x", tc.f, got, tc.want)
		}
	}
	if h := BF16Bits(float32(math.NaN())); !math.IsNaN(float64(BF16Float(h))) {
		t.Errorf("NaN rounds to %#04x, not a NaN", h)
	}
}
