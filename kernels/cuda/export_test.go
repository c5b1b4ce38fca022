package cuda

import (
	"hash/maphash"
	"unsafe"
)

// Internals for the external tests.

// KernelWrites is the table of writable kernel arguments read from the
// .cu sources.
func KernelWrites() map[string][]int { return kernelWrites() }

var contentSeed = maphash.MakeSeed()

// Contents returns a hash of every live allocation's bytes, by base.
func (e *Emu) Contents() map[DevPtr]uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[DevPtr]uint64, len(e.allocs))
	for p, n := range e.allocs {
		out[p] = maphash.Bytes(contentSeed, unsafe.Slice((*byte)(hostPtr(p)), n))
	}
	return out
}

// AllocationOf returns the base of the allocation holding p, or 0.
func (e *Emu) AllocationOf(p DevPtr) DevPtr {
	e.mu.Lock()
	defer e.mu.Unlock()
	for base, n := range e.allocs {
		if p >= base && p < base+DevPtr(n) {
			return base
		}
	}
	return 0
}
