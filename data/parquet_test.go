package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/data/verltest"
)

func sp(s string) *string { return &s }

// writeVerlGSM8K writes a small parquet file in verl's GSM8K schema.
func writeVerlGSM8K(t *testing.T, path string) {
	verltest.WriteParquet(t, path, []verltest.Row{
		verltest.GSM8KRow(0, "Natalia sold 48 clips in April and half as many in May. How many in total?",
			"In May she sold 48/2 = <<48/2=24>>24 clips.\nIn total 48+24 = <<48+24=72>>72.\n#### 72", "72", "train"),
		verltest.GSM8KRow(1, "Weng earns $12 an hour. How much for 50 minutes?", "12/60*50 = 10\n#### 10", "10", "train"),
		verltest.GSM8KRow(2, "What is 2+3?", "2+3=5\n#### 5", "5", "train"),
	}, verltest.Snappy)
}

func TestReadParquetVerlSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "train.parquet")
	writeVerlGSM8K(t, path)
	ds, err := LoadDataset(path, JSONLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Examples) != 3 || ds.Lines != 3 || ds.Skipped != 0 {
		t.Fatalf("%d examples, %d rows, %d skipped", len(ds.Examples), ds.Lines, ds.Skipped)
	}
	ex := ds.Examples[0]
	want := Example{
		ID:       "0",
		Messages: []Message{{Role: "user", Content: `Natalia sold 48 clips in April and half as many in May. How many in total? Let's think step by step and output the final answer after "####".`}},
		Answer:   "72",
		Fields: map[string]any{
			"data_source":  "openai/gsm8k",
			"ability":      "math",
			"reward_model": map[string]any{"ground_truth": "72", "style": "rule"},
			"extra_info": map[string]any{
				"answer":   "In May she sold 48/2 = <<48/2=24>>24 clips.\nIn total 48+24 = <<48+24=72>>72.\n#### 72",
				"index":    int64(0),
				"question": "Natalia sold 48 clips in April and half as many in May. How many in total?",
				"split":    "train",
			},
		},
	}
	if !reflect.DeepEqual(withoutWhere(ex)[0], want) {
		t.Fatalf("example:\n got %#v\nwant %#v", ex, want)
	}
	if ds.Examples[2].ID != "2" || ds.Examples[2].Answer != "5" {
		t.Fatalf("third example %#v", ds.Examples[2])
	}

	// Fields by dotted path, as in JSONL.
	ds, err = LoadDataset(path, JSONLOptions{PromptField: "extra_info.question", AnswerField: "extra_info.answer", IDField: "extra_info.split"})
	if err != nil {
		t.Fatal(err)
	}
	if ex := ds.Examples[1]; ex.Prompt != "Weng earns $12 an hour. How much for 50 minutes?" || ex.Answer != "12/60*50 = 10\n#### 10" || ex.ID != "train" {
		t.Fatalf("dotted fields: %#v", ex)
	}
}

type flatRow struct {
	Question string  `parquet:"question"`
	Answer   int64   `parquet:"answer"`
	Level    float64 `parquet:"level"`
	System   string  `parquet:"sys"`
}

func TestReadParquetFlatColumns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flat.parquet")
	verltest.WriteParquet(t, path, []flatRow{{"2+2=", 4, 1.5, "Be brief."}, {"3*3=", 9, 2, ""}})
	ds, err := LoadParquet(path, JSONLOptions{PromptField: "question", SystemField: "sys"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Example{
		{ID: "1", Prompt: "2+2=", Answer: "4", System: "Be brief.", Fields: map[string]any{"level": 1.5}},
		{ID: "2", Prompt: "3*3=", Answer: "9", Fields: map[string]any{"level": 2.0}},
	}
	if !reflect.DeepEqual(withoutWhere(ds.Examples...), want) {
		t.Fatalf("examples:\n got %#v\nwant %#v", ds.Examples, want)
	}
}

type badRow struct {
	Prompt *string `parquet:"prompt,optional"`
	Answer string  `parquet:"answer"`
}

func TestReadParquetErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.parquet")
	verltest.WriteParquet(t, path, []badRow{{sp("ok"), "1"}, {nil, "2"}, {sp(""), "3"}, {sp("fine"), "4"}})
	_, err := LoadParquet(path, JSONLOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), path+`: row 2: field "prompt": want a string, got null`) {
		t.Fatalf("error %v", err)
	}
	ds, err := LoadParquet(path, JSONLOptions{SkipBadLines: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Examples) != 2 || ds.Skipped != 2 || !strings.Contains(ds.SkipErrors[1].Error(), `row 3: field "prompt": empty prompt`) {
		t.Fatalf("skipping: %d examples, %d skipped, %v", len(ds.Examples), ds.Skipped, ds.SkipErrors)
	}
	if _, err := LoadParquet(path, JSONLOptions{PromptField: "question"}); err == nil || !strings.Contains(err.Error(), `row 1: missing field "question" (the record has answer, prompt)`) {
		t.Fatalf("missing field: %v", err)
	}

	// Not Parquet, and a Parquet file cut short: errors, never panics.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"text.parquet":      []byte(`{"prompt": "not parquet"}` + "\n"),
		"truncated.parquet": raw[:len(raw)/2],
		"empty.parquet":     nil,
		"mangled.parquet":   mangle(raw),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadDataset(p, JSONLOptions{}); err == nil || !strings.HasPrefix(err.Error(), p+":") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	if _, err := LoadDataset(filepath.Join(dir, "missing.parquet"), JSONLOptions{}); err == nil {
		t.Error("missing file: no error")
	}
}

// mangle overwrites the middle of a file's data pages, keeping its footer.
func mangle(raw []byte) []byte {
	out := append([]byte(nil), raw...)
	for i := 4; i < len(out)/2; i++ {
		out[i] = byte(i * 31)
	}
	return out
}

func TestOpenParquetTrainAndEval(t *testing.T) {
	dir := t.TempDir()
	train, eval := filepath.Join(dir, "train.parquet"), filepath.Join(dir, "test.parquet")
	writeVerlGSM8K(t, train)
	writeVerlGSM8K(t, eval)
	src, err := Open(Spec{Train: train, Eval: eval, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if src.TrainSize != 3 || len(src.Eval) != 3 {
		t.Fatalf("train %d eval %d", src.TrainSize, len(src.Eval))
	}
	got := src.Train.Next(3)
	answers := map[string]bool{}
	for _, ex := range got {
		answers[ex.Answer] = true
		if len(ex.Messages) != 1 || ex.Fields["data_source"] != "openai/gsm8k" {
			t.Fatalf("example %#v", ex)
		}
	}
	if len(answers) != 3 {
		t.Fatalf("one epoch gave answers %v", answers)
	}
}
