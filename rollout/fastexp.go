package rollout

import "math"

// expNonPos returns e^x for x ≤ 0 with a relative error below 1e-9, about
// three times faster than math.Exp: a Cody–Waite reduction to
// r ∈ [−ln2/2, ln2/2] and a degree-8 Taylor polynomial. Results below
// e^−700 flush to 0, which no sum of probabilities can notice.
func expNonPos(x float64) float64 {
	if x < -700 {
		return 0
	}
	const (
		log2e = 1.4426950408889634
		ln2hi = 6.93147180369123816490e-01
		ln2lo = 1.90821492927058770002e-10
	)
	// Adding and subtracting 1.5·2^52 rounds to the nearest integer
	// without a call (GOAMD64=v1 has no inline floor).
	const round = 6755399441055744.0
	k := (x*log2e + round) - round
	r := x - k*ln2hi - k*ln2lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040+r*(1.0/40320))))))))
	return p * math.Float64frombits(uint64(int64(k)+1023)<<52)
}
