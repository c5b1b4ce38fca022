package cuda

import (
	"fmt"
	"slices"

	"github.com/rltrain/rltrain/kernels"
)

// maxHeadDim matches MAX_HEAD_DIM in cuda_compat.cuh.
const maxHeadDim = 256

// Launch geometry of attention.cu: attnWarps (ATT_WARPS) warps per block,
// each taking up to attnMaxRPW (ATT_RPW) rows; key tiles of 32 rows, or 16
// when head_dim > 128, so that the tiles and rows fit attnSharedFloats.
const (
	attnWarps        = 4
	attnMaxRPW       = 4
	attnSharedFloats = 48 << 10 / 4 // the default limit of dynamic shared memory
)

func attnTile(hd int) int {
	if hd > 128 {
		return 16
	}
	return 32
}

// Shared memory (in floats) of each kernel for head dimension hd, tile and
// rows per warp rpw, as laid out in attention.cu.
func fwdShared(hd, tile, rpw int) int { return tile*(hd+1) + tile*hd + attnWarps*rpw*(hd+32) }
func dqShared(hd, tile, rpw int) int  { return 2*tile*(hd+1) + attnWarps*rpw*(2*hd+32) }
func dkvShared(hd, tile, rpw int) int { return 2*tile*(hd+1) + 2*tile + attnWarps*rpw*(2*hd+64) }

// attnRPW is the most rows per warp, at most limit, whose shared memory fits.
func attnRPW(hd, limit int, shared func(hd, tile, rpw int) int) int {
	for rpw := min(limit, attnMaxRPW); rpw > 1; rpw /= 2 {
		if shared(hd, attnTile(hd), rpw) <= attnSharedFloats {
			return rpw
		}
	}
	return 1
}

// rowsPerWarp is a power of two ≥ ceil(rows / attnWarps), at most attnMaxRPW.
func rowsPerWarp(rows int) int {
	rpw := 1
	for rpw < attnMaxRPW && attnWarps*rpw < rows {
		rpw *= 2
	}
	return rpw
}

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
	return b.cachedInts(tableAttnLens, toInt32(s.Lens[:s.Batch]))
}

// attnGrid is the grid over rows (queries or keys) for rpw rows per warp.
func attnGrid(s kernels.AttnShape, heads, rpw int) Dim3 {
	return Dim3{(s.SeqLen + attnWarps*rpw - 1) / (attnWarps * rpw), heads, s.Batch}
}

// Attention implements kernels.Dense.
func (b *Backend) Attention(out, lse, qkv kernels.Buf, s kernels.AttnShape) {
	checkAttn(s)
	if s.Batch*s.SeqLen == 0 {
		return
	}
	lens := b.uploadLens(s)
	hd, tile := s.HeadDim, attnTile(s.HeadDim)
	rpw := attnRPW(hd, rowsPerWarp(s.SeqLen), fwdShared)
	b.launch("attn_fwd", attnGrid(s, s.Heads, rpw), D1(32*attnWarps), 4*fwdShared(hd, tile, rpw), ArgPtr(dev(out)), ArgPtr(dev(lse)),
		ArgPtr(dev(qkv)), ArgPtr(lens), ArgInt(s.SeqLen), ArgInt(s.Heads), ArgInt(s.KVHeads), ArgInt(hd), ArgF32(s.Scale),
		ArgInt(tile), ArgInt(rpw))
}

// AttentionBackward implements kernels.Dense: attn_bwd_dq (parallel over
// query rows, also writing D = dO·O per row) then attn_bwd_dkv (parallel
// over key rows); each gradient value is summed by one lane in a fixed
// order, so the result is deterministic.
func (b *Backend) AttentionBackward(dqkv, dout, qkv, out, lse kernels.Buf, s kernels.AttnShape) {
	checkAttn(s)
	if s.Batch*s.SeqLen == 0 {
		return
	}
	lens := b.uploadLens(s)
	dsum := b.temp(4 * s.Batch * s.Heads * s.SeqLen)
	defer b.release(dsum)
	hd, tile := s.HeadDim, attnTile(s.HeadDim)
	rpw := attnRPW(hd, rowsPerWarp(s.SeqLen), dqShared)
	b.launch("attn_bwd_dq", attnGrid(s, s.Heads, rpw), D1(32*attnWarps), 4*dqShared(hd, tile, rpw), ArgPtr(dev(dqkv)), ArgPtr(dsum),
		ArgPtr(dev(dout)), ArgPtr(dev(qkv)), ArgPtr(dev(out)), ArgPtr(dev(lse)), ArgPtr(lens),
		ArgInt(s.SeqLen), ArgInt(s.Heads), ArgInt(s.KVHeads), ArgInt(hd), ArgF32(s.Scale), ArgInt(tile), ArgInt(rpw))
	rpw = attnRPW(hd, rowsPerWarp(s.SeqLen), dkvShared)
	b.launch("attn_bwd_dkv", attnGrid(s, s.KVHeads, rpw), D1(32*attnWarps), 4*dkvShared(hd, tile, rpw), ArgPtr(dev(dqkv)),
		ArgPtr(dev(dout)), ArgPtr(dev(qkv)), ArgPtr(dev(lse)), ArgPtr(dsum), ArgPtr(lens),
		ArgInt(s.SeqLen), ArgInt(s.Heads), ArgInt(s.KVHeads), ArgInt(hd), ArgF32(s.Scale), ArgInt(tile), ArgInt(rpw))
}

