package metrics

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLineAndRead(t *testing.T) {
	line := Line(3, map[string]float64{"reward": 0.5, "kl": math.NaN(), "a/b": 1e-7, "big": math.Inf(1)})
	if want := `{"step":3,"a/b":1e-07,"big":null,"kl":null,"reward":0.5}`; line != want {
		t.Fatalf("Line = %s, want %s", line, want)
	}
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	if err := os.WriteFile(path, []byte(line+"\n\n"+Line(4, map[string]float64{"reward": 1})+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0]["step"] != 3 || rows[0]["reward"] != 0.5 || !math.IsNaN(rows[0]["kl"]) ||
		rows[0]["a/b"] != 1e-7 || rows[1]["step"] != 4 || rows[1]["reward"] != 1 {
		t.Errorf("Read = %v", rows)
	}
}

func TestReadNamesTheBadLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	if err := os.WriteFile(path, []byte("{\"step\":1}\n{\"step\":\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Read(path)
	if err == nil || !strings.Contains(err.Error(), "metrics.jsonl:2") {
		t.Errorf("err = %v, want one naming line 2", err)
	}
}
