// Package verltest writes parquet files in the layout verl's preprocessing
// scripts (examples/data_preprocess/gsm8k.py) produce through Hugging Face
// datasets and pyarrow, for tests of the readers and of the recipes that
// take verl's data: every column nullable, the prompt a three-level LIST of
// structs, snappy pages.
package verltest

import (
	"bytes"
	"os"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type Message struct {
	Content *string `parquet:"content,optional"`
	Role    *string `parquet:"role,optional"`
}

type RewardModel struct {
	GroundTruth *string `parquet:"ground_truth,optional"`
	Style       *string `parquet:"style,optional"`
}

type ExtraInfo struct {
	Answer   *string `parquet:"answer,optional"`
	Index    *int64  `parquet:"index,optional"`
	Question *string `parquet:"question,optional"`
	Split    *string `parquet:"split,optional"`
}

// Row is one row of verl's GSM8K files.
type Row struct {
	DataSource  *string     `parquet:"data_source,optional"`
	Prompt      []Message   `parquet:"prompt,list"`
	Ability     *string     `parquet:"ability,optional"`
	RewardModel RewardModel `parquet:"reward_model"`
	ExtraInfo   ExtraInfo   `parquet:"extra_info"`
}

func ptr[T any](v T) *T { return &v }

// GSM8KRow builds row i as verl's gsm8k preprocessing does: the question
// with an instruction appended as the user turn, the number after "####"
// (answer) as the ground truth, the full solution in extra_info.
func GSM8KRow(i int64, question, solution, answer, split string) Row {
	return Row{
		DataSource: ptr("openai/gsm8k"),
		Prompt: []Message{{
			Content: ptr(question + ` Let's think step by step and output the final answer after "####".`),
			Role:    ptr("user"),
		}},
		Ability:     ptr("math"),
		RewardModel: RewardModel{GroundTruth: ptr(answer), Style: ptr("rule")},
		ExtraInfo:   ExtraInfo{Answer: ptr(solution), Index: ptr(i), Question: ptr(question), Split: ptr(split)},
	}
}

// WriteParquet writes rows to path as one parquet file.
func WriteParquet[T any](t testing.TB, path string, rows []T, opts ...parquet.WriterOption) {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Snappy is the compression pyarrow writes by default.
var Snappy = parquet.Compression(&parquet.Snappy)
