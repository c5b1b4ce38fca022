package safetensors

import (
	"encoding/binary"
	"strings"
	"testing"
)

// TestBadFiles feeds malformed files to ReadFile; each must fail with an
// error naming the file and, where one is to blame, the tensor.
func TestBadFiles(t *testing.T) {
	f32x2 := le32f(1, 2)
	withLen := func(n uint64, rest string) []byte {
		return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
	}
	cases := []struct {
		name   string
		file   []byte
		tensor string // "" when no tensor is to blame
		want   string
	}{
		{"short", []byte{1, 2, 3, 4, 5}, "", "shorter than"},
		{"empty", nil, "", "shorter than"},
		{"header past end", withLen(1000, `{}`), "", "past the end"},
		{"header over limit", withLen(MaxHeaderBytes+1, `{}`), "", "limit"},
		{"header length huge", withLen(1<<63+5, `{}`), "", "limit"},
		{"invalid json", rawFile(`{"x":{"dtype":"F32",`, nil), "", "JSON"},
		{"not an object", rawFile(`[1,2]`, nil), "", "start with '{'"},
		{"leading space", rawFile(` {}`, nil), "", "start with '{'"},
		{"invalid utf8", rawFile("{\"\xff\":1}", nil), "", "UTF-8"},
		{"junk after object", rawFile(`{} x`, nil), "", "after the closing brace"},
		{"two objects", rawFile(`{}{}`, nil), "", "after the closing brace"},
		{"unknown dtype", rawFile(`{"w":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}}`, f32x2), "w", "unknown dtype"},
		{"lowercase dtype", rawFile(`{"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}`, f32x2), "w", "unknown dtype"},
		{"missing field", rawFile(`{"w":{"dtype":"F32","data_offsets":[0,8]}}`, f32x2), "w", "needs dtype, shape and data_offsets"},
		{"entry not object", rawFile(`{"w":[1]}`, nil), "w", "header JSON"},
		{"size mismatch", rawFile(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32x2), "w", "needs 12 bytes"},
		{"dtype size mismatch", rawFile(`{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}`, f32x2), "w", "needs 16 bytes"},
		{"offsets past data", rawFile(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, f32x2), "w", "run past"},
		{"end before begin", rawFile(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, f32x2), "w", "end before"},
		{"negative offset", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, f32x2), "w", "negative"},
		{"three offsets", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}`, f32x2), "w", "two entries"},
		{"negative dim", rawFile(`{"w":{"dtype":"F32","shape":[-2,-1],"data_offsets":[0,8]}}`, f32x2), "w", "negative dimension"},
		{"fractional dim", rawFile(`{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}`, f32x2), "w", "header JSON"},
		{"overflowing shape", rawFile(`{"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,8]}}`, f32x2), "w", "overflow"},
		{"overflowing bytes", rawFile(`{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}`, f32x2), "w", "overflow"},
		{"duplicate name", rawFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32x2), "w", "twice"},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32x2), "b", `overlap tensor "a"`},
		{"gap", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32x2), "a", "unused bytes"},
		{"trailing bytes", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32x2), "a", "4 trailing bytes"},
		{"data without tensors", rawFile(`{}`, f32x2), "", "8 trailing bytes"},
		{"metadata not strings", rawFile(`{"__metadata__":{"n":1}}`, nil), "", "__metadata__"},
		{"metadata twice", rawFile(`{"__metadata__":{},"__metadata__":{}}`, nil), "", "twice"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors", c.file)
			_, _, err := ReadFile(path)
			parts := []string{path, c.want}
			if c.tensor != "" {
				parts = append(parts, `tensor "`+c.tensor+`"`)
			}
			mustMention(t, err, parts...)
			t.Log(err)
			_, err = ReadHeaderFile(path)
			mustMention(t, err, parts...)
			_, _, err = Decode(c.file, "mem.safetensors")
			mustMention(t, err, "mem.safetensors", c.want)
		})
	}
}

// TestGoodEdgeCases are files the reference accepts that a careless reader
// might refuse.
func TestGoodEdgeCases(t *testing.T) {
	cases := []struct {
		name string
		file []byte
		want map[string]int // tensor -> element count
	}{
		{"no tensors", rawFile(`{}`, nil), map[string]int{}},
		{"padded header", rawFile("{}      \n\t\r", nil), map[string]int{}},
		{"null metadata", rawFile(`{"__metadata__":null}`, nil), map[string]int{}},
		{"zero-size tensors share an offset", rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},`+
			`"b":{"dtype":"BF16","shape":[2,0],"data_offsets":[0,0]},"c":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`,
			le32f(1, 2)), map[string]int{"a": 0, "b": 0, "c": 2}},
		{"scalar", rawFile(`{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`,
			le32f(1, 2)), map[string]int{"s": 1, "t": 1}},
		{"unknown fields ignored", rawFile(`{"s":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":true}}`,
			le32f(1)), map[string]int{"s": 1}},
		{"empty name", rawFile(`{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, le32f(1)), map[string]int{"": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := Decode(c.file, "mem")
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d tensors, want %d", len(got), len(c.want))
			}
			for name, n := range c.want {
				if g := got[name]; g == nil || len(g.Data) != n {
					t.Errorf("tensor %q: got %v, want %d values", name, g, n)
				}
			}
		})
	}
}
