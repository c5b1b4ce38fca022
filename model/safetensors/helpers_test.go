package safetensors

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// rawFile assembles a safetensors file from header text and data bytes,
// without any of the writer's checks, so tests can build broken files.
func rawFile(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

// writeTemp writes b to dir/name and returns the path.
func writeTemp(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func le16(vs ...uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	return b
}

func le32f(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func le64f(vs ...float64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

// matchTensors checks that got holds exactly the tensors of in, by name,
// and returns them in in's order.
func matchTensors(t *testing.T, got map[string]*Tensor, in []*Tensor) []*Tensor {
	t.Helper()
	if len(got) != len(in) {
		t.Fatalf("read %d tensors, wrote %d", len(got), len(in))
	}
	out := make([]*Tensor, len(in))
	for i, w := range in {
		if out[i] = got[w.Name]; out[i] == nil {
			t.Fatalf("tensor %q missing", w.Name)
		}
	}
	return out
}

// sameBits compares float32 slices bit for bit, except that any NaN
// matches any NaN.
func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range got {
		g, w := got[i], want[i]
		if math.IsNaN(float64(g)) && math.IsNaN(float64(w)) {
			continue
		}
		if math.Float32bits(g) != math.Float32bits(w) {
			t.Errorf("%s[%d] = %v (%#08x), want %v (%#08x)", what, i, g, math.Float32bits(g), w, math.Float32bits(w))
			if bad++; bad == 10 {
				t.Fatalf("%s: giving up after %d mismatches", what, bad)
			}
		}
	}
}
