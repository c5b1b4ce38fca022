package data

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
)

// JSONLOptions says which fields of a prompt file (JSONL or Parquet) mean
// what; a name with dots reaches into nested objects
// ("reward_model.ground_truth"). Fields not named here are kept in
// Example.Fields for the rewards. See record.go for the TRL and verl
// layouts understood with the defaults.
type JSONLOptions struct {
	PromptField   string // prompt: text, or a list of {role, content} messages; default "prompt"
	MessagesField string // chat prompt [{role, content}]; when set, used instead of PromptField
	AnswerField   string // reference answer (string or number); default "answer" (then reward_model.ground_truth, then a TRL completion); optional per line
	SystemField   string // optional system prompt; "" means none
	IDField       string // optional example id (string or number); default "id" (then extra_info.index)
	SkipBadLines  bool   // skip and count malformed lines (rows) instead of failing
}

func (o JSONLOptions) withDefaults() JSONLOptions {
	if o.PromptField == "" {
		o.PromptField = "prompt"
	}
	if o.AnswerField == "" {
		o.AnswerField = "answer"
	}
	if o.IDField == "" {
		o.IDField = "id"
	}
	return o
}

// Dataset is a loaded prompt file.
type Dataset struct {
	Source   string    // file name, used in messages
	Examples []Example // usable examples in file order
	Lines    int       // lines read, empty ones included
	Skipped  int       // malformed lines skipped (only with SkipBadLines)
	// SkipErrors holds the first few skipped lines' errors so a user can see
	// what was wrong without the log drowning in them.
	SkipErrors []error
}

const maxSkipErrors = 5

// LoadJSONL reads a JSONL prompt file.
func LoadJSONL(path string, opts JSONLOptions) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load dataset: %w", err)
	}
	defer f.Close()
	return ReadJSONL(f, path, opts)
}

// add appends ex, read from the row at where, to ds, with the row's
// number as its ID when it has none. A row that could not be read (err)
// is an error naming errWhere, or with opts.SkipBadLines is counted and
// skipped (the first few errors kept).
func (ds *Dataset) add(ex Example, err error, opts JSONLOptions, where, errWhere string) error {
	if err != nil {
		err = fmt.Errorf("%s: %w", errWhere, err)
		if !opts.SkipBadLines {
			return err
		}
		ds.Skipped++
		if len(ds.SkipErrors) < maxSkipErrors {
			ds.SkipErrors = append(ds.SkipErrors, err)
		}
		return nil
	}
	if ex.ID == "" {
		ex.ID = strconv.Itoa(ds.Lines)
	}
	ex.Where = where
	ds.Examples = append(ds.Examples, ex)
	return nil
}

// ReadJSONL reads JSONL prompts from r; name prefixes error messages.
// A malformed line fails with "name:line: what is wrong" unless
// opts.SkipBadLines is set, in which case it is counted in Skipped. Empty
// lines are ignored. Zero usable examples is an error.
func ReadJSONL(r io.Reader, name string, opts JSONLOptions) (*Dataset, error) {
	opts = opts.withDefaults()
	ds := &Dataset{Source: name}
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		line, tooLong, readErr := readLine(br, MaxLineBytes)
		if len(line) > 0 || tooLong || readErr == nil {
			ds.Lines++
			if ds.Lines == 1 {
				line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // UTF-8 byte-order mark
			}
			line = bytes.TrimSpace(line)
			if len(line) > 0 || tooLong {
				var ex Example
				var err error
				if tooLong {
					err = fmt.Errorf("line longer than %d bytes", MaxLineBytes)
				} else {
					ex, err = parseLine(line, opts)
				}
				where := name + ":" + strconv.Itoa(ds.Lines)
				if err := ds.add(ex, err, opts, where, where); err != nil {
					return nil, err
				}
			}
		}
		if readErr == io.EOF {
			break
		}
		if readErr != nil {
			return nil, fmt.Errorf("read %s: %w", name, readErr)
		}
	}
	if len(ds.Examples) == 0 {
		if ds.Skipped > 0 {
			return nil, fmt.Errorf("%s: no usable examples (%d malformed lines skipped; first: %v)", name, ds.Skipped, ds.SkipErrors[0])
		}
		return nil, fmt.Errorf("%s: no examples", name)
	}
	return ds, nil
}

// MaxLineBytes bounds one line of a JSONL prompt file: a prompt file is
// read line by line, and a line longer than this (a file that is not JSONL,
// a runaway field) is an error naming the line, found without holding it
// in memory. Prompts are far shorter than any model's context at this size.
const MaxLineBytes = 16 << 20

// readLine reads the next line (with its newline) of at most max bytes.
// A longer line is consumed to its end and reported as tooLong, without
// its content.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return line, tooLong, err
	}
}

// parseLine decodes one JSONL line and maps its fields (see record.go).
func parseLine(line []byte, opts JSONLOptions) (Example, error) {
	rec, err := decodeJSONRecord(line)
	if err != nil {
		return Example{}, err
	}
	return recordExample(rec, opts)
}
