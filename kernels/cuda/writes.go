package cuda

import (
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Write tracking. Every allocation the backend makes carries the sequence
// number of the last operation that wrote into it. The bf16 weight cache
// (precision.go) compares it with the number recorded when a bf16 copy was
// made, so a copy is reused only while nothing has written its source.
//
// The backend reaches the device only through trackingDriver, which stamps
// the destination of every call that writes device memory: copies, memsets,
// the GEMMs' C, and each pointer argument of a launch that the kernel's
// signature declares writable (a pointer parameter without const). That
// table is read from the .cu sources themselves, so a kernel cannot write
// an argument without declaring it (C++ rejects writes through a const
// pointer); a kernel missing from the table has every pointer argument
// stamped.

// allocation is one tracked device allocation.
type allocation struct {
	base  DevPtr
	bytes int
	id    uint64 // unique for the backend's lifetime, never reused
	// written is the sequence number of the last write; param is whether
	// that write was a parameter write (an upload, a copy of parameters,
	// an optimizer step) rather than an activation write (a kernel, a
	// GEMM, a memset).
	written uint64
	param   bool
}

// tracker maps device addresses to allocations.
type tracker struct {
	allocs []*allocation // sorted by base
	seq    uint64
	nextID uint64
}

func (t *tracker) add(p DevPtr, bytes int) {
	t.nextID++
	t.seq++
	a := &allocation{base: p, bytes: max(bytes, 1), id: t.nextID, written: t.seq}
	i := sort.Search(len(t.allocs), func(i int) bool { return t.allocs[i].base >= p })
	t.allocs = append(t.allocs, nil)
	copy(t.allocs[i+1:], t.allocs[i:])
	t.allocs[i] = a
}

// remove forgets the allocation at p and returns it (nil if unknown).
func (t *tracker) remove(p DevPtr) *allocation {
	i := sort.Search(len(t.allocs), func(i int) bool { return t.allocs[i].base >= p })
	if i == len(t.allocs) || t.allocs[i].base != p {
		return nil
	}
	a := t.allocs[i]
	t.allocs = append(t.allocs[:i], t.allocs[i+1:]...)
	return a
}

// find returns the allocation holding address p, or nil.
func (t *tracker) find(p DevPtr) *allocation {
	i := sort.Search(len(t.allocs), func(i int) bool { return t.allocs[i].base > p }) - 1
	if i < 0 {
		return nil
	}
	a := t.allocs[i]
	if p >= a.base+DevPtr(a.bytes) {
		return nil
	}
	return a
}

// wrote stamps the allocation holding p as written now.
func (t *tracker) wrote(p DevPtr, param bool) {
	if p == 0 {
		return
	}
	if a := t.find(p); a != nil {
		t.seq++
		a.written, a.param = t.seq, param
	}
}

// paramWriters are the kernels whose writes update parameters (the
// optimizer steps): their destinations keep bf16 weight copies cacheable.
var paramWriters = map[string]bool{"adamw": true, "adamw_bf16": true}

var (
	kernelWritesOnce sync.Once
	kernelWritesTab  map[string][]int
)

// kernelSig matches a kernel's parameter list in the .cu sources.
var kernelSig = regexp.MustCompile(`extern "C" __global__ void (?:__launch_bounds__\([^)]*\) )?(\w+)\(([^)]*)\)`)

// kernelWrites returns, for each kernel of the .cu sources, the positions
// of its writable pointer parameters.
func kernelWrites() map[string][]int {
	kernelWritesOnce.Do(func() {
		kernelWritesTab = map[string][]int{}
		files, _ := fs.Glob(Sources, "*.cu")
		for _, f := range files {
			src, err := fs.ReadFile(Sources, f)
			if err != nil {
				panic(fmt.Sprintf("cuda: embedded %s: %v", f, err))
			}
			for _, m := range kernelSig.FindAllStringSubmatch(string(src), -1) {
				kernelWritesTab[m[1]] = writablePointers(m[2])
			}
		}
	})
	return kernelWritesTab
}

// writablePointers lists the positions of the non-const pointer parameters
// of a C parameter list.
func writablePointers(params string) []int {
	var out []int
	for i, p := range strings.Split(params, ",") {
		p = strings.TrimSpace(p)
		if strings.Contains(p, "*") && !strings.HasPrefix(p, "const ") {
			out = append(out, i)
		}
	}
	return out
}

// trackingDriver is the backend's view of its Driver: it stamps every
// write into a tracked allocation.
type trackingDriver struct {
	Driver
	tr *tracker
}

func (d *trackingDriver) CopyHtoD(dst DevPtr, src []byte) error {
	err := d.Driver.CopyHtoD(dst, src)
	d.tr.wrote(dst, true) // uploaded weights are parameters
	return err
}

func (d *trackingDriver) CopyDtoD(dst, src DevPtr, bytes int) error {
	err := d.Driver.CopyDtoD(dst, src, bytes)
	// A copy of parameters (a reference model's weights) is parameters.
	s := d.tr.find(src)
	d.tr.wrote(dst, s != nil && s.param)
	return err
}

func (d *trackingDriver) Memset(dst DevPtr, bytes int) error {
	err := d.Driver.Memset(dst, bytes)
	d.tr.wrote(dst, false)
	return err
}

func (d *trackingDriver) Launch(name string, grid, block Dim3, shared int, args []uint64) error {
	err := d.Driver.Launch(name, grid, block, shared, args)
	param := paramWriters[name]
	if idx, ok := kernelWrites()[name]; ok {
		for _, i := range idx {
			if i < len(args) {
				d.tr.wrote(DevPtr(args[i]), param)
			}
		}
		return err
	}
	// Unknown kernel: any argument may be a pointer it writes.
	for _, a := range args {
		d.tr.wrote(DevPtr(a), param)
	}
	return err
}

func (d *trackingDriver) Sgemm(transA, transB bool, m, n, k int, alpha float32, a DevPtr, lda int, b DevPtr, ldb int, beta float32, c DevPtr, ldc int) error {
	err := d.Driver.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	d.tr.wrote(c, false)
	return err
}

func (d *trackingDriver) GemmBF16(transA, transB bool, m, n, k int, alpha float32, a DevPtr, lda int, b DevPtr, ldb int, beta float32, c DevPtr, ldc int) error {
	err := d.Driver.GemmBF16(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	d.tr.wrote(c, false)
	return err
}
