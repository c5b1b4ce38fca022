package plot

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestRunWritesCharts(t *testing.T) {
	dir := t.TempDir()
	var b bytes.Buffer
	for s := 1; s <= 20; s++ {
		acc := ""
		if s%5 == 0 {
			acc = `,"eval/accuracy":0.5`
		}
		b.WriteString(`{"step":` + itoa(s) + `,"reward":0.` + itoa(s%10) + `,"kl":null,"entropy":1.5` + acc + "}\n")
	}
	os.WriteFile(filepath.Join(dir, "metrics.jsonl"), b.Bytes(), 0o644)
	files, err := Run(dir, filepath.Join(dir, "plots"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"reward.png": true, "accuracy.png": true, "entropy.png": true}
	if len(files) != len(want) {
		t.Fatalf("wrote %v, want %v (kl is all null, the rest absent)", files, want)
	}
	for _, f := range files {
		if !want[filepath.Base(f)] {
			t.Errorf("unexpected chart %s", f)
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil || img.Bounds().Dx() < 100 {
			t.Errorf("%s is not a usable PNG: %v", f, err)
		}
	}
	if _, err := Run(t.TempDir(), t.TempDir()); err == nil {
		t.Error("a directory without metrics was accepted")
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
