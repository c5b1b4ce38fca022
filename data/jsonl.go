package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// JSONLOptions says which JSON fields of a prompt file mean what. Fields not
// named here are kept in Example.Fields for the rewards.
type JSONLOptions struct {
	PromptField   string // plain-text prompt; default "prompt"
	MessagesField string // chat prompt [{role, content}]; when set, used instead of PromptField
	AnswerField   string // reference answer (string or number); default "answer"; optional per line
	SystemField   string // optional system prompt; "" means none
	IDField       string // optional example id (string or number); default "id"
	SkipBadLines  bool   // skip and count malformed lines instead of failing
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

// ReadJSONL reads JSONL prompts from r; name prefixes error messages.
// A malformed line fails with "name:line: what is wrong" unless
// opts.SkipBadLines is set, in which case it is counted in Skipped. Empty
// lines are ignored. Zero usable examples is an error.
func ReadJSONL(r io.Reader, name string, opts JSONLOptions) (*Dataset, error) {
	opts = opts.withDefaults()
	ds := &Dataset{Source: name}
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		line, readErr := br.ReadBytes('\n')
		if len(line) > 0 || readErr == nil {
			ds.Lines++
			if ds.Lines == 1 {
				line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // UTF-8 byte-order mark
			}
			line = bytes.TrimSpace(line)
			if len(line) > 0 {
				ex, err := parseLine(line, opts)
				if err != nil {
					err = fmt.Errorf("%s:%d: %w", name, ds.Lines, err)
					if !opts.SkipBadLines {
						return nil, err
					}
					ds.Skipped++
					if len(ds.SkipErrors) < maxSkipErrors {
						ds.SkipErrors = append(ds.SkipErrors, err)
					}
				} else {
					if ex.ID == "" {
						ex.ID = strconv.Itoa(ds.Lines)
					}
					ds.Examples = append(ds.Examples, ex)
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

func parseLine(line []byte, opts JSONLOptions) (Example, error) {
	var ex Example
	if line[0] != '{' {
		return ex, errors.New("want a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return ex, fmt.Errorf("bad JSON: %w", err)
	}
	used := map[string]bool{}
	if opts.MessagesField != "" {
		msgRaw, ok := raw[opts.MessagesField]
		if !ok {
			return ex, fmt.Errorf("missing field %q", opts.MessagesField)
		}
		used[opts.MessagesField] = true
		msgs, err := parseMessages(msgRaw, opts.MessagesField)
		if err != nil {
			return ex, err
		}
		ex.Messages = msgs
	} else {
		p, ok := raw[opts.PromptField]
		if !ok {
			return ex, fmt.Errorf("missing field %q", opts.PromptField)
		}
		used[opts.PromptField] = true
		s, err := stringField(p, opts.PromptField)
		if err != nil {
			return ex, err
		}
		if s == "" {
			return ex, fmt.Errorf("field %q: empty prompt", opts.PromptField)
		}
		ex.Prompt = s
	}
	if a, ok := raw[opts.AnswerField]; ok {
		used[opts.AnswerField] = true
		s, err := scalarText(a, opts.AnswerField)
		if err != nil {
			return ex, err
		}
		ex.Answer = s
	}
	if opts.SystemField != "" {
		if s, ok := raw[opts.SystemField]; ok {
			used[opts.SystemField] = true
			v, err := stringField(s, opts.SystemField)
			if err != nil {
				return ex, err
			}
			ex.System = v
		}
	}
	if id, ok := raw[opts.IDField]; ok {
		used[opts.IDField] = true
		s, err := scalarText(id, opts.IDField)
		if err != nil {
			return ex, err
		}
		ex.ID = s
	}
	for k, v := range raw {
		if used[k] {
			continue
		}
		var val any
		if err := json.Unmarshal(v, &val); err != nil {
			return ex, fmt.Errorf("field %q: %w", k, err)
		}
		if ex.Fields == nil {
			ex.Fields = map[string]any{}
		}
		ex.Fields[k] = val
	}
	return ex, nil
}

// jsonKind names the JSON type of a raw value for error messages.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func stringField(raw json.RawMessage, field string) (string, error) {
	if jsonKind(raw) != "string" {
		return "", fmt.Errorf("field %q: want a string, got %s", field, jsonKind(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("field %q: %w", field, err)
	}
	return s, nil
}

// scalarText accepts a string or a number (kept as written, so 42 and "42"
// give the same answer text).
func scalarText(raw json.RawMessage, field string) (string, error) {
	switch jsonKind(raw) {
	case "string":
		return stringField(raw, field)
	case "number":
		return string(bytes.TrimSpace(raw)), nil
	default:
		return "", fmt.Errorf("field %q: want a string or a number, got %s", field, jsonKind(raw))
	}
}

func parseMessages(raw json.RawMessage, field string) ([]Message, error) {
	if jsonKind(raw) != "array" {
		return nil, fmt.Errorf("field %q: want an array of {role, content}, got %s", field, jsonKind(raw))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("field %q: %w", field, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("field %q: empty message list", field)
	}
	msgs := make([]Message, 0, len(items))
	for i, it := range items {
		where := fmt.Sprintf("%s[%d]", field, i)
		if jsonKind(it) != "object" {
			return nil, fmt.Errorf("field %q: want an object, got %s", where, jsonKind(it))
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(it, &obj); err != nil {
			return nil, fmt.Errorf("field %q: %w", where, err)
		}
		var m Message
		for _, k := range []string{"role", "content"} {
			v, ok := obj[k]
			if !ok {
				return nil, fmt.Errorf("field %q: missing %q", where, k)
			}
			s, err := stringField(v, where+"."+k)
			if err != nil {
				return nil, err
			}
			if k == "role" {
				m.Role = s
			} else {
				m.Content = s
			}
		}
		if m.Role == "" {
			return nil, fmt.Errorf("field %q: empty role", where)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}
