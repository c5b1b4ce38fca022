package safetensors

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func inf(sign int) float32 { return float32(math.Inf(sign)) }

var nan32 = float32(math.NaN())

// sampleTensors covers a matrix, a vector with special values, a scalar and
// an empty tensor.
func sampleTensors() []*Tensor {
	r := rand.New(rand.NewPCG(3, 4))
	w := make([]float32, 6*5)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	return []*Tensor{
		{Name: "model.layers.0.mlp.weight", Shape: []int{6, 5}, Data: w},
		{Name: "special", Shape: []int{9}, Data: []float32{0, float32(math.Copysign(0, -1)), 1, -2.5,
			inf(1), inf(-1), nan32, math.SmallestNonzeroFloat32, math.MaxFloat32}},
		{Name: "scalar", Shape: []int{}, Data: []float32{3.25}},
		{Name: "empty", Shape: []int{0, 4}, Data: []float32{}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, dtype := range []DType{F32, BF16} {
		t.Run(string(dtype), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.safetensors")
			in := sampleTensors()
			if err := WriteFile(path, in, map[string]string{"step": "7"}, dtype); err != nil {
				t.Fatal(err)
			}
			got, meta, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if meta["step"] != "7" || meta["format"] != "pt" || len(meta) != 2 {
				t.Errorf("metadata = %v, want step=7 and format=pt", meta)
			}
			for i, g := range matchTensors(t, got, in) {
				w := in[i]
				if !slices.Equal(g.Shape, w.Shape) || g.File != path || g.Name != w.Name {
					t.Errorf("%q: shape %v file %q, want %v %q", w.Name, g.Shape, g.File, w.Shape, path)
				}
				want := slices.Clone(w.Data)
				if dtype == BF16 {
					for i, v := range want {
						want[i] = bf16ToF32(f32ToBF16(v))
					}
				}
				sameBits(t, w.Name, g.Data, want)
			}
			if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
				t.Errorf("temporary file left behind: %v", err)
			}
		})
	}
}

// TestWriterLayout pins the exact bytes of a small file: compact JSON,
// __metadata__ first, tensors sorted by name, space padding to 8 bytes.
func TestWriterLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.safetensors")
	in := []*Tensor{
		{Name: "b", Shape: []int{1, 2}, Data: []float32{1, 2}},
		{Name: "a<&>", Shape: []int{1}, Data: []float32{-1}},
	}
	if err := WriteFile(path, in, nil, F32); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header := `{"__metadata__":{"format":"pt"},` +
		`"a<&>":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},` +
		`"b":{"dtype":"F32","shape":[1,2],"data_offsets":[4,12]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	want := rawFile(header, le32f(-1, 1, 2))
	if !bytes.Equal(b, want) {
		t.Errorf("file bytes:\n got %q\nwant %q", b, want)
	}
}

func TestReadHandMadeDTypes(t *testing.T) {
	// F16 bit patterns and their exact float32 values.
	f16Bits := []uint16{0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xc000,
		0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x3555}
	f16Want := []float32{0, float32(math.Copysign(0, -1)), float32(math.Ldexp(1, -24)), -float32(math.Ldexp(1, -24)),
		float32(1023 * math.Ldexp(1, -24)), float32(math.Ldexp(1, -14)), 1, -2,
		65504, inf(1), inf(-1), nan32, 0.333251953125}
	// F64 values and their float32 rounding.
	f64In := []float64{1.0 / 3, 1e300, -1e300, 1e-50, math.NaN(),
		1 + math.Ldexp(1, -24),   // tie between 1 and 1+ulp: even is 1
		1 + 3*math.Ldexp(1, -24), // tie between 1+ulp and 1+2ulp: even is 1+2ulp
		math.Ldexp(1, -149), math.Copysign(0, -1)}
	f64Want := []float32{math.Float32frombits(0x3eaaaaab), inf(1), inf(-1), 0, nan32,
		1, 1 + float32(math.Ldexp(1, -22)), math.Float32frombits(1), float32(math.Copysign(0, -1))}
	bf16Bits := []uint16{0x3f80, 0xc2f7, 0x0001, 0x7f80, 0xff80, 0x7fc1}
	bf16Want := []float32{1, -123.5, math.Float32frombits(0x00010000), inf(1), inf(-1), nan32}

	data := append([]byte{}, le64f(f64In...)...) // 0..72
	data = append(data, le32f(7, 8)...)          // 72..80
	data = append(data, le16(f16Bits...)...)     // 80..106
	data = append(data, le16(bf16Bits...)...)    // 106..118
	header := `{"h":{"dtype":"F16","shape":[13],"data_offsets":[80,106]},` +
		`"__metadata__":{"k":"v"},` +
		`"d":{"dtype":"F64","shape":[9],"data_offsets":[0,72]},` +
		`"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[106,118]},` +
		`"f":{"dtype":"F32","shape":[2],"data_offsets":[72,80]}}   `
	path := writeTemp(t, t.TempDir(), "hand.safetensors", rawFile(header, data))
	got, meta, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta["k"] != "v" {
		t.Errorf("metadata %v", meta)
	}
	sameBits(t, "F16", got["h"].Data, f16Want)
	sameBits(t, "F64", got["d"].Data, f64Want)
	sameBits(t, "BF16", got["b"].Data, bf16Want)
	sameBits(t, "F32", got["f"].Data, []float32{7, 8})
	if !slices.Equal(got["b"].Shape, []int{2, 3}) {
		t.Errorf("BF16 shape %v", got["b"].Shape)
	}
}

