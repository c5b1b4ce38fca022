package data

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func ids(exs []Example) []string {
	out := make([]string, len(exs))
	for i, e := range exs {
		out[i] = e.ID
	}
	return out
}

func TestSamplerEpochsArePermutations(t *testing.T) {
	const n = 10
	s, err := NewSampler(numbered(n), 3, true)
	if err != nil {
		t.Fatal(err)
	}
	var epochs [][]string
	for e := 0; e < 3; e++ {
		got := ids(s.Next(n))
		epochs = append(epochs, got)
		sorted := append([]string{}, got...)
		sort.Strings(sorted)
		want := ids(numbered(n))
		sort.Strings(want)
		if !reflect.DeepEqual(sorted, want) {
			t.Fatalf("epoch %d is not a permutation: %v", e, got)
		}
	}
	if reflect.DeepEqual(epochs[0], epochs[1]) && reflect.DeepEqual(epochs[1], epochs[2]) {
		t.Fatal("every epoch has the same order")
	}
	plain, _ := NewSampler(numbered(n), 3, false)
	if got := ids(plain.Next(n + 2)); !reflect.DeepEqual(got, append(ids(numbered(n)), "0", "1")) {
		t.Fatalf("unshuffled order %v", got)
	}
}

// The order depends only on (seed, epoch), not on how prompts were batched.
func TestSamplerOrderIndependentOfBatching(t *testing.T) {
	a, _ := NewSampler(numbered(7), 11, true)
	b, _ := NewSampler(numbered(7), 11, true)
	var ga, gb []string
	for len(ga) < 40 {
		ga = append(ga, ids(a.Next(3))...)
	}
	for len(gb) < 40 {
		gb = append(gb, ids(b.Next(5))...)
	}
	if !reflect.DeepEqual(ga[:40], gb[:40]) {
		t.Fatalf("batch size changed the sequence:\n%v\n%v", ga[:40], gb[:40])
	}
	c, _ := NewSampler(numbered(7), 12, true)
	if reflect.DeepEqual(ids(c.Next(14)), ga[:14]) {
		t.Fatal("different seeds gave the same sequence")
	}
}

// A stream restored from a JSON cursor at any step — including mid-batch
// positions that straddle an epoch boundary — continues exactly as the
// uninterrupted stream does.
func TestStreamResume(t *testing.T) {
	task, err := NewTask("arithmetic", nil)
	if err != nil {
		t.Fatal(err)
	}
	makers := map[string]func() Stream{
		"dataset": func() Stream { s, _ := NewSampler(numbered(7), 99, true); return s },
		"task":    func() Stream { return NewTaskStream(task, 99) },
	}
	const batch, steps = 3, 12 // 36 prompts: five epoch boundaries of 7, several inside a batch
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			full := mk()
			var want [][]Example
			for i := 0; i < steps; i++ {
				want = append(want, full.Next(batch))
			}
			for cut := 0; cut <= steps; cut++ {
				first := mk()
				for i := 0; i < cut; i++ {
					first.Next(batch)
				}
				blob, err := json.Marshal(first.Cursor())
				if err != nil {
					t.Fatal(err)
				}
				var c Cursor
				if err := json.Unmarshal(blob, &c); err != nil {
					t.Fatal(err)
				}
				resumed := mk()
				if err := resumed.Restore(c); err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
				for i := cut; i < steps; i++ {
					if got := resumed.Next(batch); !reflect.DeepEqual(got, want[i]) {
						t.Fatalf("cut %d step %d: got %v want %v", cut, i, ids(got), ids(want[i]))
					}
				}
			}
		})
	}
}

func TestSamplerEpochBoundaryCursor(t *testing.T) {
	s, _ := NewSampler(numbered(4), 1, true)
	s.Next(6)
	c := s.Cursor()
	if c.Epoch != 1 || c.Pos != 2 || c.Served != 6 {
		t.Fatalf("cursor %+v, want epoch 1 pos 2 served 6", c)
	}
}

func TestRestoreMismatch(t *testing.T) {
	s, _ := NewSampler(numbered(5), 1, true)
	c := s.Cursor()
	arith, _ := NewTask("arithmetic", nil)
	count, _ := NewTask("countdown", nil)
	tests := []struct {
		name   string
		stream Stream
		cursor func() Cursor
		want   string
	}{
		{"changed dataset", mustSampler(numbered(6), 1), func() Cursor { return c }, "dataset changed"},
		{"other seed", mustSampler(numbered(5), 2), func() Cursor { return c }, "seed"},
		{"bad position", mustSampler(numbered(5), 1), func() Cursor { d := c; d.Pos = 9; return d }, "out of range"},
		{"task cursor on dataset", mustSampler(numbered(5), 1), func() Cursor { return NewTaskStream(arith, 1).Cursor() }, `"task" stream`},
		{"other task", NewTaskStream(count, 1), func() Cursor { return NewTaskStream(arith, 1).Cursor() }, "task changed"},
		{"task other seed", NewTaskStream(arith, 2), func() Cursor { return NewTaskStream(arith, 1).Cursor() }, "seed"},
	}
	for _, tt := range tests {
		if err := tt.stream.Restore(tt.cursor()); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := NewSampler(nil, 0, true); err == nil {
		t.Error("empty sampler: no error")
	}
}

func mustSampler(ex []Example, seed uint64) *Sampler {
	s, err := NewSampler(ex, seed, true)
	if err != nil {
		panic(err)
	}
	return s
}
