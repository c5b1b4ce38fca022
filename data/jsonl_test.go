package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadJSONLValid(t *testing.T) {
	in := "\xef\xbb\xbf" + `{"prompt": "2+2=", "answer": 4, "id": 7, "difficulty": "easy", "tags": ["a"]}` + "\r\n" +
		"\n   \n" +
		`{"prompt": "Name a color.", "answer": "red", "sys": "Be brief."}` + "\n" +
		`{"prompt": "no answer"}` // no trailing newline
	ds, err := ReadJSONL(strings.NewReader(in), "p.jsonl", JSONLOptions{SystemField: "sys"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Example{
		{ID: "7", Prompt: "2+2=", Answer: "4", Fields: map[string]any{"difficulty": "easy", "tags": []any{"a"}}},
		{ID: "4", Prompt: "Name a color.", Answer: "red", System: "Be brief."},
		{ID: "5", Prompt: "no answer"},
	}
	if !reflect.DeepEqual(withoutWhere(ds.Examples...), want) {
		t.Fatalf("examples:\n got %#v\nwant %#v", ds.Examples, want)
	}
	if ds.Lines != 5 || ds.Skipped != 0 {
		t.Fatalf("lines %d skipped %d, want 5 and 0", ds.Lines, ds.Skipped)
	}
}

func TestReadJSONLMessages(t *testing.T) {
	in := `{"conv": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}], "gold": "x"}`
	ds, err := ReadJSONL(strings.NewReader(in), "c.jsonl", JSONLOptions{MessagesField: "conv", AnswerField: "gold"})
	if err != nil {
		t.Fatal(err)
	}
	want := Example{ID: "1", Messages: []Message{{"system", "S"}, {"user", "hi"}}, Answer: "x"}
	if !reflect.DeepEqual(withoutWhere(ds.Examples[0])[0], want) {
		t.Fatalf("got %#v, want %#v", ds.Examples[0], want)
	}
}

func TestReadJSONLErrors(t *testing.T) {
	good := `{"prompt": "ok"}` + "\n"
	tests := []struct {
		name string
		in   string
		opts JSONLOptions
		want string
	}{
		{"bad json", good + "\n" + `{"prompt": "x",}`, JSONLOptions{}, "f.jsonl:3: bad JSON"},
		{"not an object", good + `["prompt"]`, JSONLOptions{}, "f.jsonl:2: want a JSON object"},
		{"missing prompt", good + good + `{"question": "x"}`, JSONLOptions{}, `f.jsonl:3: missing field "prompt"`},
		{"custom prompt field missing", good, JSONLOptions{PromptField: "q"}, `f.jsonl:1: missing field "q"`},
		{"prompt wrong type", `{"prompt": 12}`, JSONLOptions{}, `f.jsonl:1: field "prompt": want a string, got number`},
		{"empty prompt", `{"prompt": ""}`, JSONLOptions{}, `f.jsonl:1: field "prompt": empty prompt`},
		{"answer wrong type", good + `{"prompt": "x", "answer": [1]}`, JSONLOptions{}, `f.jsonl:2: field "answer": want a string or a number, got array`},
		{"system wrong type", `{"prompt": "x", "sys": null}`, JSONLOptions{SystemField: "sys"}, `f.jsonl:1: field "sys": want a string, got null`},
		{"messages not array", `{"m": "hi"}`, JSONLOptions{MessagesField: "m"}, `f.jsonl:1: field "m": want an array of {role, content}, got string`},
		{"message missing content", `{"m": [{"role": "user"}]}`, JSONLOptions{MessagesField: "m"}, `f.jsonl:1: field "m[0]": missing "content"`},
		{"message content wrong type", `{"m": [{"role": "user", "content": 3}]}`, JSONLOptions{MessagesField: "m"}, `f.jsonl:1: field "m[0].content": want a string, got number`},
		{"empty messages", `{"m": []}`, JSONLOptions{MessagesField: "m"}, `f.jsonl:1: field "m": empty message list`},
		{"empty file", "\n\n", JSONLOptions{}, "f.jsonl: no examples"},
		{"all bad, skipping", "{\n[\n", JSONLOptions{SkipBadLines: true}, "f.jsonl: no usable examples (2 malformed lines skipped; first: f.jsonl:1: bad JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadJSONL(strings.NewReader(tt.in), "f.jsonl", tt.opts)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestReadJSONLSkipBadLines(t *testing.T) {
	in := `{"prompt": "a"}` + "\n" + `{oops` + "\n" + `{"prompt": 3}` + "\n" + `{"prompt": "b"}` + "\n"
	ds, err := ReadJSONL(strings.NewReader(in), "s.jsonl", JSONLOptions{SkipBadLines: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Examples) != 2 || ds.Skipped != 2 || len(ds.SkipErrors) != 2 {
		t.Fatalf("examples %d skipped %d errors %d, want 2 2 2", len(ds.Examples), ds.Skipped, len(ds.SkipErrors))
	}
	if !strings.HasPrefix(ds.SkipErrors[1].Error(), "s.jsonl:3:") {
		t.Fatalf("second skip error %q does not name line 3", ds.SkipErrors[1])
	}
}

func TestLoadJSONLFileAndLongLine(t *testing.T) {
	long := strings.Repeat("x", 200_000) // longer than bufio.Scanner's default limit
	path := filepath.Join(t.TempDir(), "long.jsonl")
	if err := os.WriteFile(path, []byte(`{"prompt": "`+long+`"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := LoadJSONL(path, JSONLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Examples[0].Prompt != long {
		t.Fatal("long prompt was not read whole")
	}
	if _, err := LoadJSONL(filepath.Join(t.TempDir(), "missing.jsonl"), JSONLOptions{}); err == nil {
		t.Fatal("missing file: no error")
	}
}

// TRL's conversational layouts and verl's nested answer, read with the
// default options.
func TestReadJSONLConversational(t *testing.T) {
	in := strings.Join([]string{
		// A conversational prompt (GRPOTrainer) with a solution column.
		`{"prompt": [{"role": "system", "content": "Think first."}, {"role": "user", "content": "2+2?"}], "solution": "4"}`,
		// A "messages" dataset (SFTTrainer): the final assistant turn is the target.
		`{"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "hi"}]}`,
		// Prompt-completion, conversational.
		`{"prompt": [{"role": "user", "content": "3+3?"}], "completion": [{"role": "assistant", "content": "6"}]}`,
		// Prompt-completion, plain text.
		`{"prompt": "The sky is", "completion": " blue."}`,
		// verl's layout in JSON.
		`{"data_source": "gsm8k", "prompt": [{"role": "user", "content": "5-1?"}], "reward_model": {"ground_truth": 4, "style": "rule"}, "extra_info": {"index": 17}}`,
		// An explicit answer wins over a completion.
		`{"prompt": "x", "answer": "a", "completion": "c"}`,
	}, "\n")
	ds, err := ReadJSONL(strings.NewReader(in), "trl.jsonl", JSONLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Example{
		{ID: "1", Messages: []Message{{"system", "Think first."}, {"user", "2+2?"}}, Fields: map[string]any{"solution": "4"}},
		{ID: "2", Messages: []Message{{"user", "Say hi."}}, Answer: "hi"},
		{ID: "3", Messages: []Message{{"user", "3+3?"}}, Answer: "6"},
		{ID: "4", Prompt: "The sky is", Answer: " blue."},
		{ID: "17", Messages: []Message{{"user", "5-1?"}}, Answer: "4", Fields: map[string]any{
			"data_source": "gsm8k", "reward_model": map[string]any{"ground_truth": 4.0, "style": "rule"}, "extra_info": map[string]any{"index": 17.0}}},
		{ID: "6", Prompt: "x", Answer: "a", Fields: map[string]any{"completion": "c"}},
	}
	if !reflect.DeepEqual(withoutWhere(ds.Examples...), want) {
		t.Fatalf("examples:\n got %#v\nwant %#v", ds.Examples, want)
	}

	// A named answer field by dotted path; a named field is not replaced by
	// the verl or TRL fallbacks.
	ds, err = ReadJSONL(strings.NewReader(`{"prompt": "q", "meta": {"gold": {"v": "x"}}, "completion": "c"}`), "n.jsonl", JSONLOptions{AnswerField: "meta.gold.v"})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Examples[0].Answer != "x" {
		t.Fatalf("dotted answer: %#v", ds.Examples[0])
	}
	ds, err = ReadJSONL(strings.NewReader(`{"prompt": "q", "completion": "c"}`), "n.jsonl", JSONLOptions{AnswerField: "gold"})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Examples[0].Answer != "" {
		t.Fatalf("named answer field fell back: %#v", ds.Examples[0])
	}
}

func TestReadJSONLConversationalErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"messages": [{"role": "assistant", "content": "x"}]}`, `c.jsonl:1: field "messages": the only message is the assistant's`},
		{`{"prompt": "q", "completion": [{"role": "user", "content": "x"}]}`, `c.jsonl:1: field "completion": message 0 has role "user"`},
		{`{"prompt": [{"role": "user", "content": 5}]}`, `c.jsonl:1: field "prompt[0].content": want a string, got number`},
		{`{"prompt": []}`, `c.jsonl:1: field "prompt": empty message list`},
		{`{"prompt": "q", "reward_model": {"ground_truth": [1, 2]}}`, `c.jsonl:1: field "reward_model.ground_truth": want a string or a number, got array`},
		{`{"question": "q"}`, `c.jsonl:1: missing field "prompt" (the record has question)`},
	}
	for _, tc := range tests {
		_, err := ReadJSONL(strings.NewReader(tc.in), "c.jsonl", JSONLOptions{})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want prefix %q", tc.in, err, tc.want)
		}
	}
}

// withoutWhere clears Example.Where (checked on its own) for comparisons.
func withoutWhere(exs ...Example) []Example {
	out := make([]Example, len(exs))
	for i, ex := range exs {
		ex.Where = ""
		out[i] = ex
	}
	return out
}

func TestReadJSONLWhereAndLongLines(t *testing.T) {
	in := "{\"prompt\": \"a\"}\n\n{\"prompt\": \"" + strings.Repeat("x", MaxLineBytes) + "\"}\n{\"prompt\": \"b\"}\n"
	_, err := ReadJSONL(strings.NewReader(in), "p.jsonl", JSONLOptions{})
	if err == nil || !strings.Contains(err.Error(), "p.jsonl:3: line longer than 16777216 bytes") {
		t.Fatalf("error %v, want the long line named", err)
	}
	ds, err := ReadJSONL(strings.NewReader(in), "p.jsonl", JSONLOptions{SkipBadLines: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Examples) != 2 || ds.Examples[0].Where != "p.jsonl:1" || ds.Examples[1].Where != "p.jsonl:4" || ds.Skipped != 1 {
		t.Errorf("examples %d (%q, %q), skipped %d", len(ds.Examples), ds.Examples[0].Where, ds.Examples[len(ds.Examples)-1].Where, ds.Skipped)
	}
}
