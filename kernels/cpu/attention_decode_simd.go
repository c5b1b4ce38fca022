//go:build goexperiment.simd && amd64

package cpu

import (
	"math"
	"simd/archsimd"
)

// Permutations of the transpose-and-add tree in decodeScores: level l
// combines two vectors holding segments of w = 16>>l lanes per key into
// one with segments of w/2, the first half of every segment from lo and
// the second half from hi (then lo+hi sums the halves). Keys keep their
// order, so after four levels lane j holds key j's sum.
var scoreTreeLo, scoreTreeHi = func() (lo, hi [4]archsimd.Uint32x16) {
	for l := range 4 {
		w := 16 >> l
		var a, b [16]uint32
		for i := range 16 {
			src := i % 8 / (w / 2) * w // segment start within its vector
			src += i % (w / 2)
			if i >= 8 {
				src += 16 // from the second vector
			}
			a[i], b[i] = uint32(src), uint32(src+w/2)
		}
		lo[l], hi[l] = archsimd.LoadUint32x16(&a), archsimd.LoadUint32x16(&b)
	}
	return lo, hi
}()

func foldPair(x, y archsimd.Float32x16, l int) archsimd.Float32x16 {
	return x.ConcatPermute(y, scoreTreeLo[l]).Add(x.ConcatPermute(y, scoreTreeHi[l]))
}

// decodeScores writes scores[j] = scale·(q·k_j) for the key rows
// k_j = kp[offs[j] : offs[j]+len(q)] and returns the largest score. With
// AVX-512 and a head size of 64 it takes eight keys at a time: eight
// independent accumulators over the head dimension (the query stays in
// registers), then a transpose-and-add tree instead of eight horizontal
// sums.
func decodeScores(scores, q, kp []float32, offs []int, scale float32) float32 {
	if !hasAVX512 || len(q) != 64 {
		return decodeScoresScalar(scores, q, kp, offs, scale)
	}
	L := len(offs)
	scores = scores[:L]
	q = q[:64]
	q0, q1 := archsimd.LoadFloat32x16Slice(q[0:]), archsimd.LoadFloat32x16Slice(q[16:])
	q2, q3 := archsimd.LoadFloat32x16Slice(q[32:]), archsimd.LoadFloat32x16Slice(q[48:])
	mx := archsimd.BroadcastFloat32x16(float32(math.Inf(-1)))
	for j0 := 0; j0 < L; j0 += 8 {
		n := min(8, L-j0)
		last := offs[j0+n-1]
		key := func(j int) []float32 {
			o := last
			if j < n {
				o = offs[j0+j]
			}
			return kp[o : o+64 : o+64]
		}
		dot4 := func(k []float32) archsimd.Float32x16 {
			a := archsimd.LoadFloat32x16Slice(k[0:]).Mul(q0)
			b := archsimd.LoadFloat32x16Slice(k[16:]).Mul(q1)
			a = archsimd.LoadFloat32x16Slice(k[32:]).MulAdd(q2, a)
			b = archsimd.LoadFloat32x16Slice(k[48:]).MulAdd(q3, b)
			return a.Add(b)
		}
		a0, a1, a2, a3 := dot4(key(0)), dot4(key(1)), dot4(key(2)), dot4(key(3))
		b0, b1 := foldPair(a0, a1, 0), foldPair(a2, a3, 0)
		a4, a5, a6, a7 := dot4(key(4)), dot4(key(5)), dot4(key(6)), dot4(key(7))
		b2, b3 := foldPair(a4, a5, 0), foldPair(a6, a7, 0)
		c0, c1 := foldPair(b0, b1, 1), foldPair(b2, b3, 1)
		d := foldPair(c0, c1, 2) // key j in lanes 2j, 2j+1
		s := foldPair(d, d, 3).Mul(archsimd.BroadcastFloat32x16(scale))
		// Lanes 8..15 repeat 0..7, and tiles past the last key repeat
		// it, so no lane raises the max.
		mx = mx.Max(s)
		if n == 8 {
			s.GetLo().StoreSlice(scores[j0:])
		} else {
			s.StoreSlicePart(scores[j0 : j0+n])
		}
	}
	var lanes [16]float32
	mx.Store(&lanes)
	m := lanes[0]
	for _, v := range lanes[1:8] {
		m = max(m, v)
	}
	return m
}

// decodeWeighted writes out = Σ_j p[j]·v_j for the value rows
// v_j = vp[offs[j] : offs[j]+len(out)]. With AVX-512 and a head size of 64
// the output stays in registers, two keys at a time into separate
// accumulators.
func decodeWeighted(out, p, vp []float32, offs []int) {
	if !hasAVX512 || len(out) != 64 {
		decodeWeightedScalar(out, p, vp, offs)
		return
	}
	L := len(offs)
	p = p[:L]
	var a0, a1, a2, a3, b0, b1, b2, b3 archsimd.Float32x16
	j := 0
	for ; j+2 <= L; j += 2 {
		x, y := offs[j], offs[j+1]
		px, py := archsimd.BroadcastFloat32x16(p[j]), archsimd.BroadcastFloat32x16(p[j+1])
		vx, vy := vp[x:x+64], vp[y:y+64]
		a0 = archsimd.LoadFloat32x16Slice(vx[0:]).MulAdd(px, a0)
		a1 = archsimd.LoadFloat32x16Slice(vx[16:]).MulAdd(px, a1)
		a2 = archsimd.LoadFloat32x16Slice(vx[32:]).MulAdd(px, a2)
		a3 = archsimd.LoadFloat32x16Slice(vx[48:]).MulAdd(px, a3)
		b0 = archsimd.LoadFloat32x16Slice(vy[0:]).MulAdd(py, b0)
		b1 = archsimd.LoadFloat32x16Slice(vy[16:]).MulAdd(py, b1)
		b2 = archsimd.LoadFloat32x16Slice(vy[32:]).MulAdd(py, b2)
		b3 = archsimd.LoadFloat32x16Slice(vy[48:]).MulAdd(py, b3)
	}
	if j < L {
		x := offs[j]
		px := archsimd.BroadcastFloat32x16(p[j])
		vx := vp[x : x+64]
		a0 = archsimd.LoadFloat32x16Slice(vx[0:]).MulAdd(px, a0)
		a1 = archsimd.LoadFloat32x16Slice(vx[16:]).MulAdd(px, a1)
		a2 = archsimd.LoadFloat32x16Slice(vx[32:]).MulAdd(px, a2)
		a3 = archsimd.LoadFloat32x16Slice(vx[48:]).MulAdd(px, a3)
	}
	out = out[:64]
	a0.Add(b0).StoreSlice(out[0:])
	a1.Add(b1).StoreSlice(out[16:])
	a2.Add(b2).StoreSlice(out[32:])
	a3.Add(b3).StoreSlice(out[48:])
}
