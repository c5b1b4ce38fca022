package data

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func numbered(n int) []Example {
	out := make([]Example, n)
	for i := range out {
		out[i] = Example{ID: strconv.Itoa(i), Prompt: "p" + strconv.Itoa(i)}
	}
	return out
}

func TestSplitEval(t *testing.T) {
	tests := []struct {
		n        int
		fraction float64
		size     int
		wantEval int
	}{
		{100, 0.1, 0, 10},
		{10, 0.01, 0, 1}, // at least one
		{100, 0, 25, 25},
		{100, 0, 0, 0},
	}
	for _, tt := range tests {
		ex := numbered(tt.n)
		train, eval, err := SplitEval(ex, tt.fraction, tt.size, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(eval) != tt.wantEval || len(train)+len(eval) != tt.n {
			t.Fatalf("n=%d: %d train + %d eval, want %d eval", tt.n, len(train), len(eval), tt.wantEval)
		}
		seen := map[string]int{}
		for _, e := range append(append([]Example{}, train...), eval...) {
			seen[e.ID]++
		}
		if len(seen) != tt.n {
			t.Fatalf("split lost or duplicated examples: %d distinct of %d", len(seen), tt.n)
		}
		train2, eval2, _ := SplitEval(ex, tt.fraction, tt.size, 5)
		if !reflect.DeepEqual(train, train2) || !reflect.DeepEqual(eval, eval2) {
			t.Fatal("split is not deterministic")
		}
	}
	_, e1, _ := SplitEval(numbered(100), 0, 10, 1)
	_, e2, _ := SplitEval(numbered(100), 0, 10, 2)
	if reflect.DeepEqual(e1, e2) {
		t.Fatal("different seeds gave the same held-out set")
	}
}

func TestSplitEvalErrors(t *testing.T) {
	tests := []struct {
		fraction float64
		size     int
		want     string
	}{
		{1, 0, "eval_fraction must be in [0, 1)"},
		{-0.1, 0, "eval_fraction must be in [0, 1)"},
		{0, -1, "eval_size must be >= 0"},
		{0.1, 5, "not both"},
		{0, 10, "leaves none to train on"},
	}
	for _, tt := range tests {
		_, _, err := SplitEval(numbered(10), tt.fraction, tt.size, 0)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("fraction %v size %d: error %v, want %q", tt.fraction, tt.size, err, tt.want)
		}
	}
}
