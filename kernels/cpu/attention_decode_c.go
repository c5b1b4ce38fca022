package cpu

/*
#include <stdint.h>
int rl_decode_attn(const float *q, int group, int hd, const float *kp, const float *vp, const int64_t *offs, int len,
                   float scale, float *scores, float *out);
*/
import "C"

import "unsafe"

// decodeAttnC runs attention_decode.c for the group query heads q against
// the key and value rows at offs, writing out, and reports whether it did
// (AVX-512 and a head size of 64; offs non-empty). In C the pair of heads
// of a GQA group shares every key and value load and the rows of the next
// positions are prefetched, which the paged cache's scattered rows need
// and Go cannot express.
func decodeAttnC(q []float32, group, hd int, kp, vp []float32, offs []int, scale float32, scores, out []float32) bool {
	if !rowsGemmOK || hd != 64 || len(offs) == 0 {
		return false
	}
	L := len(offs)
	for _, o := range offs {
		if o < 0 || o+hd > len(kp) || o+hd > len(vp) {
			panic("cpu: decode attention: cache row outside the pool")
		}
	}
	_ = q[group*hd-1]
	_ = out[group*hd-1]
	_ = scores[group*L-1]
	return C.rl_decode_attn((*C.float)(&q[0]), C.int(group), C.int(hd), (*C.float)(&kp[0]), (*C.float)(&vp[0]),
		(*C.int64_t)(unsafe.Pointer(&offs[0])), C.int(L), C.float(scale), (*C.float)(&scores[0]), (*C.float)(&out[0])) != 0
}
