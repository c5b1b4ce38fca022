package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"unicode/utf8"
)

// MaxHeaderBytes is the largest JSON header accepted, the same limit as the
// reference implementation. It bounds what a lying length prefix can make us
// allocate.
const MaxHeaderBytes = 100_000_000

// metadataKey is the reserved header key holding free-form string metadata.
const metadataKey = "__metadata__"

// TensorInfo describes one tensor as the header declares it.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	// Begin and End are byte offsets relative to the start of the data
	// section, End exclusive.
	Begin, End int64
}

// Header is a parsed and validated safetensors header.
type Header struct {
	// Tensors in data order (ascending offsets).
	Tensors  []TensorInfo
	Metadata map[string]string
	// DataStart is the absolute file offset of the data section.
	DataStart int64
	// DataSize is the length of the data section in bytes.
	DataSize int64
}

// rawInfo is a tensor entry as it is spelled in the JSON header. Pointers let
// us tell a missing field from an empty one.
type rawInfo struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// ReadHeader reads and validates the header of a safetensors file of the
// given total size. It checks everything that can be checked without
// looking at tensor values: the length prefix, the JSON, every tensor's
// dtype, shape and offsets, and that the tensors tile the data section
// exactly (no gaps, no overlaps, no trailing bytes), as the reference
// implementation requires. Errors name the offending tensor but not the
// file; callers add that.
func ReadHeader(r io.ReaderAt, size int64) (*Header, error) {
	if size < 8 {
		return nil, fmt.Errorf("file is %d bytes, shorter than the 8-byte header length", size)
	}
	var prefix [8]byte
	if _, err := r.ReadAt(prefix[:], 0); err != nil {
		return nil, fmt.Errorf("read header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	if n > MaxHeaderBytes {
		return nil, fmt.Errorf("header length %d exceeds the %d-byte limit", n, MaxHeaderBytes)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("header length %d runs past the end of the %d-byte file", n, size)
	}
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, 8); err != nil {
		return nil, fmt.Errorf("read %d-byte header: %w", n, err)
	}
	h, err := ParseHeader(buf, size-8-int64(n))
	if err != nil {
		return nil, err
	}
	h.DataStart = 8 + int64(n)
	return h, nil
}

// ParseHeader parses the JSON header text (the n bytes after the length
// prefix, trailing space padding allowed) and validates it against a data
// section of dataSize bytes. It leaves Header.DataStart zero: only the
// caller knows where the data section starts (ReadHeader sets it).
func ParseHeader(text []byte, dataSize int64) (*Header, error) {
	if !utf8.Valid(text) {
		return nil, fmt.Errorf("header is not valid UTF-8")
	}
	if len(text) == 0 || text[0] != '{' {
		return nil, fmt.Errorf("header does not start with '{'")
	}
	dec := json.NewDecoder(bytes.NewReader(text))
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("header JSON: %w", err)
	}
	h := &Header{DataSize: dataSize}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("header JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok { // cannot happen for a JSON object, but never trust input
			return nil, fmt.Errorf("header JSON: object key %v is not a string", tok)
		}
		if seen[name] && name == metadataKey {
			return nil, fmt.Errorf("header has %s twice", metadataKey)
		}
		if seen[name] {
			return nil, fmt.Errorf("tensor %q: name appears twice in the header", name)
		}
		seen[name] = true
		if name == metadataKey {
			if err := dec.Decode(&h.Metadata); err != nil {
				return nil, fmt.Errorf("header %s must map strings to strings: %w", metadataKey, describeJSONError(err))
			}
			continue
		}
		var raw rawInfo
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("tensor %q: invalid header JSON: %w", name, describeJSONError(err))
		}
		info, err := raw.check(name, dataSize)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		h.Tensors = append(h.Tensors, info)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("header JSON: %w", err)
	}
	for _, c := range text[dec.InputOffset():] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return nil, fmt.Errorf("header JSON: unexpected %q after the closing brace", c)
		}
	}
	if err := checkTiling(h.Tensors, dataSize); err != nil {
		return nil, err
	}
	return h, nil
}

