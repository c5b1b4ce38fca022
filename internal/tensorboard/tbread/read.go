// Package tbread reads TensorBoard event files for tests. It shares no code
// with the writer in package tensorboard: its own bitwise CRC-32C, its own
// varint and wire-type parsing, and the field numbers of tensorflow's
// event.proto and summary.proto written out again, so a test that writes
// with one and reads with the other checks the format, not the code
// against itself.
package tbread

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// Event is what a test reads back from one record.
type Event struct {
	Wall    float64
	Step    int64
	Version string             // file_version of the first event
	Scalars map[string]float32 // simple_value summaries by tag
	Texts   map[string]string  // text-plugin summaries by tag
	Start   bool               // a SessionLog START (restart) marker
}

// crc32c is CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) one bit
// at a time.
func crc32c(b []byte) uint32 {
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

// CRC32C exposes the bitwise CRC for the writer's own tests.
func CRC32C(b []byte) uint32 { return crc32c(b) }

func masked(b []byte) uint32 {
	c := crc32c(b)
	return ((c >> 15) | (c << 17)) + 0xa282ead8
}

// Records splits a TFRecord stream, checking both checksums of each.
func Records(raw []byte) ([][]byte, error) {
	var out [][]byte
	for len(raw) > 0 {
		if len(raw) < 12 {
			return nil, fmt.Errorf("truncated record header (%d bytes left)", len(raw))
		}
		n := binary.LittleEndian.Uint64(raw[:8])
		if got, want := binary.LittleEndian.Uint32(raw[8:12]), masked(raw[:8]); got != want {
			return nil, fmt.Errorf("length crc %08x, want %08x", got, want)
		}
		if uint64(len(raw)-16) < n {
			return nil, fmt.Errorf("record of %d bytes, %d left", n, len(raw)-16)
		}
		data := raw[12 : 12+n]
		if got, want := binary.LittleEndian.Uint32(raw[12+n:16+n]), masked(data); got != want {
			return nil, fmt.Errorf("data crc %08x, want %08x", got, want)
		}
		out = append(out, data)
		raw = raw[16+n:]
	}
	return out, nil
}

type field struct {
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

func parse(b []byte) ([]field, error) {
	var out []field
	for len(b) > 0 {
		key, n, err := uvarint(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
		f := field{num: int(key >> 3), wire: int(key & 7)}
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

func get(fs []field, num int) []field {
	var out []field
	for _, f := range fs {
		if f.num == num {
			out = append(out, f)
		}
	}
	return out
}

func one(fs []field, num int) (field, error) {
	g := get(fs, num)
	if len(g) != 1 {
		return field{}, fmt.Errorf("field %d appears %d times", num, len(g))
	}
	return g[0], nil
}

// nested parses the message that is fs's one field num; what names it in
// errors.
func nested(fs []field, num int, what string) ([]field, error) {
	f, err := one(fs, num)
	if err == nil {
		var m []field
		if m, err = parse(f.bytes); err == nil {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", what, err)
}

// Decode reads one serialized Event.
func Decode(rec []byte) (Event, error) {
	var ev Event
	fs, err := parse(rec)
	if err != nil {
		return ev, err
	}
	for _, f := range fs {
		switch f.num {
		case 1: // wall_time
			ev.Wall = math.Float64frombits(f.fixed)
		case 2: // step
			ev.Step = int64(f.varint)
		case 3: // file_version
			ev.Version = string(f.bytes)
		case 6: // session_log
			sl, err := parse(f.bytes)
			if err != nil {
				return ev, err
			}
			for _, s := range get(sl, 1) {
				ev.Start = s.varint == 1
			}
		case 5: // summary
			sum, err := parse(f.bytes)
			if err != nil {
				return ev, err
			}
			for _, vf := range get(sum, 1) {
				if err := decodeValue(vf.bytes, &ev); err != nil {
					return ev, err
				}
			}
		}
	}
	return ev, nil
}

func decodeValue(b []byte, ev *Event) error {
	v, err := parse(b)
	if err != nil {
		return err
	}
	tagF, err := one(v, 1)
	if err != nil {
		return fmt.Errorf("summary value tag: %w", err)
	}
	tag := string(tagF.bytes)
	if sv := get(v, 2); len(sv) == 1 {
		if ev.Scalars == nil {
			ev.Scalars = map[string]float32{}
		}
		ev.Scalars[tag] = math.Float32frombits(uint32(sv[0].fixed))
	}
	if len(get(v, 8)) == 1 {
		tensor, err := nested(v, 8, "tag "+tag+": tensor")
		if err != nil {
			return err
		}
		dt, err := one(tensor, 1)
		if err != nil || dt.varint != 7 {
			return fmt.Errorf("tag %s: text tensor dtype is not DT_STRING", tag)
		}
		sv, err := one(tensor, 8)
		if err != nil {
			return fmt.Errorf("tag %s: string_val: %w", tag, err)
		}
		meta, err := nested(v, 9, "tag "+tag+": metadata")
		if err != nil {
			return err
		}
		plugin, err := nested(meta, 1, "tag "+tag+": plugin_data")
		if err != nil {
			return err
		}
		name, err := one(plugin, 1)
		if err != nil || string(name.bytes) != "text" {
			return fmt.Errorf("tag %s: plugin is not text", tag)
		}
		if ev.Texts == nil {
			ev.Texts = map[string]string{}
		}
		ev.Texts[tag] = string(sv.bytes)
	}
	return nil
}

// ReadFile reads every event of one file.
func ReadFile(path string) ([]Event, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	recs, err := Records(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := make([]Event, 0, len(recs))
	for i, r := range recs {
		ev, err := Decode(r)
		if err != nil {
			return nil, fmt.Errorf("%s: record %d: %w", path, i, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// Files lists the event files directly in dir, oldest name first.
func Files(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*"))
	sort.Strings(m)
	return m, err
}
