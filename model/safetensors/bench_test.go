package safetensors

import (
	"path/filepath"
	"strconv"
	"testing"
)

// benchTensors is 16 tensors of 1M values (64 MB as F32).
func benchTensors() []*Tensor {
	var out []*Tensor
	for i := range 16 {
		data := make([]float32, 1<<20)
		for j := range data {
			data[j] = float32(j%977) * 0.01
		}
		out = append(out, &Tensor{Name: "t" + strconv.Itoa(i), Shape: []int{1024, 1024}, Data: data})
	}
	return out
}

func BenchmarkWriteFile(b *testing.B) {
	ts := benchTensors()
	for _, dt := range []DType{F32, BF16} {
		b.Run(string(dt), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "w.safetensors")
			b.SetBytes(int64(16 << 22))
			for b.Loop() {
				if err := WriteFile(path, ts, nil, dt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadFile(b *testing.B) {
	ts := benchTensors()
	for _, dt := range []DType{F32, BF16} {
		b.Run(string(dt), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "r.safetensors")
			if err := WriteFile(path, ts, nil, dt); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(16 << 22)) // float32 bytes produced
			for b.Loop() {
				if _, _, err := ReadFile(path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
