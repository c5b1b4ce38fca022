package data

import (
	"strings"
	"testing"
)

// Model completions are arbitrary text: the verifiers must never panic and
// must stay bounded on them. `go test` runs the seeds; `go test -fuzz` more.
func FuzzScore(f *testing.F) {
	for _, s := range []string{"3*7+5", "((((", "9999999999999999999*9", "1/0", "7/(3-3)", "", "3 * 7 + 5 = 26", "\x00"} {
		f.Add(s)
	}
	arith, _ := NewTask("arithmetic", nil)
	count, _ := NewTask("countdown", nil)
	ex := Example{Prompt: "3,5,7:26=", Answer: "3*7+5", Fields: map[string]any{"numbers": []int{3, 5, 7}, "target": 26}}
	f.Fuzz(func(t *testing.T, s string) {
		for _, task := range []Task{arith, count} {
			if v := task.Score(ex, s); v != 0 && v != 1 {
				t.Fatalf("score %v", v)
			}
		}
	})
}

func FuzzReadJSONL(f *testing.F) {
	for _, s := range []string{`{"prompt": "a"}`, `{"prompt": 1}`, "{\n}", `{"m": [{"role": "u", "content": "c"}]}`, "\xef\xbb\xbf{}"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, messages bool) {
		opts := JSONLOptions{SkipBadLines: true}
		if messages {
			opts.MessagesField = "m"
		}
		ds, err := ReadJSONL(strings.NewReader(s), "f", opts)
		if err == nil && len(ds.Examples) == 0 {
			t.Fatal("no error and no examples")
		}
	})
}
