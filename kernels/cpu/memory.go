package cpu

import (
	"fmt"

	"github.com/rltrain/rltrain/kernels"
)

// Alloc implements kernels.Memory.
func (b *Backend) Alloc(n int) kernels.Buf { return F32(make([]float32, n)) }

// Free implements kernels.Memory; the garbage collector reclaims CPU buffers.
func (b *Backend) Free(kernels.Buf) {}

// View implements kernels.Memory.
func (b *Backend) View(buf kernels.Buf, off, n int) kernels.Buf {
	d := Data(buf)
	if off < 0 || n < 0 || off+n > len(d) {
		panic(fmt.Sprintf("cpu: view [%d:%d] of a %d-float buffer", off, off+n, len(d)))
	}
	return F32(d[off : off+n : off+n])
}

// Upload implements kernels.Memory.
func (b *Backend) Upload(dst kernels.Buf, src []float32) { copy(Data(dst), src) }

// Download implements kernels.Memory.
func (b *Backend) Download(dst []float32, src kernels.Buf) { copy(dst, Data(src)) }

// Zero implements kernels.Memory.
func (b *Backend) Zero(buf kernels.Buf) { clear(Data(buf)) }

// Copy implements kernels.Memory.
func (b *Backend) Copy(dst, src kernels.Buf) { copy(Data(dst), Data(src)) }
