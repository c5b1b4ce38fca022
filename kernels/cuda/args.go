package cuda

import "math"

// Kernel arguments travel in 8-byte slots: the driver API reads each
// parameter's size from its slot, which on little-endian machines is the
// low bytes.

// ArgPtr is a pointer argument; a zero DevPtr is a null pointer.
func ArgPtr(p DevPtr) uint64 { return uint64(p) }

// ArgInt is an int (or long long) argument.
func ArgInt(v int) uint64 { return uint64(int64(v)) }

// ArgF32 is a float argument.
func ArgF32(v float32) uint64 { return uint64(math.Float32bits(v)) }

// ArgF64 is a double argument.
func ArgF64(v float64) uint64 { return math.Float64bits(v) }
