package cpu

import (
	"fmt"
	"math"

	"github.com/rltrain/rltrain/kernels"
)

// rowsPerTask keeps goroutine overhead small against per-row work.
func rowsPerTask(width int) int { return max(1, 16384/max(width, 1)) }

// AddBias implements kernels.Dense.
func (b *Backend) AddBias(x, bias kernels.Buf, rows, n int) {
	xs, bs := Data(x), Data(bias)[:n]
	parallelFor(b.threads, rows, rowsPerTask(n), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := xs[r*n : r*n+n]
			for j, v := range bs {
				row[j] += v
			}
		}
	})
}

// BiasBackward implements kernels.Dense.
func (b *Backend) BiasBackward(dbias, dout kernels.Buf, rows, n int) {
	d := Data(dout)
	reduceRows(b.threads, rows, n, Data(dbias)[:n], func(p []float32, lo, hi int) {
		for r := lo; r < hi; r++ {
			for j, v := range d[r*n : r*n+n] {
				p[j] += v
			}
		}
	})
}

// Copy2D implements kernels.Dense.
func (b *Backend) Copy2D(dst kernels.Buf, dstStride int, src kernels.Buf, srcStride int, rows, width int) {
	d, s := Data(dst), Data(src)
	for r := 0; r < rows; r++ {
		copy(d[r*dstStride:r*dstStride+width], s[r*srcStride:r*srcStride+width])
	}
}

// Add implements kernels.Dense.
func (b *Backend) Add(dst, x, y kernels.Buf) {
	d, xs, ys := Data(dst), Data(x), Data(y)
	if len(xs) != len(d) || len(ys) != len(d) {
		panic(fmt.Sprintf("cpu: add of %d, %d into %d floats", len(xs), len(ys), len(d)))
	}
	parallelFor(b.threads, len(d), 1<<15, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d[i] = xs[i] + ys[i]
		}
	})
}

// RMSNorm implements kernels.Dense.
func (b *Backend) RMSNorm(out, rstd, x, w kernels.Buf, rows, dim int, eps float32) {
	b.RMSNormHeads(out, rstd, x, dim, 0, w, rows, 1, dim, eps)
}

// RMSNormBackward implements kernels.Dense.
func (b *Backend) RMSNormBackward(dx, dw, dout, x, w, rstd kernels.Buf, rows, dim int) {
	b.RMSNormHeadsBackward(dx, dw, dout, x, w, rstd, dim, 0, rows, 1, dim)
}

// RMSNormHeads implements kernels.Dense. Sums of squares accumulate in
// float64.
func (b *Backend) RMSNormHeads(out, rstd, x kernels.Buf, stride, off int, w kernels.Buf, rows, heads, dim int, eps float32) {
	o, r, xs, ws := Data(out), Data(rstd), Data(x), Data(w)[:dim]
	// A row costs about a nanosecond per element: below 2¹⁷ elements per
	// task (a decoding step's 64 rows of 512) starting a second goroutine
	// costs more than it saves.
	parallelFor(b.threads, rows, max(1, (1<<17)/max(heads*dim, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for h := 0; h < heads; h++ {
				at := i*stride + off + h*dim
				row := xs[at : at+dim]
				ss := sumSquares(row)
				rs := float32(1 / math.Sqrt(ss/float64(dim)+float64(eps)))
				r[i*heads+h] = rs
				normRow(o[at:at+dim], row, ws, rs)
			}
		}
	})
}

// RMSNormHeadsBackward implements kernels.Dense: with y = x·r·w and
// r = (mean(x²)+eps)^(-1/2), dx = r·w⊙dy − x·r³/dim·Σ(dy⊙w⊙x).
func (b *Backend) RMSNormHeadsBackward(dx, dw, dout, x, w, rstd kernels.Buf, stride, off, rows, heads, dim int) {
	dxs, dys, xs, ws, r := Data(dx), Data(dout), Data(x), Data(w)[:dim], Data(rstd)
	parallelFor(b.threads, rows, rowsPerTask(heads*dim), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for h := 0; h < heads; h++ {
				at := i*stride + off + h*dim
				xr, dy, dxr := xs[at:at+dim], dys[at:at+dim], dxs[at:at+dim]
				rs := r[i*heads+h]
				var s float64
				for j, v := range xr {
					s += float64(dy[j] * ws[j] * v)
				}
				c := float32(s) * rs * rs * rs / float32(dim)
				for j, v := range xr {
					dxr[j] += rs*ws[j]*dy[j] - v*c
				}
			}
		}
	})
	reduceRows(b.threads, rows, dim, Data(dw)[:dim], func(p []float32, lo, hi int) {
		for i := lo; i < hi; i++ {
			for h := 0; h < heads; h++ {
				at := i*stride + off + h*dim
				xr, dy := xs[at:at+dim], dys[at:at+dim]
				rs := r[i*heads+h]
				for j, v := range xr {
					p[j] += dy[j] * v * rs
				}
			}
		}
	})
}

