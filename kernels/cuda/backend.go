package cuda

import (
	"errors"
	"fmt"
	"sort"
	"unsafe"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cuda/cudrv"
)

// buf is a device buffer of float32 values, or a view into one.
type buf struct {
	p    DevPtr
	n    int
	view bool
}

// Len implements kernels.Buf.
func (b buf) Len() int { return b.n }

// DevicePtr returns the device address of a buffer made by a cuda Backend.
func DevicePtr(b kernels.Buf) DevPtr { return dev(b) }

func dev(b kernels.Buf) DevPtr {
	if b == nil {
		return 0
	}
	d, ok := b.(buf)
	if !ok {
		panic(fmt.Sprintf("cuda: buffer of type %T is not a CUDA buffer", b))
	}
	return d.p
}

// Backend runs kernels.Backend operations on a Driver. Its methods panic
// with a *DeviceError when the driver fails (a kernel fault, a deadlock
// reported by the emulator, out of device memory): these are not user
// errors, and the model code has no error paths for device operations.
type Backend struct {
	drv Driver
	// scratch is a reusable device buffer for logit chunks.
	scratch    DevPtr
	scratchLen int
	// Temporaries (uploaded metadata, partial sums) are kept for reuse,
	// keyed by exact size: on a GPU, cuMemFree synchronises the device, and
	// exact sizes keep the emulator's overrun checks exact.
	tempFree  map[int][]DevPtr
	tempSize  map[DevPtr]int
	tempBytes int
	// precision is the GEMM operand format; tr tracks the writes into
	// each allocation so that c16, the bf16 copies of weight operands,
	// are reused only while their source is unchanged (writes.go).
	precision Precision
	tf32      bool
	tables    [numTables]intTable
	tr        tracker
	c16       bf16Cache
	// broken is set by a device error other than out-of-memory.
	broken bool
}

// maxPooledBytes bounds the temporaries kept for reuse.
const maxPooledBytes = 64 << 20

// New returns a backend over drv.
func New(drv Driver) *Backend {
	b := &Backend{tempFree: map[int][]DevPtr{}, tempSize: map[DevPtr]int{}}
	b.drv = &trackingDriver{Driver: drv, tr: &b.tr}
	return b
}

// Close releases the backend's scratch and pooled memory (buffers returned
// by Alloc stay the caller's) and closes the driver. After a device error
// (a sticky fault makes every later call fail) it still closes the driver,
// which releases everything, and returns the error instead of panicking.
func (b *Backend) Close() (err error) {
	defer func() {
		if r := recover(); r != nil {
			de, ok := r.(*DeviceError)
			if !ok {
				panic(r)
			}
			err = errors.Join(de, b.drv.Close())
		}
	}()
	if b.scratch != 0 {
		b.free(b.scratch)
		b.scratch, b.scratchLen = 0, 0
	}
	b.closeBF16()
	b.closeTables()
	for p := range b.tempSize {
		if b.broken {
			break
		}
		if err := b.drv.Free(p); err != nil {
			return fmt.Errorf("cuda: free temporary: %w", err)
		}
	}
	clear(b.tempFree)
	clear(b.tempSize)
	b.tempBytes = 0
	return b.drv.Close()
}

// temp returns device memory of exactly bytes bytes (not zeroed) for use
// within one call; give it back with release.
func (b *Backend) temp(bytes int) DevPtr {
	bytes = max(bytes, 1)
	if l := b.tempFree[bytes]; len(l) > 0 {
		p := l[len(l)-1]
		b.tempFree[bytes] = l[:len(l)-1]
		b.tempBytes -= bytes
		return p
	}
	p, err := b.drv.Alloc(bytes)
	b.must(fmt.Sprintf("alloc %d bytes", bytes), err)
	b.tempSize[p] = bytes
	return p
}

// release returns temporaries to the pool (or frees them beyond its cap).
func (b *Backend) release(ps ...DevPtr) {
	for _, p := range ps {
		if p == 0 {
			continue
		}
		n, ok := b.tempSize[p]
		if !ok {
			panic(fmt.Sprintf("cuda: release of %#x, which is not a temporary", uint64(p)))
		}
		if b.tempBytes+n > maxPooledBytes {
			delete(b.tempSize, p)
			b.free(p)
			continue
		}
		b.tempFree[n] = append(b.tempFree[n], p)
		b.tempBytes += n
	}
}

// Driver returns the backend's driver.
func (b *Backend) Driver() Driver { return b.drv }

// Name implements kernels.Memory.
func (b *Backend) Name() string {
	mode := ""
	switch {
	case b.precision == PrecisionBF16:
		mode = ", bf16 GEMMs"
	case b.tf32:
		mode = ", TF32 GEMMs"
	}
	return "cuda (" + b.drv.Name() + mode + ")"
}

