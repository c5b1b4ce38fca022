package tensorboard

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rltrain/rltrain/internal/tensorboard/tbread"
)

func TestCRC32CCheckValue(t *testing.T) {
	// The standard check value of CRC-32C.
	if got := tbread.CRC32C([]byte("123456789")); got != 0xE3069283 {
		t.Fatalf("bitwise crc32c %08x", got)
	}
	for _, s := range []string{"", "a", "123456789", strings.Repeat("tensorboard", 100)} {
		c := tbread.CRC32C([]byte(s))
		if MaskedCRC([]byte(s)) != ((c>>15)|(c<<17))+0xa282ead8 {
			t.Fatalf("MaskedCRC(%q) differs from the bitwise reference", s)
		}
	}
}

func TestWriterReadBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tb")
	t0 := time.Unix(1_700_000_000, 250_000_000)
	w, err := Create(dir, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(w.Path()), "events.out.tfevents.1700000000.") {
		t.Fatalf("file name %s", w.Path())
	}
	steps := []map[string]float64{
		{"reward": 0.25, "eval/accuracy": 0.5, "rewards/format/std": 0.125},
		{"reward": 0.75, "timing_s/step": 1.5, "kl": math.NaN()},
	}
	for i, m := range steps {
		if err := w.Scalars(int64(i+1), t0.Add(time.Duration(i+1)*time.Second), m); err != nil {
			t.Fatal(err)
		}
	}
	sample := "**prompt** 2+3=\n\ncompletion: 5 → reward 1 ✓"
	if err := w.Text(2, t0, "samples", sample); err != nil {
		t.Fatal(err)
	}
	if err := w.Restart(2, t0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs, err := tbread.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 {
		t.Fatalf("%d events, want 5", len(evs))
	}
	first := evs[0]
	if first.Version != "brain.Event:2" || first.Wall != 1_700_000_000.25 {
		t.Fatalf("first event %+v", first)
	}
	for i, m := range steps {
		ev := evs[i+1]
		if ev.Step != int64(i+1) || ev.Wall != float64(1_700_000_000+i+1)+0.25 {
			t.Fatalf("event %d: step %d wall %v", i, ev.Step, ev.Wall)
		}
		if len(ev.Scalars) != len(m) {
			t.Fatalf("event %d: %d scalars, want %d", i, len(ev.Scalars), len(m))
		}
		for k, v := range m {
			got, ok := ev.Scalars[k]
			if !ok || (got != float32(v) && !(math.IsNaN(v) && math.IsNaN(float64(got)))) {
				t.Errorf("step %d %s: got %v (present %v), want %v", i+1, k, got, ok, v)
			}
		}
	}
	if text := evs[3]; text.Step != 2 || text.Texts["samples"] != sample {
		t.Fatalf("text event %+v", text)
	}
	if restart := evs[4]; !restart.Start || restart.Step != 2 {
		t.Fatalf("restart event %+v", restart)
	}
	// A flipped byte fails a checksum.
	raw, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-10] ^= 1
	if _, err := tbread.Records(raw); err == nil {
		t.Fatal("a corrupted record passed its checksum")
	}
}

func TestTwoWritersInOneSecond(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_700_000_000, 0)
	a, err := Create(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Create(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if a.Path() == b.Path() {
		t.Fatal("two writers share a file")
	}
	for _, w := range []*Writer{a, b} {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCreateFailsOnAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(filepath.Join(file, "tb"), time.Now()); err == nil || !strings.Contains(err.Error(), "tensorboard") {
		t.Fatalf("error %v", err)
	}
}
