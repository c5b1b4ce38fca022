package safetensors

import (
	"fmt"
	"strings"
	"testing"
)

func TestExpect(t *testing.T) {
	ts := map[string]*Tensor{
		"w": {Name: "w", Shape: []int{2, 3}, Data: make([]float32, 6), File: "shard1.safetensors"},
	}
	if got, err := Expect(ts, "w", 2, 3); err != nil || got != ts["w"] {
		t.Errorf("Expect(w, 2, 3) = %v, %v", got, err)
	}
	_, err := Expect(ts, "w", 3, 2)
	mustMention(t, err, `file shard1.safetensors: tensor "w" has shape [2 3], config wants [3 2]`)
	_, err = Expect(ts, "v", 4)
	mustMention(t, err, `tensor "v"`, "missing")
}

func TestPicker(t *testing.T) {
	mk := func(name string, shape ...int) *Tensor {
		return &Tensor{Name: name, Shape: shape, Data: make([]float32, NumElements(shape)), File: "m.safetensors"}
	}
	ts := map[string]*Tensor{}
	for _, x := range []*Tensor{mk("embed", 10, 4), mk("norm", 4), mk("bad", 3),
		mk("layers.0.rotary.inv_freq", 2), mk("layers.1.rotary.inv_freq", 2), mk("leftover", 1)} {
		ts[x.Name] = x
	}
	p := NewPicker("modeldir", ts)
	if p.Take("embed", 10, 4) != ts["embed"] || p.Take("norm", 4) != ts["norm"] {
		t.Error("Take returned the wrong tensor")
	}
	if p.Take("bad", 4) != nil {
		t.Error("Take with a wrong shape returned a tensor")
	}
	if p.Take("absent", 7) != nil {
		t.Error("Take of a missing tensor returned one")
	}
	if p.Optional("lm_head", 10, 4) != nil {
		t.Error("Optional of a missing tensor returned one")
	}
	p.Ignore("layers.*.rotary.inv_freq")
	err := p.Err()
	mustMention(t, err,
		`file m.safetensors: tensor "bad" has shape [3], config wants [4]`,
		`modeldir: tensor "absent" with shape [7] is missing`,
		`modeldir: 1 tensors not used by the model: "leftover" (file m.safetensors)`)
	if strings.Contains(err.Error(), "lm_head") || strings.Contains(err.Error(), "inv_freq") {
		t.Errorf("error mentions optional or ignored tensors: %v", err)
	}
	p.Take("leftover", 1)
	p.Ignore("bad", "absent")
	if got := p.Unused(); len(got) != 0 {
		t.Errorf("Unused() = %v", got)
	}
	p.Ignore("[")
	mustMention(t, p.Err(), `ignore pattern "["`)
}

func TestPickerClean(t *testing.T) {
	ts := map[string]*Tensor{"a": {Name: "a", Shape: []int{1}, Data: []float32{1}}}
	p := NewPicker("dir", ts)
	p.Take("a", 1)
	if err := p.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

func TestPickerManyUnused(t *testing.T) {
	ts := map[string]*Tensor{}
	for i := range 15 {
		n := string(rune('a' + i))
		ts[n] = &Tensor{Name: n, Shape: []int{1}, Data: []float32{1}}
	}
	mustMention(t, NewPicker("dir", ts).Err(), "15 tensors not used", "and 5 more")
}

// A loader asking for thousands of missing tensors gets a short error.
func TestPickerCapsProblems(t *testing.T) {
	p := NewPicker("dir", map[string]*Tensor{})
	for i := 0; i < 5000; i++ {
		p.Take(fmt.Sprintf("model.layers.%d.mlp.up_proj.weight", i), 4, 4)
	}
	err := p.Err()
	if err == nil {
		t.Fatal("no error")
	}
	if n := strings.Count(err.Error(), "\n") + 1; n > 11 {
		t.Errorf("%d lines of error", n)
	}
	if !strings.Contains(err.Error(), "4990 more") {
		t.Errorf("error does not count the rest: %v", err)
	}
}
