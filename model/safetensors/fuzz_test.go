package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// encodeMem is WriteFile without the file: it renders tensors as an
// in-memory safetensors file.
func encodeMem(t *testing.T, tensors []*Tensor, meta map[string]string, dtype DType) []byte {
	t.Helper()
	sorted, err := sortedForWrite(tensors)
	if err != nil {
		t.Fatal(err)
	}
	header, err := encodeHeader(sorted, meta, dtype)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(header))))
	b.Write(header)
	if err := writeData(&b, sorted, dtype); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzParseHeader feeds arbitrary bytes to the header parser and the
// decoder. Neither may panic; whatever is accepted must satisfy the format's
// invariants and survive an F32 round trip bit for bit.
func FuzzParseHeader(f *testing.F) {
	f.Add(rawFile(`{}`, nil))
	f.Add(rawFile(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, le32f(1, 2)))
	f.Add(rawFile(`{"h":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}  `,
		append(le64f(math.Pi), le16(0x7c00, 0x0001)...)))
	f.Add(rawFile(`{"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}`,
		le16(0x3f80, 0xffc1)))
	f.Add(rawFile(`{"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(rawFile(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{}}`, make([]byte, 4)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, herr := ReadHeader(byteReaderAt(data), int64(len(data)))
		tensors, _, derr := Decode(data, "fuzz")
		if herr != nil {
			if derr == nil {
				t.Fatalf("header rejected (%v) but Decode accepted", herr)
			}
			return
		}
		if h.DataStart+h.DataSize != int64(len(data)) {
			t.Fatalf("data section [%d, +%d) does not end the %d-byte file", h.DataStart, h.DataSize, len(data))
		}
		var at int64
		seen := map[string]bool{}
		for _, ti := range h.Tensors {
			if ti.Begin != at || seen[ti.Name] {
				t.Fatalf("tensor %q at [%d %d] after %d (seen %v)", ti.Name, ti.Begin, ti.End, at, seen[ti.Name])
			}
			seen[ti.Name] = true
			want, err := ti.DType.byteSize(int64(NumElements(ti.Shape)))
			if err != nil || ti.End-ti.Begin != want {
				t.Fatalf("tensor %q spans %d bytes, shape needs %d (%v)", ti.Name, ti.End-ti.Begin, want, err)
			}
			at = ti.End
		}
		if at != h.DataSize {
			t.Fatalf("tensors cover %d of %d data bytes", at, h.DataSize)
		}
		allReadable := true
		for _, ti := range h.Tensors {
			allReadable = allReadable && readable[ti.DType]
		}
		if allReadable != (derr == nil) {
			t.Fatalf("all dtypes readable: %v, but Decode error: %v", allReadable, derr)
		}
		if derr != nil {
			return
		}
		list := make([]*Tensor, 0, len(tensors))
		for _, ti := range h.Tensors {
			list = append(list, tensors[ti.Name])
		}
		again, _, err := Decode(encodeMem(t, list, h.Metadata, F32), "again")
		if err != nil {
			t.Fatalf("re-encoded file rejected: %v", err)
		}
		for name, tt := range tensors {
			for i, v := range tt.Data {
				if math.Float32bits(again[name].Data[i]) != math.Float32bits(v) {
					t.Fatalf("%q[%d]: %#x after round trip, want %#x", name, i, math.Float32bits(again[name].Data[i]), math.Float32bits(v))
				}
			}
		}
	})
}
