package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// WriteFile writes tensors to path in the given dtype (F32, or BF16 rounded
// to nearest even). The file follows the reference writer's layout, so
// Python's safetensors and transformers load it: tensors sorted by name
// (the reference sorts by dtype, then name; ours share one dtype),
// "__metadata__" first, compact JSON padded with spaces to a multiple of 8
// bytes so the data section is 8-byte aligned.
//
// transformers refuses files whose metadata lacks a "format" entry, so
// "format": "pt" is added unless metadata sets it.
//
// The file is written to path+".tmp", synced and renamed, so a crash never
// leaves a truncated file under path.
func WriteFile(path string, tensors []*Tensor, metadata map[string]string, dtype DType) error {
	if err := writeFile(path, tensors, metadata, dtype); err != nil {
		return fmt.Errorf("write safetensors %s: %w", path, err)
	}
	return nil
}

func writeFile(path string, tensors []*Tensor, metadata map[string]string, dtype DType) error {
	if !writable[dtype] {
		return fmt.Errorf("cannot write dtype %q; supported dtypes are %s", string(dtype), supportedList(writable))
	}
	sorted, err := sortedForWrite(tensors)
	if err != nil {
		return err
	}
	header, err := encodeHeader(sorted, withFormat(metadata), dtype)
	if err != nil {
		return err
	}
	return writeAtomic(path, func(w io.Writer) error {
		var prefix [8]byte
		binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
		if _, err := w.Write(prefix[:]); err != nil {
			return err
		}
		if _, err := w.Write(header); err != nil {
			return err
		}
		return writeData(w, sorted, dtype)
	})
}

// sortedForWrite validates tensors and returns them sorted by name.
func sortedForWrite(tensors []*Tensor) ([]*Tensor, error) {
	sorted := make([]*Tensor, 0, len(tensors))
	seen := make(map[string]bool, len(tensors))
	for i, t := range tensors {
		if t == nil {
			return nil, fmt.Errorf("tensor #%d is nil", i)
		}
		if !utf8.ValidString(t.Name) {
			return nil, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		}
		if t.Name == metadataKey {
			return nil, fmt.Errorf("tensor name %q is reserved", t.Name)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("tensor %q given twice", t.Name)
		}
		seen[t.Name] = true
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tensor %q: shape %v has a negative dimension", t.Name, t.Shape)
			}
			n *= d
		}
		if n != len(t.Data) {
			return nil, fmt.Errorf("tensor %q: shape %v holds %d values but Data has %d", t.Name, t.Shape, n, len(t.Data))
		}
		sorted = append(sorted, t)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	return sorted, nil
}

func withFormat(metadata map[string]string) map[string]string {
	out := make(map[string]string, len(metadata)+1)
	for k, v := range metadata {
		out[k] = v
	}
	if _, ok := out["format"]; !ok {
		out["format"] = "pt"
	}
	return out
}

// encodeHeader renders the JSON header the way the reference writer does:
// no whitespace, "__metadata__" first (keys sorted here for reproducible
// files), tensors in data order, fields dtype/shape/data_offsets, padded
// with spaces to a multiple of 8.
func encodeHeader(tensors []*Tensor, metadata map[string]string, dtype DType) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		keys := slices.Sorted(maps.Keys(metadata))
		writeJSONString(&b, metadataKey)
		b.WriteString(":{")
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, metadata[k])
		}
		b.WriteByte('}')
	}
	var off int64
	for i, t := range tensors {
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		size, err := dtype.byteSize(int64(len(t.Data)))
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		writeJSONString(&b, t.Name)
		b.WriteString(`:{"dtype":"`)
		b.WriteString(string(dtype))
		b.WriteString(`","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		b.WriteString(`],"data_offsets":[`)
		b.WriteString(strconv.FormatInt(off, 10))
		b.WriteByte(',')
		off += size
		b.WriteString(strconv.FormatInt(off, 10))
		b.WriteString("]}")
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderBytes {
		return nil, fmt.Errorf("header of %d bytes exceeds the %d-byte limit readers accept", b.Len(), MaxHeaderBytes)
	}
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // encoding a string into a bytes.Buffer cannot fail
	b.Truncate(b.Len() - 1) // Encode appends a newline
}

// writeData streams tensor values in the target dtype.
func writeData(w io.Writer, tensors []*Tensor, dtype DType) error {
	var stage []byte
	for _, t := range tensors {
		if len(t.Data) == 0 {
			continue
		}
		if dtype == F32 && hostLittleEndian {
			raw := unsafe.Slice((*byte)(unsafe.Pointer(&t.Data[0])), 4*len(t.Data))
			if _, err := w.Write(raw); err != nil {
				return fmt.Errorf("tensor %q: %w", t.Name, err)
			}
			continue
		}
		if stage == nil {
			stage = make([]byte, chunkBytes)
		}
		width := int(dtypeBits[dtype] / 8)
		for data := t.Data; len(data) > 0; {
			k := min(len(stage)/width, len(data))
			raw := stage[:k*width]
			for i, v := range data[:k] {
				switch dtype {
				case F32:
					binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
				case BF16:
					binary.LittleEndian.PutUint16(raw[2*i:], f32ToBF16(v))
				}
			}
			if _, err := w.Write(raw); err != nil {
				return fmt.Errorf("tensor %q: %w", t.Name, err)
			}
			data = data[k:]
		}
	}
	return nil
}

// writeAtomic writes path+".tmp" through fill, syncs it, renames it over
// path and syncs the directory, so readers see the old file or the complete
// new one, never a torn write.
func writeAtomic(path string, fill func(io.Writer) error) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, chunkBytes)
	if err = fill(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some filesystems refuse to fsync a directory; that only weakens the
	// durability of the rename, which has already happened, so the error
	// is deliberately dropped.
	_ = d.Sync()
	return nil
}
