package data

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// LoadDataset reads a prompt file, Parquet when its name ends in
// .parquet and JSONL otherwise.
func LoadDataset(path string, opts JSONLOptions) (*Dataset, error) {
	if IsParquet(path) {
		return LoadParquet(path, opts)
	}
	return LoadJSONL(path, opts)
}

// IsParquet reports whether a file name is a Parquet file's.
func IsParquet(path string) bool {
	return strings.HasSuffix(strings.ToLower(path), ".parquet")
}

// LoadParquet reads a Parquet prompt file, such as the train.parquet and
// test.parquet that verl's data preprocessing scripts write.
func LoadParquet(path string, opts JSONLOptions) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load dataset: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load dataset: %w", err)
	}
	return ReadParquet(f, st.Size(), path, opts)
}

// parquetBatch is how many rows are decoded at a time.
const parquetBatch = 256

// ReadParquet reads Parquet prompts; name prefixes error messages, which
// name the row (counted from 1). Each row becomes a record of its columns
// (structs as objects, lists as arrays) mapped as a JSONL line's fields
// are. A malformed row fails the read unless opts.SkipBadLines is set; a
// file that is not valid Parquet always fails.
func ReadParquet(r io.ReaderAt, size int64, name string, opts JSONLOptions) (ds *Dataset, err error) {
	opts = opts.withDefaults()
	// The library panics on some corrupt files; a user gets an error.
	defer func() {
		if p := recover(); p != nil {
			ds, err = nil, fmt.Errorf("%s: not a readable Parquet file: %v", name, p)
		}
	}()
	file, err := parquet.OpenFile(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable Parquet file: %w", name, err)
	}
	reader := parquet.NewGenericReader[any](file)
	defer reader.Close()
	ds = &Dataset{Source: name}
	buf := make([]any, parquetBatch)
	for {
		n, readErr := reader.Read(buf)
		for _, row := range buf[:n] {
			ds.Lines++
			ex, err := parquetExample(row, opts)
			if err := ds.add(ex, err, opts, fmt.Sprintf("%s row %d", name, ds.Lines), fmt.Sprintf("%s: row %d", name, ds.Lines)); err != nil {
				return nil, err
			}
		}
		clear(buf[:n])
		if errors.Is(readErr, io.EOF) {
			break
		}
		if readErr != nil {
			return nil, fmt.Errorf("%s: after row %d: %w", name, ds.Lines, readErr)
		}
		if n == 0 {
			break
		}
	}
	if len(ds.Examples) == 0 {
		if ds.Skipped > 0 {
			return nil, fmt.Errorf("%s: no usable examples (%d malformed rows skipped; first: %v)", name, ds.Skipped, ds.SkipErrors[0])
		}
		return nil, fmt.Errorf("%s: no examples", name)
	}
	return ds, nil
}

func parquetExample(row any, opts JSONLOptions) (Example, error) {
	rec, ok := row.(map[string]any)
	if !ok {
		return Example{}, fmt.Errorf("want a row of named columns, got %s", kindOf(row))
	}
	return recordExample(rec, opts)
}
