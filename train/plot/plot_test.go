package plot

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
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

// A constant series gets a band around it, every chart leaves room above
// the data for its legend, and the warm-up's and the optimizer's metrics
// get charts of their own.
func TestChartRangesAndNewCharts(t *testing.T) {
	var rows []map[string]float64
	for s := 1; s <= 10; s++ {
		rows = append(rows, map[string]float64{"step": float64(s), "sft/loss": 3 - 0.1*float64(s), "sft/grad_norm": 1, "sft/learning_rate": 1e-4})
	}
	for s := 0; s <= 10; s++ {
		rows = append(rows, map[string]float64{"step": float64(s), "entropy": 1.5, "learning_rate": 1e-6, "grad_norm": 0.5 + 0.01*float64(s),
			"loss": 0.1, "pg_loss": -0.2 + 0.01*float64(s), "reward": 0})
	}
	byFile := map[string]Chart{}
	for _, c := range Charts {
		byFile[c.File] = c
	}
	for file, want := range map[string]float64{"entropy.png": 1.5, "learning_rate.png": 1e-6, "reward.png": 0, "sft_learning_rate.png": 1e-4} {
		p, err := chart(byFile[file], rows)
		if err != nil || p == nil {
			t.Fatalf("%s: %v", file, err)
		}
		if !(p.Y.Min < want && want < p.Y.Max) || p.Y.Max-p.Y.Min < 1e-3*max(want, 1e-9) {
			t.Errorf("%s: constant %g drawn in [%g, %g]", file, want, p.Y.Min, p.Y.Max)
		}
	}
	p, _ := chart(byFile["loss.png"], rows)
	if hi := 0.1; p.Y.Max < hi+0.2*(hi-(-0.2)) {
		t.Errorf("loss chart: no room above the data for the legend: max %g", p.Y.Max)
	}
	if p, _ := chart(byFile["sft_loss.png"], rows); p == nil || p.X.Label.Text != "warm-up step" {
		t.Error("no warm-up loss chart")
	}
	if p, _ := chart(byFile["kl.png"], rows); p != nil {
		t.Error("a chart without data")
	}
	dir := t.TempDir()
	var b bytes.Buffer
	for _, r := range rows {
		b.WriteString(`{"step":` + itoa(int(r["step"])))
		for _, k := range []string{"sft/loss", "grad_norm", "learning_rate"} {
			if v, ok := r[k]; ok {
				b.WriteString(`,"` + k + `":` + strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
		b.WriteString("}\n")
	}
	os.WriteFile(filepath.Join(dir, "metrics.jsonl"), b.Bytes(), 0o644)
	files, err := Run(dir, filepath.Join(dir, "plots"))
	if err != nil || len(files) != 3 {
		t.Fatalf("wrote %v (%v), want sft_loss, grad_norm and learning_rate", files, err)
	}
}