// RoPE implements kernels.Dense.
func (b *Backend) RoPE(x kernels.Buf, stride int, cos, sin kernels.Buf, rows, heads, headDim int, inverse bool) {
	xs, cs, ss := Data(x), Data(cos), Data(sin)
	half := headDim / 2
	sign := float32(1)
	if inverse {
		sign = -1
	}
	parallelFor(b.threads, rows, rowsPerTask(heads*headDim), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			c, s := cs[r*half:r*half+half], ss[r*half:r*half+half]
			for h := 0; h < heads; h++ {
				v := xs[r*stride+h*headDim : r*stride+h*headDim+headDim]
				x1, x2 := v[:half], v[half:headDim]
				for i := range half {
					a, bb := x1[i], x2[i]
					si := sign * s[i]
					x1[i] = a*c[i] - bb*si
					x2[i] = bb*c[i] + a*si
				}
			}
		}
	})
}

func sigmoid(x float32) float32 { return 1 / (1 + expf(-x)) }

// swigluRowScalar computes out = silu(g)·u.
func swigluRowScalar(out, g, u []float32) {
	out = out[:len(g)]
	u = u[:len(g)]
	for j, gv := range g {
		out[j] = gv * sigmoid(gv) * u[j]
	}
}

// swigluBackwardRowScalar computes du = d·silu(g) and
// dg = d·u·σ(g)·(1 + g·(1 − σ(g))).
func swigluBackwardRowScalar(dg, du, d, g, u []float32) {
	for j, gv := range g {
		s := sigmoid(gv)
		du[j] = d[j] * gv * s
		dg[j] = d[j] * u[j] * s * (1 + gv*(1-s))
	}
}

// SwiGLU implements kernels.Dense.
func (b *Backend) SwiGLU(out, gateUp kernels.Buf, rows, ffn int) {
	o, gu := Data(out), Data(gateUp)
	parallelFor(b.threads, rows, rowsPerTask(ffn), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			g, u := gu[r*2*ffn:r*2*ffn+ffn], gu[r*2*ffn+ffn:r*2*ffn+2*ffn]
			swigluRow(o[r*ffn:r*ffn+ffn], g, u)
		}
	})
}

// SwiGLUBackward implements kernels.Dense.
func (b *Backend) SwiGLUBackward(dGateUp, dout, gateUp kernels.Buf, rows, ffn int) {
	dgu, dy, gu := Data(dGateUp), Data(dout), Data(gateUp)
	parallelFor(b.threads, rows, rowsPerTask(ffn), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			g, u := gu[r*2*ffn:r*2*ffn+ffn], gu[r*2*ffn+ffn:r*2*ffn+2*ffn]
			dg, du := dgu[r*2*ffn:r*2*ffn+ffn], dgu[r*2*ffn+ffn:r*2*ffn+2*ffn]
			swigluBackwardRow(dg, du, dy[r*ffn:r*ffn+ffn], g, u)
		}
	})
}

// Embed implements kernels.Dense.
func (b *Backend) Embed(out, table kernels.Buf, ids []int32, dim int) {
	o, t := Data(out), Data(table)
	vocab := len(t) / dim
	parallelFor(b.threads, len(ids), rowsPerTask(dim), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			id := int(ids[i])
			if id < 0 || id >= vocab {
				panic(fmt.Sprintf("cpu: token id %d outside the vocabulary of %d", id, vocab))
			}
			copy(o[i*dim:i*dim+dim], t[id*dim:id*dim+dim])
		}
	})
}

// EmbedBackward implements kernels.Dense. Columns are split across workers
// and every worker visits the ids in order, so the sum order is fixed.
func (b *Backend) EmbedBackward(dtable, dout kernels.Buf, ids []int32, dim int) {
	dt, d := Data(dtable), Data(dout)
	parallelFor(b.threads, dim, 64, func(lo, hi int) {
		for i, id := range ids {
			axpy(1, d[i*dim+lo:i*dim+hi], dt[int(id)*dim+lo:int(id)*dim+hi])
		}
	})
}

// CacheWrite implements kernels.Dense.
func (b *Backend) CacheWrite(pool kernels.Buf, width int, src kernels.Buf, srcStride, srcOff int, slots []int32) {
	p, s := Data(pool), Data(src)
	for i, slot := range slots {
		copy(p[int(slot)*width:int(slot)*width+width], s[i*srcStride+srcOff:i*srcStride+srcOff+width])
	}
}