// describeJSONError replaces encoding/json's type errors, which speak of Go
// types, with the JSON field and value kind at fault.
func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" && te.Type.Kind() == reflect.Struct {
			return fmt.Errorf("entry is a JSON %s, want an object", te.Value)
		}
		if te.Field == "" {
			return fmt.Errorf("unexpected JSON %s", te.Value)
		}
		return fmt.Errorf("field %s has a bad value (JSON %s)", te.Field, te.Value)
	}
	return err
}

// check validates one entry on its own: known dtype, non-negative shape,
// offsets in range and spanning exactly the bytes the shape needs.
func (raw rawInfo) check(name string, dataSize int64) (TensorInfo, error) {
	if raw.DType == nil || raw.Shape == nil || raw.DataOffsets == nil {
		return TensorInfo{}, fmt.Errorf("header entry needs dtype, shape and data_offsets")
	}
	info := TensorInfo{Name: name, DType: DType(*raw.DType)}
	if _, ok := dtypeBits[info.DType]; !ok {
		return TensorInfo{}, fmt.Errorf("unknown dtype %q", *raw.DType)
	}
	elems := int64(1)
	info.Shape = make([]int, len(*raw.Shape))
	for i, d := range *raw.Shape {
		if d < 0 {
			return TensorInfo{}, fmt.Errorf("shape %v has a negative dimension", *raw.Shape)
		}
		if d > math.MaxInt || (d > 0 && elems > math.MaxInt64/d) {
			return TensorInfo{}, fmt.Errorf("shape %v overflows a 64-bit element count", *raw.Shape)
		}
		elems *= d
		info.Shape[i] = int(d)
	}
	want, err := info.DType.byteSize(elems)
	if err != nil {
		return TensorInfo{}, fmt.Errorf("shape %v: %w", *raw.Shape, err)
	}
	offs := *raw.DataOffsets
	if len(offs) != 2 {
		return TensorInfo{}, fmt.Errorf("data_offsets %v must have two entries", offs)
	}
	info.Begin, info.End = offs[0], offs[1]
	switch {
	case info.Begin < 0 || info.End < 0:
		return TensorInfo{}, fmt.Errorf("data_offsets %v are negative", offs)
	case info.End < info.Begin:
		return TensorInfo{}, fmt.Errorf("data_offsets %v end before they begin", offs)
	case info.End > dataSize:
		return TensorInfo{}, fmt.Errorf("data_offsets %v run past the %d-byte data section", offs, dataSize)
	case info.End-info.Begin != want:
		return TensorInfo{}, fmt.Errorf("shape %v of %s needs %d bytes but data_offsets %v span %d",
			info.Shape, info.DType, want, offs, info.End-info.Begin)
	}
	return info, nil
}

// checkTiling sorts tensors by offset and requires them to cover the data
// section exactly, back to back, like the reference reader does.
func checkTiling(ts []TensorInfo, dataSize int64) error {
	sort.SliceStable(ts, func(i, j int) bool {
		if ts[i].Begin != ts[j].Begin {
			return ts[i].Begin < ts[j].Begin
		}
		return ts[i].End < ts[j].End
	})
	var at int64
	for i, t := range ts {
		switch {
		case t.Begin > at:
			return fmt.Errorf("tensor %q: %d unused bytes before its data_offsets [%d %d]; tensors must cover the data section without gaps",
				t.Name, t.Begin-at, t.Begin, t.End)
		case t.Begin < at:
			prev := ts[i-1]
			return fmt.Errorf("tensor %q: data_offsets [%d %d] overlap tensor %q at [%d %d]",
				t.Name, t.Begin, t.End, prev.Name, prev.Begin, prev.End)
		}
		at = t.End
	}
	if at != dataSize {
		last := "the header"
		if len(ts) > 0 {
			last = fmt.Sprintf("the last tensor %q", ts[len(ts)-1].Name)
		}
		return fmt.Errorf("%d trailing bytes after %s; tensors must cover the data section exactly", dataSize-at, last)
	}
	return nil
}
