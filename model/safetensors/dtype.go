package safetensors

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// DType is a safetensors element type name as it appears in the header
// ("F32", "BF16", ...).
type DType string

// The element types this package converts to and from float32.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	F64  DType = "F64"
)

// dtypeBits lists every element type the format defines, with its width in
// bits. Types we cannot convert still need a width so that a header naming
// them can be validated (and the file inspected with ReadHeaderFile).
var dtypeBits = map[DType]int64{
	"BOOL": 8, "U8": 8, "I8": 8,
	"F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
	"F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
	"I16": 16, "U16": 16, F16: 16, BF16: 16,
	"I32": 32, "U32": 32, F32: 32,
	F64: 64, "I64": 64, "U64": 64, "C64": 64,
}

// readable are the element types ReadFile converts to float32.
var readable = map[DType]bool{F32: true, F16: true, BF16: true, F64: true}

// writable are the element types WriteFile can produce.
var writable = map[DType]bool{F32: true, BF16: true}

func supportedList(set map[DType]bool) string {
	names := make([]string, 0, len(set))
	for d := range set {
		names = append(names, string(d))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// byteSize returns how many bytes n elements of d occupy, or an error when
// the count overflows or does not fill whole bytes (sub-byte types).
func (d DType) byteSize(n int64) (int64, error) {
	bits, ok := dtypeBits[d]
	if !ok {
		return 0, fmt.Errorf("unknown dtype %q", string(d))
	}
	if n > math.MaxInt64/bits {
		return 0, fmt.Errorf("%d elements of %s overflow a 64-bit size", n, d)
	}
	if n*bits%8 != 0 {
		return 0, fmt.Errorf("%d elements of %s do not fill whole bytes", n, d)
	}
	return n * bits / 8, nil
}

// f16ToF32 converts IEEE 754 binary16 bits to float32 exactly. Every half
// value, subnormals included, is representable in float32; NaN payloads are
// kept (shifted into the top of the float32 mantissa).
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0 && mant == 0: // signed zero
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: mant * 2^-24; normalise into float32's range
		e := uint32(127 - 14)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}

// bf16ToF32 widens bfloat16 bits to float32; bfloat16 is the top half of a
// float32, so this is exact.
func bf16ToF32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// f32ToBF16 rounds a float32 to bfloat16, to nearest with ties to even.
// NaNs stay NaN (the quiet bit is set so truncating the payload can never
// turn one into an infinity); values past bfloat16's range round to ±inf as
// IEEE rounding prescribes.
func f32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
