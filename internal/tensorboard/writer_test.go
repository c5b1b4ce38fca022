package tensorboard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The decoder below shares no code with the writer: its own bitwise
// CRC-32C, its own varint and wire-type parsing, and the field numbers of
// tensorflow's event.proto and summary.proto written out again.

// crc32cBitwise is CRC-32C (Castagnoli, reflected polynomial 0x82F63B78)
// one bit at a time.
func crc32cBitwise(b []byte) uint32 {
	c := ^uint32(0)
	for _, x := range b {
		c ^= uint32(x)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0x82F63B78
			} else {
				c >>= 1
			}
		}
	}
	return ^c
}

func masked(b []byte) uint32 {
	c := crc32cBitwise(b)
	return ((c >> 15) | (c << 17)) + 0xa282ead8
}

// readRecords splits a TFRecord file, checking both checksums of each.
func readRecords(t *testing.T, raw []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(raw) > 0 {
		if len(raw) < 12 {
			t.Fatalf("truncated record header (%d bytes left)", len(raw))
		}
		n := binary.LittleEndian.Uint64(raw[:8])
		if got, want := binary.LittleEndian.Uint32(raw[8:12]), masked(raw[:8]); got != want {
			t.Fatalf("length crc %08x, want %08x", got, want)
		}
		if uint64(len(raw)-16) < n {
			t.Fatalf("record of %d bytes, %d left", n, len(raw)-16)
		}
		data := raw[12 : 12+n]
		if got, want := binary.LittleEndian.Uint32(raw[12+n:16+n]), masked(data); got != want {
			t.Fatalf("data crc %08x, want %08x", got, want)
		}
		out = append(out, data)
		raw = raw[16+n:]
	}
	return out
}

// pbField is one decoded protobuf field: a varint, a fixed 32 or 64-bit
// value, or length-delimited bytes.
type pbField struct {
	num    int
	wire   int
	varint uint64
	fixed  uint64
	bytes  []byte
}

func uvarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("bad varint")
}

func parseMsg(b []byte) ([]pbField, error) {
	var out []pbField
	for len(b) > 0 {
		key, n, err := uvarint(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
		f := pbField{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case 0:
			if f.varint, n, err = uvarint(b); err != nil {
				return nil, err
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return nil, errors.New("short fixed64")
			}
			f.fixed, b = binary.LittleEndian.Uint64(b), b[8:]
		case 5:
			if len(b) < 4 {
				return nil, errors.New("short fixed32")
			}
			f.fixed, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		case 2:
			l, n, err := uvarint(b)
			if err != nil || uint64(len(b)-n) < l {
				return nil, errors.New("bad length")
			}
			f.bytes, b = b[n:n+int(l)], b[n+int(l):]
		default:
			return nil, fmt.Errorf("wire type %d", f.wire)
		}
		out = append(out, f)
	}
	return out, nil
}

func mustParse(t *testing.T, b []byte) []pbField {
	t.Helper()
	fs, err := parseMsg(b)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func get(fs []pbField, num int) []pbField {
	var out []pbField
	for _, f := range fs {
		if f.num == num {
			out = append(out, f)
		}
	}
	return out
}

// event is what the test reads back from one record.
type event struct {
	wall       float64
	step       int64
	version    string
	scalars    map[string]float32
	texts      map[string]string
	textPlugin bool
	start      bool
}

func decodeEvent(t *testing.T, rec []byte) event {
	t.Helper()
	fs := mustParse(t, rec)
	var ev event
	for _, f := range fs {
		switch f.num {
		case 1:
			ev.wall = math.Float64frombits(f.fixed)
		case 2:
			ev.step = int64(f.varint)
		case 3:
			ev.version = string(f.bytes)
		case 6:
			for _, s := range get(mustParse(t, f.bytes), 1) {
				ev.start = s.varint == 1
			}
		case 5:
			for _, vf := range get(mustParse(t, f.bytes), 1) {
				v := mustParse(t, vf.bytes)
				tag := string(get(v, 1)[0].bytes)
				if sv := get(v, 2); len(sv) == 1 {
					if ev.scalars == nil {
						ev.scalars = map[string]float32{}
					}
					ev.scalars[tag] = math.Float32frombits(uint32(sv[0].fixed))
				}
				if tv := get(v, 8); len(tv) == 1 {
					tensor := mustParse(t, tv[0].bytes)
					if get(tensor, 1)[0].varint != 7 {
						t.Fatalf("text tensor dtype %d, want DT_STRING", get(tensor, 1)[0].varint)
					}
					if ev.texts == nil {
						ev.texts = map[string]string{}
					}
					ev.texts[tag] = string(get(tensor, 8)[0].bytes)
					meta := mustParse(t, get(v, 9)[0].bytes)
					plugin := mustParse(t, get(meta, 1)[0].bytes)
					ev.textPlugin = string(get(plugin, 1)[0].bytes) == "text"
				}
			}
		}
	}
	return ev
}

func TestCRC32CCheckValue(t *testing.T) {
	// The standard check value of CRC-32C.
	if got := crc32cBitwise([]byte("123456789")); got != 0xE3069283 {
		t.Fatalf("bitwise crc32c %08x", got)
	}
	for _, s := range []string{"", "a", "123456789", strings.Repeat("tensorboard", 100)} {
		if MaskedCRC([]byte(s)) != masked([]byte(s)) {
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
	raw, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	recs := readRecords(t, raw)
	if len(recs) != 5 {
		t.Fatalf("%d records, want 5", len(recs))
	}
	first := decodeEvent(t, recs[0])
	if first.version != "brain.Event:2" || first.wall != 1_700_000_000.25 {
		t.Fatalf("first event %+v", first)
	}
	for i, m := range steps {
		ev := decodeEvent(t, recs[i+1])
		if ev.step != int64(i+1) || ev.wall != float64(1_700_000_000+i+1)+0.25 {
			t.Fatalf("event %d: step %d wall %v", i, ev.step, ev.wall)
		}
		if len(ev.scalars) != len(m) {
			t.Fatalf("event %d: %d scalars, want %d", i, len(ev.scalars), len(m))
		}
		for k, v := range m {
			got, ok := ev.scalars[k]
			if !ok || (got != float32(v) && !(math.IsNaN(v) && math.IsNaN(float64(got)))) {
				t.Errorf("step %d %s: got %v (present %v), want %v", i+1, k, got, ok, v)
			}
		}
	}
	text := decodeEvent(t, recs[3])
	if text.step != 2 || text.texts["samples"] != sample || !text.textPlugin {
		t.Fatalf("text event %+v", text)
	}
	if restart := decodeEvent(t, recs[4]); !restart.start || restart.step != 2 {
		t.Fatalf("restart event %+v", restart)
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
