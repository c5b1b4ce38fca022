package cpu

import "math"

// expf is a float32 exponential accurate to about 2 ulp, several times
// faster than math.Exp: x = n·ln2 + r with |r| ≤ ln2/2, e^r from a
// degree-6 Taylor polynomial (truncation error < 2e-7 relative), and 2^n
// built directly in the exponent bits of a float64. Inputs below −87.3 give 0 (no
// subnormals), above 88.7 give +Inf.
func expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	if x < -87.3 {
		if x != x { // NaN
			return x
		}
		return 0
	}
	if x > 88.7 {
		return float32(math.Inf(1))
	}
	// x ≥ −87.3 keeps the shifted argument positive, so truncation rounds.
	n := int32(x*log2e+128.5) - 128
	fn := float32(n)
	r := x - fn*ln2hi - fn*ln2lo
	p := 1 + r*(1+r*(0.5+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
	// Scale in float64 so that n = 128 and n = −126 need no special case.
	return float32(float64(p) * math.Float64frombits(uint64(n+1023)<<52))
}

// expShiftScalar writes dst[i] = e^(src[i]−shift) and returns Σ dst in
// float64. It is expf unrolled into a loop (the Go compiler does not inline
// expf), for the softmax-style hot loops; expShift uses a vector version
// where the build and the CPU allow.
func expShiftScalar(dst, src []float32, shift float32) float64 {
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	dst = dst[:len(src)]
	var sum float64
	for i, v := range src {
		x := v - shift
		if x < -87.3 || x > 88.7 || x != x {
			e := expf(x)
			dst[i] = e
			sum += float64(e)
			continue
		}
		n := int32(x*log2e+128.5) - 128
		fn := float32(n)
		r := x - fn*ln2hi - fn*ln2lo
		p := 1 + r*(1+r*(0.5+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
		e := float32(float64(p) * math.Float64frombits(uint64(n+1023)<<52))
		dst[i] = e
		sum += float64(e)
	}
	return sum
}

// ExpShift writes dst[i] = e^(src[i]−shift) and returns Σ dst in float64,
// with the AVX-512 code where the build and the CPU have it. It is
// exported for benchmarks that compare the fused kernels with a path that
// materialises the logits: both then pay the same price per exponential.
func ExpShift(dst, src []float32, shift float32) float64 { return expShift(dst, src, shift) }
