package cuda

import (
	"fmt"

	"github.com/rltrain/rltrain/kernels"
)

// maxHeadDim matches MAX_HEAD_DIM in cuda_compat.cuh.
const maxHeadDim = 256

// attnThreads is the number of query (or key) rows per attention block.
const attnThreads = 64

// attnTile is the number of key (or query) rows staged in shared memory.
func attnTile(hd int) int { return max(1, min(64, 4096/hd)) }

func checkAttn(s kernels.AttnShape) {
	if s.HeadDim > maxHeadDim || s.HeadDim <= 0 {
		panic(fmt.Sprintf("cuda: head dimension %d outside 1..%d", s.HeadDim, maxHeadDim))
	}
	if s.KVHeads <= 0 || s.Heads%s.KVHeads != 0 {
		panic(fmt.Sprintf("cuda: %d heads are not a multiple of %d KV heads", s.Heads, s.KVHeads))
	}
	if s.Lens != nil && len(s.Lens) < s.Batch {
		panic(fmt.Sprintf("cuda: %d lengths for a batch of %d", len(s.Lens), s.Batch))
	}
}

func (b *Backend) uploadLens(s kernels.AttnShape) DevPtr {
	if s.Lens == nil {
		return 0
	}
	return b.uploadInts(toInt32(s.Lens[:s.Batch]))
}

// Attention implements kernels.Dense.
func (b *Backend) Attention(out, lse, qkv kernels.Buf, s kernels.AttnShape) {
	checkAttn(s)
	if s.Batch*s.SeqLen == 0 {
		return
	}
	lens := b.uploadLens(s)
	defer b.release(lens)
	tile := attnTile(s.HeadDim)
	grid := Dim3{(s.SeqLen + attnThreads - 1) / attnThreads, s.Heads, s.Batch}
	b.launch("attn_fwd", grid, D1(attnThreads), 2*tile*s.HeadDim*4, ArgPtr(dev(out)), ArgPtr(dev(lse)), ArgPtr(dev(qkv)), ArgPtr(lens),
		ArgInt(s.SeqLen), ArgInt(s.Heads), ArgInt(s.KVHeads), ArgInt(s.HeadDim), ArgF32(s.Scale), ArgInt(tile))
}

// AttentionBackward implements kernels.Dense.
func (b *Backend) AttentionBackward(dqkv, dout, qkv, out, lse kernels.Buf, s kernels.AttnShape) {
	checkAttn(s)
	if s.Batch*s.SeqLen == 0 {
		return
	}
	lens := b.uploadLens(s)
	dsum := b.temp(4 * s.Batch * s.Heads * s.SeqLen)
	defer b.release(lens, dsum)
	tile := attnTile(s.HeadDim)
	blocks := (s.SeqLen + attnThreads - 1) / attnThreads
	b.launch("attn_bwd_dq", Dim3{blocks, s.Heads, s.Batch}, D1(attnThreads), 2*tile*s.HeadDim*4, ArgPtr(dev(dqkv)), ArgPtr(dsum),
		ArgPtr(dev(dout)), ArgPtr(dev(qkv)), ArgPtr(dev(out)), ArgPtr(dev(lse)), ArgPtr(lens),
		ArgInt(s.SeqLen), ArgInt(s.Heads), ArgInt(s.KVHeads), ArgInt(s.HeadDim), ArgF32(s.Scale), ArgInt(tile))
	b.launch("attn_bwd_dkv", Dim3{blocks, s.KVHeads, s.Batch}, D1(attnThreads), (2*s.HeadDim+2)*tile*4, ArgPtr(dev(dqkv)),
		ArgPtr(dev(dout)), ArgPtr(dev(qkv)), ArgPtr(dev(lse)), ArgPtr(dsum), ArgPtr(lens),
		ArgInt(s.SeqLen), ArgInt(s.Heads), ArgInt(s.KVHeads), ArgInt(s.HeadDim), ArgF32(s.Scale), ArgInt(tile))
}

// AttentionDecode implements kernels.Dense.
func (b *Backend) AttentionDecode(out, q kernels.Buf, qStride int, kPool, vPool kernels.Buf, slots [][]int32, lens []int, heads, kvHeads, headDim int, scale float32) {
	checkAttn(kernels.AttnShape{Heads: heads, KVHeads: kvHeads, HeadDim: headDim})
	if len(lens) == 0 {
		return
	}
	var flat []int32
	offs := make([]int32, len(lens))
	for i, n := range lens {
		offs[i] = int32(len(flat))
		flat = append(flat, slots[i][:n]...)
	}
	checkIDs(flat, kPool.Len()/(kvHeads*headDim))
	ps, po, pl := b.uploadInts(flat), b.uploadInts(offs), b.uploadInts(toInt32(lens))
	defer b.release(ps, po, pl)
	b.launch("attn_decode", Dim3{heads, len(lens), 1}, D1(32), 0, ArgPtr(dev(out)), ArgPtr(dev(q)), ArgInt(qStride),
		ArgPtr(dev(kPool)), ArgPtr(dev(vPool)), ArgPtr(ps), ArgPtr(po), ArgPtr(pl), ArgInt(heads), ArgInt(kvHeads), ArgInt(headDim), ArgF32(scale))
}
