package tokenizer

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The fast readers must agree with encoding/json wherever they accept the
// input.
func TestFastJSONReaders(t *testing.T) {
	vocabs := []string{
		`{}`,
		` { "a" : 0 , "b":1 } `,
		`{"\u0120the": 5, "\"q\"": 6, "back\\slash": 7, "\n\t\r\b\f\/": 8}`,
		`{"\ud83d\ude00": 9, "\u00e9": 10, "é": 11}`,
		`{"lone \ud800 surrogate": 12}`,
		`{"x": -1}`,
	}
	for _, in := range vocabs {
		got, err := readVocab([]byte(in))
		if err != nil {
			t.Errorf("readVocab(%s): %v", in, err)
			continue
		}
		var want map[string]int
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("readVocab(%s) = %v, encoding/json %v", in, got, want)
		}
	}
	for _, bad := range []string{`{"a": 1.5}`, `{"a": "b"}`, `{"a": 1,}`, `{"a" 1}`, `{"a": 1} x`, `["a"]`, `{"a\q": 1}`} {
		if _, err := readVocab([]byte(bad)); err == nil {
			t.Errorf("readVocab(%s): want an error", bad)
		}
	}
	merges := []struct {
		in   string
		want [][2]string
	}{
		{`[]`, nil},
		{`["a b", "ab c"]`, [][2]string{{"a", "b"}, {"ab", "c"}}},
		{`[["a", "b c"], ["\u0120", "t"]]`, [][2]string{{"a", "b c"}, {"Ġ", "t"}}},
	}
	for _, tc := range merges {
		same := func(a, b [][2]string) bool { return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b)) }
		got, err := readMerges([]byte(tc.in))
		if err != nil || !same(got, tc.want) {
			t.Errorf("readMerges(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		slow, err := parseMerges([]byte(tc.in))
		if err != nil || !same(slow, tc.want) {
			t.Errorf("parseMerges(%s) = %q, %v; want %q", tc.in, slow, err, tc.want)
		}
	}
	for _, bad := range []string{`["ab"]`, `[["a"]]`, `[1]`} {
		if _, err := readMerges([]byte(bad)); err == nil {
			t.Errorf("readMerges(%s): want an error", bad)
		}
	}
}
