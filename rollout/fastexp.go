package rollout

import "math"

// exp2Table[j] = 2^(j/32).
var exp2Table = func() (t [32]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 32)
	}
	return t
}()

// expNonPos returns e^x for x ≤ 0 with a relative error below 1e-9, two to
// three times faster than math.Exp: x = (32m + j)·ln2/32 + r with
// |r| ≤ ln2/64, e^x = 2^m · 2^(j/32) · e^r, and e^r from a degree-4
// Taylor polynomial (error < r^5/120 ≈ 1.2e-12). Results below e^−700
// flush to 0, which no sum of probabilities can notice.
func expNonPos(x float64) float64 {
	if x < -700 {
		return 0
	}
	const (
		invLn2x32 = 32 / math.Ln2
		ln2hi     = 6.93147180369123816490e-01 / 32
		ln2lo     = 1.90821492927058770002e-10 / 32
		// Adding and subtracting 1.5·2^52 rounds to the nearest integer
		// without a call (GOAMD64=v1 has no inline floor).
		round = 6755399441055744.0
	)
	k := (x*invLn2x32 + round) - round
	r := x - k*ln2hi - k*ln2lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24))))
	n := int64(k)
	return p * exp2Table[n&31] * math.Float64frombits(uint64(n>>5+1023)<<52)
}
