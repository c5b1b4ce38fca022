package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// decode64 is the float64 reference of AttentionDecode.
func decode64(q []float32, qStride int, kPool, vPool []float32, slots [][]int32, lens []int, heads, kvHeads, hd int, scale float64) []float64 {
	width := kvHeads * hd
	out := make([]float64, len(lens)*heads*hd)
	for i, L := range lens {
		for h := range heads {
			kvh := h / (heads / kvHeads)
			qv := to64(q[i*qStride+h*hd : i*qStride+(h+1)*hd])
			sc := make([]float64, L)
			mx := math.Inf(-1)
			for j := range L {
				off := int(slots[i][j])*width + kvh*hd
				sc[j] = scale * dot64(qv, to64(kPool[off:off+hd]))
				mx = max(mx, sc[j])
			}
			sum := 0.0
			for j := range sc {
				sc[j] = math.Exp(sc[j] - mx)
				sum += sc[j]
			}
			o := out[(i*heads+h)*hd : (i*heads+h+1)*hd]
			for j := range L {
				off := int(slots[i][j])*width + kvh*hd
				for d := range hd {
					o[d] += sc[j] / sum * float64(vPool[off+d])
				}
			}
		}
	}
	return out
}

// TestAttentionDecodeHeadSizes covers the C kernel (head size 64) and the
// Go path (the others), with lengths around multiples of the 16-key
// tiles, an empty sequence (zero output), scattered slots and a large
// score range.
func TestAttentionDecodeHeadSizes(t *testing.T) {
	be := New(2)
	r := rand.New(rand.NewPCG(21, 22))
	for _, hd := range []int{8, 48, 64, 128} {
		t.Run(fmt.Sprintf("hd%d", hd), func(t *testing.T) {
			heads, kv := 6, 2
			width := kv * hd
			const poolRows = 300
			kPool, vPool := randVec(r, poolRows*width, 1), randVec(r, poolRows*width, 1)
			lens := []int{1, 2, 15, 16, 0, 17, 31, 33, 64, 100, 257}
			perm := r.Perm(poolRows)
			slots := make([][]int32, len(lens))
			for i, L := range lens {
				for j := range L {
					slots[i] = append(slots[i], int32(perm[(i*37+j)%poolRows]))
				}
			}
			qStride := (heads+2*kv)*hd + 3
			q := randVec(r, len(lens)*qStride, 3)
			scale := 1 / math.Sqrt(float64(hd))
			out := make([]float32, len(lens)*heads*hd)
			be.AttentionDecode(F32(out), F32(q), qStride, F32(kPool), F32(vPool), slots, lens, heads, kv, hd, float32(scale))
			checkClose(t, "decode", out, decode64(q, qStride, kPool, vPool, slots, lens, heads, kv, hd, scale), fwdTol)
		})
	}
}

// BenchmarkAttentionDecode is one layer of the 64-sequence rollout
// benchmark on the reference model (4 heads, 2 KV heads, head size 64,
// 64-token prompts shared by groups of 8, 64 generated positions).
func BenchmarkAttentionDecode(b *testing.B) {
	be := New(2)
	r := rand.New(rand.NewPCG(1, 2))
	heads, kv, hd, bs := 4, 2, 64, 16
	width := kv * hd
	const prompts, group, P, L = 8, 8, 64, 128
	blocks := prompts*P/bs + prompts*group*(L-P)/bs
	kPool, vPool := randVec(r, blocks*bs*width, 1), randVec(r, blocks*bs*width, 1)
	var slots [][]int32
	lens := make([]int, prompts*group)
	next := int32(prompts * P / bs)
	for p := range prompts {
		for range group {
			var s []int32
			for j := range L {
				blk := int32(p*P/bs) + int32(j/bs)
				if j >= P {
					blk = next + int32((j-P)/bs)
				}
				s = append(s, blk*int32(bs)+int32(j%bs))
			}
			next += int32((L - P) / bs)
			slots = append(slots, s)
		}
	}
	for i := range lens {
		lens[i] = L
	}
	qStride := (heads + 2*kv) * hd
	q := randVec(r, len(lens)*qStride, 1)
	out := make([]float32, len(lens)*heads*hd)
	cpu0 := processCPU()
	for b.Loop() {
		be.AttentionDecode(F32(out), F32(q), qStride, F32(kPool), F32(vPool), slots, lens, heads, kv, hd, 0.125)
	}
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