func (b *Backend) must(op string, err error) {
	if err != nil {
		if !cudrv.OutOfMemory(err) {
			// A fault is sticky on a GPU: every later call fails the same
			// way. Frees become no-ops (destroying the context releases
			// everything), so that cleanup after the error does not bury it.
			b.broken = true
		}
		panic(&DeviceError{Op: op, Err: err})
	}
}

func (b *Backend) launch(name string, grid, block Dim3, shared int, args ...uint64) {
	b.must("launch "+name, b.drv.Launch(name, grid, block, shared, args))
}

// Threads per block of the element-wise kernels, and the most blocks they
// launch; grid-stride loops cover the rest.
const (
	elemThreads   = 256
	elemMaxBlocks = 1024
	rowThreads    = 128
)

func elemGrid(n int) Dim3 { return D1(max(1, min(elemMaxBlocks, (n+elemThreads-1)/elemThreads))) }

// alloc returns zeroed device memory, tracked for writes; it is released
// with free.
func (b *Backend) alloc(bytes int) DevPtr {
	p, err := b.drv.Alloc(bytes)
	b.must(fmt.Sprintf("alloc %d bytes", bytes), err)
	b.must("memset", b.drv.Memset(p, bytes))
	b.tr.add(p, bytes)
	return p
}

func (b *Backend) free(ps ...DevPtr) {
	for _, p := range ps {
		if p == 0 {
			continue
		}
		if a := b.tr.remove(p); a != nil {
			b.dropBF16(a)
		}
		if b.broken {
			continue
		}
		b.must("free", b.drv.Free(p))
	}
}

func bytesOf[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}

// uploadInts copies small integer metadata to a fresh device buffer.
func (b *Backend) uploadInts(v []int32) DevPtr {
	p := b.temp(4 * len(v))
	b.must("upload", b.drv.CopyHtoD(p, bytesOf(v)))
	return p
}

func toInt32(v []int) []int32 {
	o := make([]int32, len(v))
	for i, x := range v {
		o[i] = int32(x)
	}
	return o
}

// Alloc implements kernels.Memory.
func (b *Backend) Alloc(n int) kernels.Buf {
	return buf{p: b.alloc(4 * max(n, 1)), n: n}
}

// Free implements kernels.Memory. Freeing a view is a no-op.
func (b *Backend) Free(x kernels.Buf) {
	d, ok := x.(buf)
	if !ok || d.view || d.p == 0 {
		return
	}
	b.free(d.p)
}

// View implements kernels.Memory.
func (b *Backend) View(x kernels.Buf, off, n int) kernels.Buf {
	if off < 0 || n < 0 || off+n > x.Len() {
		panic(fmt.Sprintf("cuda: view [%d:%d] of a %d-float buffer", off, off+n, x.Len()))
	}
	return buf{p: dev(x) + DevPtr(4*off), n: n, view: true}
}

// Upload implements kernels.Memory.
func (b *Backend) Upload(dst kernels.Buf, src []float32) {
	n := min(len(src), dst.Len())
	b.must("upload", b.drv.CopyHtoD(dev(dst), bytesOf(src[:n])))
}

// Download implements kernels.Memory.
func (b *Backend) Download(dst []float32, src kernels.Buf) {
	n := min(len(dst), src.Len())
	b.must("download", b.drv.CopyDtoH(bytesOf(dst[:n]), dev(src)))
}

// Zero implements kernels.Memory.
func (b *Backend) Zero(x kernels.Buf) {
	b.must("memset", b.drv.Memset(dev(x), 4*x.Len()))
}

// Copy implements kernels.Memory.
func (b *Backend) Copy(dst, src kernels.Buf) {
	n := min(dst.Len(), src.Len())
	if n > 0 {
		b.must("copy", b.drv.CopyDtoD(dev(dst), dev(src), 4*n))
	}
}

// Gemm implements kernels.Dense. A row-major C = op(A)·op(B) is the
// column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, so the operands swap places.
func (b *Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a kernels.Buf, lda int, bb kernels.Buf, ldb int, beta float32, c kernels.Buf, ldc int) {
	b.gemm(transA, transB, m, n, k, alpha, dev(a), lda, dev(bb), ldb, beta, dev(c), ldc)
}

// gemm runs in the backend's precision: with PrecisionBF16, on bf16 copies of A
// and B (precision.go).
func (b *Backend) gemm(transA, transB bool, m, n, k int, alpha float32, a DevPtr, lda int, bb DevPtr, ldb int, beta float32, c DevPtr, ldc int) {
	if b.precision == PrecisionBF16 {
		b.gemmBF16(transA, transB, m, n, k, alpha, a, lda, bb, ldb, beta, c, ldc)
	} else {
		b.must("sgemm", b.drv.Sgemm(transB, transA, n, m, k, alpha, bb, ldb, a, lda, beta, c, ldc))
	}
}