func TestReadUnsupportedDType(t *testing.T) {
	for _, dt := range []string{"I64", "I8", "U8", "BOOL", "F8_E4M3"} {
		t.Run(dt, func(t *testing.T) {
			size := dtypeBits[DType(dt)] / 8 * 2
			header := `{"ids":{"dtype":"` + dt + `","shape":[2],"data_offsets":[0,` + strconv.FormatInt(size, 10) + `]}}`
			path := writeTemp(t, t.TempDir(), "ints.safetensors", rawFile(header, make([]byte, size)))
			_, _, err := ReadFile(path)
			mustMention(t, err, path, `"ids"`, dt)
			// The header alone is fine: the format defines this dtype.
			if _, err := ReadHeaderFile(path); err != nil {
				t.Errorf("ReadHeaderFile: %v", err)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		tensors []*Tensor
		dtype   DType
		want    []string
	}{
		{"shape mismatch", []*Tensor{{Name: "w", Shape: []int{2, 2}, Data: []float32{1, 2, 3}}}, F32, []string{`"w"`, "[2 2]"}},
		{"duplicate", []*Tensor{{Name: "w", Shape: []int{1}, Data: []float32{1}}, {Name: "w", Shape: []int{1}, Data: []float32{1}}}, F32, []string{`"w"`, "twice"}},
		{"negative dim", []*Tensor{{Name: "w", Shape: []int{-1}, Data: nil}}, BF16, []string{`"w"`, "negative"}},
		{"reserved name", []*Tensor{{Name: "__metadata__", Shape: []int{1}, Data: []float32{1}}}, F32, []string{"reserved"}},
		{"nil tensor", []*Tensor{nil}, F32, []string{"nil"}},
		{"unsupported dtype", nil, F16, []string{"F16", "BF16, F32"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
			err := WriteFile(path, c.tensors, nil, c.dtype)
			mustMention(t, err, append([]string{path}, c.want...)...)
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("failed write left %s behind", path)
			}
		})
	}
}

// TestWriteReplacesAtomically checks an existing file is replaced whole.
func TestWriteReplacesAtomically(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	big := []*Tensor{{Name: "x", Shape: []int{1000}, Data: make([]float32, 1000)}}
	small := []*Tensor{{Name: "y", Shape: []int{1}, Data: []float32{5}}}
	if err := WriteFile(path, big, nil, F32); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, small, nil, BF16); err != nil {
		t.Fatal(err)
	}
	got, _, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["y"] == nil || got["y"].Data[0] != 5 {
		t.Errorf("got %v", got)
	}
}

// TestLargeTensorChunks crosses the staging-buffer boundary on both the
// write and the read side.
func TestLargeTensorChunks(t *testing.T) {
	n := chunkBytes/2 + 12345 // BF16: more than one staging chunk
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(i%128) * 0.25
	}
	path := filepath.Join(t.TempDir(), "big.safetensors")
	if err := WriteFile(path, []*Tensor{{Name: "x", Shape: []int{n}, Data: data}}, nil, BF16); err != nil {
		t.Fatal(err)
	}
	got, _, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "x", got["x"].Data, data) // multiples of 0.25 below 32 need 7 mantissa bits: exact in bf16
}

func TestDecodeInMemory(t *testing.T) {
	b := rawFile(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, le32f(1.5, -3))
	got, meta, err := Decode(b, "mem")
	if err != nil {
		t.Fatal(err)
	}
	if meta != nil {
		t.Errorf("metadata %v, want nil", meta)
	}
	sameBits(t, "x", got["x"].Data, []float32{1.5, -3})
	// The non-native path must agree with the native one.
	dst := make([]float32, 2)
	if err := readConverted(byteReaderAt(b), int64(len(b)-8), F32, dst, make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	sameBits(t, "converted", dst, []float32{1.5, -3})
}

// mustMention fails unless err is non-nil and its text contains every part.
func mustMention(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

// TestPortablePath runs the F32 round trip through the byte-swapping code
// used on big-endian hosts, which this machine would otherwise never run.
func TestPortablePath(t *testing.T) {
	native := hostLittleEndian
	defer func() { hostLittleEndian = native }()
	path := filepath.Join(t.TempDir(), "p.safetensors")
	in := sampleTensors()
	hostLittleEndian = false
	if err := WriteFile(path, in, nil, F32); err != nil {
		t.Fatal(err)
	}
	hostLittleEndian = native
	viaNative, _, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hostLittleEndian = false
	viaPortable, _, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range in {
		sameBits(t, w.Name+" native", viaNative[w.Name].Data, w.Data)
		sameBits(t, w.Name+" portable", viaPortable[w.Name].Data, w.Data)
	}
}
