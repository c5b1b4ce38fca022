package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// eachJSONLine reads the JSONL file at path ("-": standard input) and
// calls fn with each non-blank line, decoded strictly (an unknown field is
// an error), and its line number. A line that does not decode, or fn's
// error, ends it with an error prefixed by the file and line. It returns
// the input's name for further messages ("stdin" for "-").
func eachJSONLine[T any](path string, fn func(line int, v *T) error) (name string, err error) {
	var in io.Reader = os.Stdin
	name = "stdin"
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return path, fmt.Errorf("open input: %w", err)
		}
		defer file.Close()
		in, name = file, path
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for lineNo := 1; sc.Scan(); lineNo++ {
		raw := sc.Bytes()
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		var v T
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		err := dec.Decode(&v)
		if err == nil {
			err = fn(lineNo, &v)
		}
		if err != nil {
			return name, fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
	}
	if err := sc.Err(); err != nil {
		return name, fmt.Errorf("read %s: %w", name, err)
	}
	return name, nil
}