// AddBias implements kernels.Dense.
func (b *Backend) AddBias(x, bias kernels.Buf, rows, n int) {
	if rows*n == 0 {
		return
	}
	b.launch("add_bias", elemGrid(rows*n), D1(elemThreads), 0, ArgPtr(dev(x)), ArgPtr(dev(bias)), ArgInt(rows), ArgInt(n))
}

// colChunk matches COL_CHUNK in dense.cu.
const colChunk = 64

// columnSums runs pass 1 of a deterministic column sum (the kernel and its
// arguments after the partial buffer) and adds the result to dst[0:n].
func (b *Backend) columnSums(dst kernels.Buf, rows, n int, kernel string, args ...uint64) {
	chunks := (rows + colChunk - 1) / colChunk
	if chunks == 0 || n == 0 {
		return
	}
	part := b.temp(8 * chunks * n)
	defer b.release(part)
	colBlocks := (n + rowThreads - 1) / rowThreads
	b.launch(kernel, Dim3{colBlocks, chunks, 1}, D1(rowThreads), 0, append([]uint64{ArgPtr(part)}, args...)...)
	b.launch("col_finish", D1(colBlocks), D1(rowThreads), 0, ArgPtr(dev(dst)), ArgPtr(part), ArgInt(chunks), ArgInt(n))
}

// BiasBackward implements kernels.Dense.
func (b *Backend) BiasBackward(dbias, dout kernels.Buf, rows, n int) {
	b.columnSums(dbias, rows, n, "bias_backward_partial", ArgPtr(dev(dout)), ArgInt(rows), ArgInt(n))
}

// Copy2D implements kernels.Dense.
func (b *Backend) Copy2D(dst kernels.Buf, dstStride int, src kernels.Buf, srcStride int, rows, width int) {
	if rows*width == 0 {
		return
	}
	b.launch("copy2d", elemGrid(rows*width), D1(elemThreads), 0, ArgPtr(dev(dst)), ArgInt(dstStride), ArgPtr(dev(src)), ArgInt(srcStride), ArgInt(rows), ArgInt(width))
}

// Add implements kernels.Dense.
func (b *Backend) Add(dst, x, y kernels.Buf) {
	if x.Len() != dst.Len() || y.Len() != dst.Len() {
		panic(fmt.Sprintf("cuda: add of %d, %d into %d floats", x.Len(), y.Len(), dst.Len()))
	}
	if dst.Len() == 0 {
		return
	}
	b.launch("add", elemGrid(dst.Len()), D1(elemThreads), 0, ArgPtr(dev(dst)), ArgPtr(dev(x)), ArgPtr(dev(y)), ArgInt(dst.Len()))
}

// RMSNorm implements kernels.Dense.
func (b *Backend) RMSNorm(out, rstd, x, w kernels.Buf, rows, dim int, eps float32) {
	b.RMSNormHeads(out, rstd, x, dim, 0, w, rows, 1, dim, eps)
}

// RMSNormBackward implements kernels.Dense.
func (b *Backend) RMSNormBackward(dx, dw, dout, x, w, rstd kernels.Buf, rows, dim int) {
	b.RMSNormHeadsBackward(dx, dw, dout, x, w, rstd, dim, 0, rows, 1, dim)
}

// RMSNormHeads implements kernels.Dense.
func (b *Backend) RMSNormHeads(out, rstd, x kernels.Buf, stride, off int, w kernels.Buf, rows, heads, dim int, eps float32) {
	if rows*heads == 0 {
		return
	}
	b.launch("rmsnorm_heads", D1(rows*heads), D1(rowThreads), 0, ArgPtr(dev(out)), ArgPtr(dev(rstd)), ArgPtr(dev(x)),
		ArgInt(stride), ArgInt(off), ArgPtr(dev(w)), ArgInt(rows), ArgInt(heads), ArgInt(dim), ArgF32(eps))
}

// RMSNormHeadsBackward implements kernels.Dense.
func (b *Backend) RMSNormHeadsBackward(dx, dw, dout, x, w, rstd kernels.Buf, stride, off, rows, heads, dim int) {
	if rows*heads == 0 {
		return
	}
	b.launch("rmsnorm_heads_backward_dx", D1(rows*heads), D1(rowThreads), 0, ArgPtr(dev(dx)), ArgPtr(dev(dout)), ArgPtr(dev(x)),
		ArgPtr(dev(w)), ArgPtr(dev(rstd)), ArgInt(stride), ArgInt(off), ArgInt(rows), ArgInt(heads), ArgInt(dim))
	b.columnSums(dw, rows, dim, "rmsnorm_heads_backward_dw_partial", ArgPtr(dev(dout)), ArgPtr(dev(x)), ArgPtr(dev(rstd)),
		ArgInt(stride), ArgInt(off), ArgInt(rows), ArgInt(heads), ArgInt(dim))
}

