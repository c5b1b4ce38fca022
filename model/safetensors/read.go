// Package safetensors reads and writes the Hugging Face safetensors format:
// an 8-byte little-endian header length N, N bytes of JSON describing each
// tensor's dtype, shape and byte range, then the raw little-endian tensor
// data. Tensors are handed to the rest of rltrain as float32 whatever their
// stored dtype.
//
// Files are treated as untrusted: every header field is validated before
// anything is allocated from it, and every error names the file and, where
// there is one, the tensor.
package safetensors

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"unsafe"
)

// Tensor is a named float32 tensor, row-major.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
	// File is the file the tensor was read from; readers set it so that
	// loaders can say where a bad tensor came from. Writers ignore it.
	File string
}

// NumElements is the product of shape (1 for a scalar).
func NumElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// chunkBytes is the size of the staging buffer used when converting non-F32
// data; a multiple of every element size.
const chunkBytes = 1 << 20

// hostLittleEndian reports whether float32 values can be copied to and from
// the file's byte order without swapping.
var hostLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// ReadHeaderFile reads and validates only the header of path, without
// loading tensor data. Unlike ReadFile it accepts every dtype the format
// defines.
func ReadHeaderFile(path string) (*Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	h, err := ReadHeader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	return h, nil
}

// ReadFile loads every tensor of a safetensors file, converting F32, F16,
// BF16 and F64 data to float32 (F64 rounds to nearest even; the others are
// exact). Files holding any other dtype are rejected. It also returns the
// header's __metadata__ map (nil when absent).
//
// Memory use is the float32 result plus a 1 MiB staging buffer: F32 data
// is read straight into the result.
func ReadFile(path string) (map[string]*Tensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	tensors, meta, err := decode(f, st.Size(), path)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	return tensors, meta, nil
}

// Decode loads tensors from an in-memory safetensors file; name is used in
// error messages and as Tensor.File.
func Decode(b []byte, name string) (map[string]*Tensor, map[string]string, error) {
	tensors, meta, err := decode(byteReaderAt(b), int64(len(b)), name)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors %s: %w", name, err)
	}
	return tensors, meta, nil
}

func decode(r io.ReaderAt, size int64, file string) (map[string]*Tensor, map[string]string, error) {
	h, err := ReadHeader(r, size)
	if err != nil {
		return nil, nil, err
	}
	// Reject unsupported dtypes before allocating anything.
	for _, t := range h.Tensors {
		if !readable[t.DType] {
			return nil, nil, fmt.Errorf("tensor %q has dtype %s; supported dtypes are %s",
				t.Name, t.DType, supportedList(readable))
		}
	}
	out := make(map[string]*Tensor, len(h.Tensors))
	var stage []byte
	for _, t := range h.Tensors {
		n := NumElements(t.Shape)
		data := make([]float32, n)
		off := h.DataStart + t.Begin
		if t.DType == F32 && hostLittleEndian {
			if n > 0 {
				dst := unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*n)
				if _, err := r.ReadAt(dst, off); err != nil {
					return nil, nil, fmt.Errorf("tensor %q: read data: %w", t.Name, err)
				}
			}
		} else {
			if stage == nil {
				stage = make([]byte, chunkBytes)
			}
			if err := readConverted(r, off, t.DType, data, stage); err != nil {
				return nil, nil, fmt.Errorf("tensor %q: read data: %w", t.Name, err)
			}
		}
		out[t.Name] = &Tensor{Name: t.Name, Shape: t.Shape, Data: data, File: file}
	}
	return out, h.Metadata, nil
}

// readConverted fills dst with len(dst) elements of dtype d read from r at
// off, staging the raw bytes through buf.
func readConverted(r io.ReaderAt, off int64, d DType, dst []float32, buf []byte) error {
	width := int(dtypeBits[d] / 8)
	per := len(buf) / width
	for len(dst) > 0 {
		k := min(per, len(dst))
		raw := buf[:k*width]
		if _, err := r.ReadAt(raw, off); err != nil {
			return err
		}
		off += int64(len(raw))
		le := binary.LittleEndian
		switch d {
		case F32:
			for i := range k {
				dst[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
			}
		case F16:
			for i := range k {
				dst[i] = f16ToF32(le.Uint16(raw[2*i:]))
			}
		case BF16:
			for i := range k {
				dst[i] = bf16ToF32(le.Uint16(raw[2*i:]))
			}
		case F64:
			for i := range k {
				dst[i] = float32(math.Float64frombits(le.Uint64(raw[8*i:])))
			}
		default:
			return fmt.Errorf("no float32 conversion for dtype %s", d)
		}
		dst = dst[k:]
	}
	return nil
}

// byteReaderAt is an io.ReaderAt over a byte slice that, unlike
// bytes.Reader, needs no allocation.
type byteReaderAt []byte

func (b byteReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, fmt.Errorf("read at offset %d of %d bytes", off, len(b))
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.ErrUnexpectedEOF
	}
	return n, nil
}