// Integer tables that every layer of a forward pass or decoding step
// passes again unchanged (a decoding step's slot table, the cache rows
// CacheWrite fills, attention's sequence lengths) are uploaded once: the
// backend keeps the last table of each kind and reuses its device copy
// while the new one is equal. On a GPU each upload is a synchronous copy.
const (
	tableDecode = iota
	tableCacheWrite
	tableAttnLens
	numTables
)

// intTable is the last table of one kind and its device copy.
type intTable struct {
	host []int32
	dev  DevPtr
	cap  int // int32s allocated at dev
	// bound is the limit the table's ids were last checked against (see
	// checkedInts); 0 when unchecked.
	bound int
}

// checkedInts is cachedInts for a table of ids from first on, each below
// bound: the ids are checked only when the table or the bound changed.
func (b *Backend) checkedInts(k int, v []int32, first, bound int) DevPtr {
	t := &b.tables[k]
	if t.dev != 0 && t.bound == bound && slices.Equal(t.host, v) {
		return t.dev
	}
	checkIDs(v[first:], bound)
	p := b.cachedInts(k, v)
	t.bound = bound
	return p
}

// cachedInts returns a device copy of v for table kind k, uploading it only
// when it differs from the previous table of that kind.
func (b *Backend) cachedInts(k int, v []int32) DevPtr {
	t := &b.tables[k]
	if t.dev != 0 && slices.Equal(t.host, v) {
		return t.dev
	}
	t.bound = 0
	if t.cap < len(v) || t.dev == 0 {
		b.free(t.dev)
		t.cap = max(len(v), 2*t.cap, 1)
		t.dev = b.alloc(4 * t.cap)
	}
	b.must("upload", b.drv.CopyHtoD(t.dev, bytesOf(v)))
	t.host = append(t.host[:0], v...)
	return t.dev
}

// closeTables frees the cached tables.
func (b *Backend) closeTables() {
	for k := range b.tables {
		b.free(b.tables[k].dev)
		b.tables[k] = intTable{}
	}
}

// decodeTargetBlocks is the number of decode blocks worth having in
// flight (a few per SM on an H100's 132): below it, long contexts are split
// over more blocks (flash-decoding) and merged by attn_decode_combine.
const decodeTargetBlocks = 512

// decodeSplits returns how many key ranges (of chunk keys, a multiple of
// tile) each sequence's context is split into when blocks blocks would
// otherwise run. Ranges have at least two tiles.
func decodeSplits(blocks, maxLen, tile int) (splits, chunk int) {
	minChunk := 2 * tile
	splits = max(1, min((maxLen+minChunk-1)/minChunk, (decodeTargetBlocks+blocks-1)/blocks))
	if splits == 1 {
		return 1, max(maxLen, 1)
	}
	chunk = (maxLen + splits - 1) / splits
	chunk = (chunk + tile - 1) / tile * tile
	return (maxLen + chunk - 1) / chunk, chunk
}

// AttentionDecode implements kernels.Dense. One block per (KV head,
// sequence) stages each tile of the cached keys and values once for all
// the query heads of the group (split over more blocks when the group has
// more than attnWarps·rpw heads); when that gives few blocks, each context
// is also split into key ranges whose partial results are merged in a
// fixed order.
func (b *Backend) AttentionDecode(out, q kernels.Buf, qStride int, kPool, vPool kernels.Buf, slots [][]int32, lens []int, heads, kvHeads, headDim int, scale float32) {
	checkAttn(kernels.AttnShape{Heads: heads, KVHeads: kvHeads, HeadDim: headDim})
	if len(lens) == 0 {
		return
	}
	// One table: slot offsets, lengths, then every sequence's slots.
	nseq := len(lens)
	table := make([]int32, 2*nseq, 2*nseq+64*nseq)
	maxLen := 0
	for i, n := range lens {
		table[i] = int32(len(table) - 2*nseq)
		table[nseq+i] = int32(n)
		table = append(table, slots[i][:n]...)
		maxLen = max(maxLen, n)
	}
	po := b.checkedInts(tableDecode, table, 2*nseq, kPool.Len()/(kvHeads*headDim))
	pl, ps := po+DevPtr(4*nseq), po+DevPtr(8*nseq)
	group, tile := heads/kvHeads, attnTile(headDim)
	rpw := attnRPW(headDim, rowsPerWarp(group), fwdShared)
	warps := min(attnWarps, (group+rpw-1)/rpw)
	hchunks := (group + attnWarps*rpw - 1) / (attnWarps * rpw)
	splits, chunk := decodeSplits(kvHeads*hchunks*len(lens), maxLen, tile)
	var part DevPtr
	if splits > 1 {
		part = b.temp(4 * len(lens) * heads * splits * (headDim + 2))
		defer b.release(part)
	}
	b.launch("attn_decode", Dim3{kvHeads * hchunks, len(lens), splits}, D1(32*warps), 4*fwdShared(headDim, tile, rpw),
		ArgPtr(dev(out)), ArgPtr(part), ArgPtr(dev(q)), ArgInt(qStride), ArgPtr(dev(kPool)), ArgPtr(dev(vPool)),
		ArgPtr(ps), ArgPtr(po), ArgPtr(pl), ArgInt(heads), ArgInt(kvHeads), ArgInt(headDim), ArgF32(scale), ArgInt(tile),
		ArgInt(rpw), ArgInt(hchunks), ArgInt(chunk))
	if splits > 1 {
		b.launch("attn_decode_combine", Dim3{heads, len(lens), 1}, D1(32), 0, ArgPtr(dev(out)), ArgPtr(part),
			ArgInt(heads), ArgInt(headDim), ArgInt(splits))
	}
}
