package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rltrain/rltrain/kernels"
)

// Float64 references of each layer and a finite-difference harness: every
// backward kernel is checked against central differences of Σ dy·f(x)
// computed on the float64 reference.

func randVec(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

func to64(v []float32) []float64 {
	o := make([]float64, len(v))
	for i, x := range v {
		o[i] = float64(x)
	}
	return o
}

func dot64(a []float64, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// fdGrad returns ∂f/∂x by central differences.
func fdGrad(f func([]float64) float64, x []float64) []float64 {
	g := make([]float64, len(x))
	for i := range x {
		h := 1e-6 * max(1, math.Abs(x[i]))
		old := x[i]
		x[i] = old + h
		fp := f(x)
		x[i] = old - h
		fm := f(x)
		x[i] = old
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

// relErr is max|got−want| / max|want|.
func relErr(got []float32, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range want {
		num = max(num, math.Abs(float64(got[i])-want[i]))
		den = max(den, math.Abs(want[i]))
	}
	if den == 0 {
		return num
	}
	return num / den
}

func checkClose(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	if e := relErr(got, want); !(e <= tol) {
		t.Errorf("%s: relative error %.3g > %.1g", name, e, tol)
	}
}

func rmsnorm64(x, w []float64, rows, dim int, eps float64) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < rows; r++ {
		row := x[r*dim : (r+1)*dim]
		rs := 1 / math.Sqrt(dot64(row, row)/float64(dim)+eps)
		for j := range row {
			out[r*dim+j] = row[j] * rs * w[j]
		}
	}
	return out
}

func rope64(x []float64, stride int, cos, sin []float64, rows, heads, hd int) []float64 {
	out := append([]float64(nil), x...)
	half := hd / 2
	for r := 0; r < rows; r++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < half; i++ {
				a, b := x[r*stride+h*hd+i], x[r*stride+h*hd+half+i]
				c, s := cos[r*half+i], sin[r*half+i]
				out[r*stride+h*hd+i] = a*c - b*s
				out[r*stride+h*hd+half+i] = b*c + a*s
			}
		}
	}
	return out
}

func attention64(qkv []float64, s kernels.AttnShape) []float64 {
	hd := s.HeadDim
	stride := (s.Heads + 2*s.KVHeads) * hd
	ostride := s.Heads * hd
	out := make([]float64, s.Batch*s.SeqLen*ostride)
	group := s.Heads / s.KVHeads
	for b := 0; b < s.Batch; b++ {
		T := seqLen(s, b)
		for h := 0; h < s.Heads; h++ {
			kvh := h / group
			for i := 0; i < T; i++ {
				q := qkv[(b*s.SeqLen+i)*stride+h*hd:][:hd]
				sc := make([]float64, i+1)
				mx := math.Inf(-1)
				for j := 0; j <= i; j++ {
					k := qkv[(b*s.SeqLen+j)*stride+(s.Heads+kvh)*hd:][:hd]
					sc[j] = dot64(q, k) * float64(s.Scale)
					mx = max(mx, sc[j])
				}
				sum := 0.0
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				o := out[(b*s.SeqLen+i)*ostride+h*hd:][:hd]
				for j := range sc {
					v := qkv[(b*s.SeqLen+j)*stride+(s.Heads+s.KVHeads+kvh)*hd:][:hd]
					for d := range o {
						o[d] += sc[j] / sum * v[d]
					}
				}
			}
		}
	}
	return out
}

func swiglu64(gu []float64, rows, ffn int) []float64 {
	out := make([]float64, rows*ffn)
	for r := 0; r < rows; r++ {
		for j := 0; j < ffn; j++ {
			g, u := gu[r*2*ffn+j], gu[r*2*ffn+ffn+j]
			out[r*ffn+j] = g / (1 + math.Exp(-g)) * u
		}
	}
	return out
}

// logprobs64 returns log p(target) and the entropy of softmax(invTemp·h·Wᵀ).
func logprobs64(h, w []float64, targets []int32, n, d, vocab int, invTemp float64) (lp, ent []float64) {
	lp, ent = make([]float64, n), make([]float64, n)
	z := make([]float64, vocab)
	for i := 0; i < n; i++ {
		mx := math.Inf(-1)
		for k := 0; k < vocab; k++ {
			z[k] = invTemp * dot64(h[i*d:(i+1)*d], w[k*d:(k+1)*d])
			mx = max(mx, z[k])
		}
		sum := 0.0
		for k := range z {
			sum += math.Exp(z[k] - mx)
		}
		lse := mx + math.Log(sum)
		for k := range z {
			p := math.Exp(z[k] - lse)
			ent[i] -= p * (z[k] - lse)
		}
		if targets[i] >= 0 {
			lp[i] = z[targets[i]] - lse
		}
	}
	return lp, ent
}
