package safetensors

import (
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// findTorchPython returns a python3 that can import torch and numpy, or
// skips the test saying why.
func findTorchPython(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, py := range candidates {
		if _, err := os.Stat(py); err != nil {
			continue
		}
		if exec.Command(py, "-c", "import torch, numpy").Run() == nil {
			return py
		}
	}
	t.Skip("skipping PyTorch cross-check: no python3 with torch and numpy (Debian: apt-get install python3-torch python3-numpy)")
	return ""
}

// crossTensors are random values over a wide exponent range plus the
// values where bfloat16 rounding is delicate.
func crossTensors() []*Tensor {
	r := rand.New(rand.NewPCG(11, 12))
	wide := make([]float32, 3000)
	for i := range wide {
		wide[i] = float32(r.NormFloat64() * math.Ldexp(1, r.IntN(80)-40))
	}
	ties := make([]float32, 1000)
	for i := range ties {
		ties[i] = math.Float32frombits(r.Uint32()&^0xffff | 0x8000)
	}
	special := []float32{0, float32(math.Copysign(0, -1)), inf(1), inf(-1), nan32,
		math.Float32frombits(0x7f800001), math.Float32frombits(0xffbfffff), // NaNs with odd payloads
		math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 1.17549435e-38,
		math.Float32frombits(0x7f7f8000), math.Float32frombits(0x3f80ffff)}
	return []*Tensor{
		{Name: "wide", Shape: []int{30, 100}, Data: wide},
		{Name: "ties", Shape: []int{10, 10, 10}, Data: ties},
		{Name: "special", Shape: []int{len(special)}, Data: special},
		{Name: "a.scalar", Shape: []int{}, Data: []float32{-7.75}},
	}
}

// TestTorchCrossCheck has PyTorch (via numpy, json and struct, since the
// safetensors Python package is not available) verify files we write, and
// verifies files written from PyTorch's own dtype conversions.
func TestTorchCrossCheck(t *testing.T) {
	py := findTorchPython(t)
	dir := t.TempDir()
	in := crossTensors()
	meta := map[string]string{"origin": "go"}
	if err := WriteFile(filepath.Join(dir, "go_f32.safetensors"), in, meta, F32); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "go_bf16.safetensors"), in, meta, BF16); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join("testdata", "crosscheck.py"), dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("crosscheck.py: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))

	path := filepath.Join(dir, "torch.safetensors")
	got, gotMeta, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if gotMeta["origin"] != "torch" {
		t.Errorf("metadata %v", gotMeta)
	}
	for _, name := range []string{"x.f16", "x.bf16", "x.f64"} {
		g, w := got[name], got[name+".want"]
		if g == nil || w == nil {
			t.Fatalf("torch file lacks %s or %s.want", name, name)
		}
		if len(g.Data) < 1000 {
			t.Errorf("%s: only %d values", name, len(g.Data))
		}
		if !slices.Equal(g.Shape, w.Shape) {
			t.Errorf("%s: shape %v, want %v", name, g.Shape, w.Shape)
		}
		sameBits(t, name, g.Data, w.Data)
	}
}