// RoPE implements kernels.Dense.
func (b *Backend) RoPE(x kernels.Buf, stride int, cos, sin kernels.Buf, rows, heads, headDim int, inverse bool) {
	n := rows * heads * (headDim / 2)
	if n == 0 {
		return
	}
	sign := float32(1)
	if inverse {
		sign = -1
	}
	b.launch("rope", elemGrid(n), D1(elemThreads), 0, ArgPtr(dev(x)), ArgInt(stride), ArgPtr(dev(cos)), ArgPtr(dev(sin)),
		ArgInt(rows), ArgInt(heads), ArgInt(headDim), ArgF32(sign))
}

// SwiGLU implements kernels.Dense.
func (b *Backend) SwiGLU(out, gateUp kernels.Buf, rows, ffn int) {
	if rows*ffn == 0 {
		return
	}
	b.launch("swiglu", elemGrid(rows*ffn), D1(elemThreads), 0, ArgPtr(dev(out)), ArgPtr(dev(gateUp)), ArgInt(rows), ArgInt(ffn))
}

// SwiGLUBackward implements kernels.Dense.
func (b *Backend) SwiGLUBackward(dGateUp, dout, gateUp kernels.Buf, rows, ffn int) {
	if rows*ffn == 0 {
		return
	}
	b.launch("swiglu_backward", elemGrid(rows*ffn), D1(elemThreads), 0, ArgPtr(dev(dGateUp)), ArgPtr(dev(dout)), ArgPtr(dev(gateUp)), ArgInt(rows), ArgInt(ffn))
}

func checkIDs(ids []int32, vocab int) {
	for _, id := range ids {
		if id < 0 || int(id) >= vocab {
			panic(fmt.Sprintf("cuda: token id %d outside the vocabulary of %d", id, vocab))
		}
	}
}

// Embed implements kernels.Dense.
func (b *Backend) Embed(out, table kernels.Buf, ids []int32, dim int) {
	if len(ids)*dim == 0 {
		return
	}
	checkIDs(ids, table.Len()/dim)
	p := b.uploadInts(ids)
	defer b.release(p)
	b.launch("embed", elemGrid(len(ids)*dim), D1(elemThreads), 0, ArgPtr(dev(out)), ArgPtr(dev(table)), ArgPtr(p), ArgInt(len(ids)), ArgInt(dim))
}

// EmbedBackward implements kernels.Dense. The rows of each distinct id are
// grouped on the host (ids are host data) so that one block owns each
// table row.
func (b *Backend) EmbedBackward(dtable, dout kernels.Buf, ids []int32, dim int) {
	if len(ids)*dim == 0 {
		return
	}
	checkIDs(ids, dtable.Len()/dim)
	order := make([]int32, len(ids))
	for i := range order {
		order[i] = int32(i)
	}
	sort.SliceStable(order, func(x, y int) bool { return ids[order[x]] < ids[order[y]] })
	var uids, starts []int32
	for k, r := range order {
		if k == 0 || ids[r] != ids[order[k-1]] {
			uids = append(uids, ids[r])
			starts = append(starts, int32(k))
		}
	}
	starts = append(starts, int32(len(order)))
	pr, pu, ps := b.uploadInts(order), b.uploadInts(uids), b.uploadInts(starts)
	defer b.release(pr, pu, ps)
	b.launch("embed_backward", D1(len(uids)), D1(rowThreads), 0, ArgPtr(dev(dtable)), ArgPtr(dev(dout)), ArgPtr(pr), ArgPtr(pu), ArgPtr(ps), ArgInt(dim))
}

// CacheWrite implements kernels.Dense.
func (b *Backend) CacheWrite(pool kernels.Buf, width int, src kernels.Buf, srcStride, srcOff int, slots []int32) {
	if len(slots)*width == 0 {
		return
	}
	p := b.checkedInts(tableCacheWrite, slots, 0, pool.Len()/width) // the same for keys and values and every layer
	b.launch("cache_write", elemGrid(len(slots)*width), D1(elemThreads), 0, ArgPtr(dev(pool)), ArgInt(width), ArgPtr(dev(src)),
		ArgInt(srcStride), ArgInt(srcOff), ArgPtr(p), ArgInt(len(slots)))
}
