package model

import (
	"errors"
	"fmt"

	"github.com/rltrain/rltrain/kernels"
)

// ErrCacheFull is returned when the KV cache has no free block; a scheduler
// reacts by admitting fewer sequences.
var ErrCacheFull = errors.New("kv cache full")

// KVCache is a paged key/value cache: every layer has a key pool and a
// value pool of NumBlocks·BlockSize rows of KVHeads·HeadDim floats. A
// sequence owns a list of blocks; blocks are reference counted so that the
// completions of one prompt share the prompt's blocks, and a shared block is
// copied only when a sequence writes into it (copy on write).
type KVCache struct {
	m         *Model
	BlockSize int
	NumBlocks int
	k, v      []kernels.Buf
	refs      []int32
	free      []int32
	dec       []*decodeBufs // step activations per row worker (see DecodeTo)
}

// KVBytesPerToken is 2 · layers · kv_heads · head_dim · 4 bytes.
func (c Config) KVBytesPerToken() int { return 2 * c.Layers * c.KVHeads * c.HeadDim * 4 }

// NewKVCache allocates a cache of at most budgetBytes (rounded down to
// whole blocks, at least one).
func (m *Model) NewKVCache(budgetBytes int64, blockSize int) (*KVCache, error) {
	if blockSize < 1 {
		return nil, fmt.Errorf("kv cache: block size %d", blockSize)
	}
	perBlock := int64(m.Cfg.KVBytesPerToken()) * int64(blockSize)
	n := int(budgetBytes / perBlock)
	if n < 1 {
		return nil, fmt.Errorf("kv cache: a budget of %d bytes holds no block of %d tokens (%d bytes)", budgetBytes, blockSize, perBlock)
	}
	c := &KVCache{m: m, BlockSize: blockSize, NumBlocks: n, refs: make([]int32, n)}
	width := m.Cfg.KVHeads * m.Cfg.HeadDim
	for range m.Cfg.Layers {
		c.k = append(c.k, m.be.Alloc(n*blockSize*width))
		c.v = append(c.v, m.be.Alloc(n*blockSize*width))
	}
	for i := n - 1; i >= 0; i-- {
		c.free = append(c.free, int32(i))
	}
	return c, nil
}

// Close frees the cache's key and value pools and its decoding
// activations; the cache must not be used afterwards.
func (c *KVCache) Close() {
	be := c.m.be
	for l := range c.k {
		be.Free(c.k[l])
		be.Free(c.v[l])
	}
	for _, d := range c.dec {
		if d != nil {
			d.free(be)
		}
	}
	c.k, c.v, c.dec, c.free = nil, nil, nil, nil
}

// FreeBlocks is the number of unused blocks.
func (c *KVCache) FreeBlocks() int { return len(c.free) }

// Bytes is the memory the cache holds.
func (c *KVCache) Bytes() int64 {
	return int64(c.NumBlocks) * int64(c.BlockSize) * int64(c.m.Cfg.KVBytesPerToken())
}

// Seq is one sequence's view of the cache.
type Seq struct {
	blocks []int32
	// Len is the number of cached positions.
	Len int
}

func (c *KVCache) alloc() (int32, error) {
	if len(c.free) == 0 {
		return 0, ErrCacheFull
	}
	b := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	c.refs[b] = 1
	return b, nil
}

func (c *KVCache) release(b int32) {
	c.refs[b]--
	if c.refs[b] == 0 {
		c.free = append(c.free, b)
	}
}

// Release returns a sequence's blocks to the cache.
func (c *KVCache) Release(s *Seq) {
	for _, b := range s.blocks {
		c.release(b)
	}
	s.blocks, s.Len = nil, 0
}

// Fork returns a sequence sharing all of s's cached positions.
func (c *KVCache) Fork(s *Seq) *Seq {
	for _, b := range s.blocks {
		c.refs[b]++
	}
	return &Seq{blocks: append([]int32(nil), s.blocks...), Len: s.Len}
}

// BlocksNeeded is how many new blocks extending s by n positions takes in
// the worst case (including a copy of a shared partial block).
func (c *KVCache) BlocksNeeded(s *Seq, n int) int {
	total := (s.Len+n+c.BlockSize-1)/c.BlockSize - len(s.blocks)
	if s.Len%c.BlockSize != 0 && c.refs[s.blocks[len(s.blocks)-1]] > 1 {
		total++
	}
	return total
}

// reserve makes room for n more positions of s and returns their slots.
func (c *KVCache) reserve(s *Seq, n int) ([]int32, error) {
	if need := c.BlocksNeeded(s, n); need > len(c.free) {
		return nil, ErrCacheFull
	}
	if s.Len%c.BlockSize != 0 {
		last := len(s.blocks) - 1
		if old := s.blocks[last]; c.refs[old] > 1 {
			nb, _ := c.alloc()
			c.copyBlock(nb, old)
			c.release(old)
			s.blocks[last] = nb
		}
	}
	slots := make([]int32, n)
	for i := range n {
		p := s.Len + i
		if p/c.BlockSize >= len(s.blocks) {
			nb, _ := c.alloc()
			s.blocks = append(s.blocks, nb)
		}
		slots[i] = s.blocks[p/c.BlockSize]*int32(c.BlockSize) + int32(p%c.BlockSize)
	}
	return slots, nil
}

func (c *KVCache) copyBlock(dst, src int32) {
	be := c.m.be
	rows := c.BlockSize * c.m.Cfg.KVHeads * c.m.Cfg.HeadDim
	for l := range c.k {
		be.Copy(be.View(c.k[l], int(dst)*rows, rows), be.View(c.k[l], int(src)*rows, rows))
		be.Copy(be.View(c.v[l], int(dst)*rows, rows), be.View(c.v[l], int(src)*rows, rows))
	}
}

// slotsOf lists the slots of positions [0, s.Len).
func (c *KVCache) slotsOf(s *Seq) []int32 {
	out := make([]int32, s.Len)
	for p := range out {
		out[p] = s.blocks[p/c.BlockSize]*int32(c.BlockSize) + int32(p%c.BlockSize)
	}
	return out
}
