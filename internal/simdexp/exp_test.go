//go:build goexperiment.simd && amd64

package simdexp

import (
	"math"
	"simd/archsimd"
	"testing"
)

// TestExp16 checks Exp16 against math.Exp rounded to float32 over its
// range (within 3 ulp) and the range predicates at and past the edges.
func TestExp16(t *testing.T) {
	if !archsimd.X86.AVX512() {
		t.Skip("no AVX-512 on this machine")
	}
	var in, out [16]float32
	for start := float32(-87.3); start < 88; start += 16 * 0.0173 {
		for i := range in {
			in[i] = min(start+float32(i)*0.0173, 88)
		}
		x := archsimd.LoadFloat32x16(&in)
		if !InRange(x) {
			t.Fatalf("InRange false for %v", in)
		}
		Exp16(x).Store(&out)
		for i, v := range in {
			want := float32(math.Exp(float64(v)))
			ulps := int64(math.Float32bits(out[i])) - int64(math.Float32bits(want))
			if ulps < -3 || ulps > 3 {
				t.Fatalf("Exp16(%g) = %g, want %g (%d ulp)", v, out[i], want, ulps)
			}
		}
	}
	for _, bad := range []float32{-87.4, 88.1, float32(math.NaN()), float32(math.Inf(-1))} {
		in = [16]float32{}
		in[7] = bad
		if InRange(archsimd.LoadFloat32x16(&in)) {
			t.Errorf("InRange true with a lane of %g", bad)
		}
	}
	in = [16]float32{}
	in[3] = -1000
	ClampLow(archsimd.LoadFloat32x16(&in)).Store(&out)
	if out[3] != -87.3 || out[2] != 0 {
		t.Errorf("ClampLow: lanes %g and %g, want -87.3 and 0", out[3], out[2])
	}
}
