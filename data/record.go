package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// A record is one row of a dataset decoded into Go values: a JSONL line
// (numbers as json.Number, so 42 and "42" give the same answer text) or a
// Parquet row (strings, integers, floats, booleans, nil, []any for lists
// and map[string]any for structs). Both go through recordExample, so the
// field options mean the same for every format.
//
// The layouts understood without options, besides a plain prompt and
// answer:
//
//   - TRL's conversational prompts: a prompt that is a list of
//     {role, content} messages is a chat prompt.
//   - TRL's "messages" datasets (no prompt field, a messages list): a
//     chat whose final assistant turn is the completion to learn.
//   - TRL's prompt-completion datasets: a completion (text, or a list of
//     assistant messages) is the answer when there is no answer field.
//   - verl's parquet schema: prompt as a message list, the answer in
//     reward_model.ground_truth, extra_info.index as the id; data_source,
//     extra_info and every other column go to the rewards as fields.

// Field names and paths tried when the options keep their defaults.
const (
	defaultPrompt   = "prompt"
	defaultAnswer   = "answer"
	defaultID       = "id"
	trlMessages     = "messages"
	trlCompletion   = "completion"
	verlGroundTruth = "reward_model.ground_truth"
	verlIndex       = "extra_info.index"
)

// lookupPath finds a field by name, or a nested one by dotted path
// ("reward_model.ground_truth"). A key that itself contains dots is found
// before any nested one.
func lookupPath(rec map[string]any, path string) (any, bool) {
	if v, ok := rec[path]; ok {
		return v, true
	}
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		return nil, false
	}
	sub, ok := rec[head].(map[string]any)
	if !ok {
		return nil, false
	}
	return lookupPath(sub, rest)
}

// kindOf names a decoded value's type in JSON terms, for messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string, []byte:
		return "string"
	case bool:
		return "boolean"
	case json.Number, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func textValue(v any, field string) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	}
	return "", fmt.Errorf("field %q: want a string, got %s", field, kindOf(v))
}

// scalarValue accepts a string or a number, a number written as it was
// (JSON) or in its shortest decimal form (Parquet).
func scalarValue(v any, field string) (string, error) {
	switch x := v.(type) {
	case string, []byte:
		return textValue(v, field)
	case json.Number:
		return x.String(), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("field %q: want a string or a number, got %s", field, kindOf(v))
}

// messagesValue reads a list of {role, content} objects.
func messagesValue(v any, field string) ([]Message, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("field %q: want an array of {role, content}, got %s", field, kindOf(v))
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("field %q: empty message list", field)
	}
	msgs := make([]Message, 0, len(items))
	for i, it := range items {
		where := fmt.Sprintf("%s[%d]", field, i)
		obj, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field %q: want an object, got %s", where, kindOf(it))
		}
		var m Message
		for _, k := range []string{"role", "content"} {
			raw, ok := obj[k]
			if !ok {
				return nil, fmt.Errorf("field %q: missing %q", where, k)
			}
			s, err := textValue(raw, where+"."+k)
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

// completionValue reads TRL's completion column: text, or a list of
// assistant messages whose contents are joined.
func completionValue(v any, field string) (string, error) {
	if _, ok := v.([]any); !ok {
		return textValue(v, field)
	}
	msgs, err := messagesValue(v, field)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for i, m := range msgs {
		if m.Role != "assistant" {
			return "", fmt.Errorf("field %q: message %d has role %q; a completion holds assistant messages", field, i, m.Role)
		}
		sb.WriteString(m.Content)
	}
	return sb.String(), nil
}

// recordExample builds an Example from one record. Fields not consumed
// whole (the prompt, the answer, the id and the system prompt when they are
// top-level) are kept in Example.Fields for the rewards.
func recordExample(rec map[string]any, opts JSONLOptions) (Example, error) {
	r := &record{fields: rec, used: map[string]bool{}}
	var ex Example
	finalTurn, err := r.prompt(&ex, opts)
	if err != nil {
		return ex, err
	}
	if err := r.answer(&ex, opts, finalTurn); err != nil {
		return ex, err
	}
	if opts.SystemField != "" {
		if sv, ok := lookupPath(rec, opts.SystemField); ok {
			if ex.System, err = textValue(sv, opts.SystemField); err != nil {
				return ex, err
			}
			r.use(opts.SystemField)
		}
	}
	idPaths := []string{opts.IDField}
	if opts.IDField == defaultID {
		idPaths = append(idPaths, verlIndex)
	}
	if ex.ID, _, err = r.firstScalar(idPaths); err != nil {
		return ex, err
	}
	for k, v := range rec {
		if r.used[k] {
			continue
		}
		if ex.Fields == nil {
			ex.Fields = map[string]any{}
		}
		ex.Fields[k] = fieldValue(v)
	}
	return ex, nil
}

// record is a record being read into an Example: which of its top-level
// fields were consumed whole.
type record struct {
	fields map[string]any
	used   map[string]bool
}

func (r *record) use(path string) {
	if _, ok := r.fields[path]; ok {
		r.used[path] = true
	}
}

// prompt reads the prompt, text or messages, into ex. A conversation that
// ends with the assistant holds its own target: the prompt is everything
// before that turn, which is returned.
func (r *record) prompt(ex *Example, opts JSONLOptions) (finalTurn *Message, err error) {
	promptPath, promptIsList := opts.PromptField, false
	if opts.MessagesField != "" {
		promptPath, promptIsList = opts.MessagesField, true
	}
	pv, ok := lookupPath(r.fields, promptPath)
	if !ok && opts.MessagesField == "" && opts.PromptField == defaultPrompt {
		if mv, mok := r.fields[trlMessages]; mok {
			promptPath, pv, ok, promptIsList = trlMessages, mv, true, true
		}
	}
	if !ok {
		return nil, fmt.Errorf("missing field %q (the record has %s)", promptPath, strings.Join(slices.Sorted(maps.Keys(r.fields)), ", "))
	}
	r.use(promptPath)
	if _, isList := pv.([]any); !isList && !promptIsList {
		s, err := textValue(pv, promptPath)
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, fmt.Errorf("field %q: empty prompt", promptPath)
		}
		ex.Prompt = s
		return nil, nil
	}
	if ex.Messages, err = messagesValue(pv, promptPath); err != nil {
		return nil, err
	}
	if n := len(ex.Messages); n > 0 && ex.Messages[n-1].Role == "assistant" {
		if n == 1 {
			return nil, fmt.Errorf("field %q: the only message is the assistant's; a prompt needs a turn before it", promptPath)
		}
		finalTurn = &ex.Messages[n-1]
		ex.Messages = ex.Messages[:n-1]
	}
	return finalTurn, nil
}

// answer reads the reference answer into ex: the answer field (or verl's
// ground truth), else TRL's completion, else the conversation's final
// assistant turn.
func (r *record) answer(ex *Example, opts JSONLOptions, finalTurn *Message) error {
	answerPaths := []string{opts.AnswerField}
	if opts.AnswerField == defaultAnswer {
		answerPaths = append(answerPaths, verlGroundTruth)
	}
	s, found, err := r.firstScalar(answerPaths)
	if err != nil || found || opts.AnswerField != defaultAnswer {
		ex.Answer = s
		return err
	}
	if cv, ok := r.fields[trlCompletion]; ok && cv != nil {
		if ex.Answer, err = completionValue(cv, trlCompletion); err != nil {
			return err
		}
		r.use(trlCompletion)
	} else if finalTurn != nil {
		ex.Answer = finalTurn.Content
	}
	return nil
}

// firstScalar reads the first of paths that holds a non-null value, as
// text; found is false when none does.
func (r *record) firstScalar(paths []string) (s string, found bool, err error) {
	for _, p := range paths {
		if v, ok := lookupPath(r.fields, p); ok && v != nil {
			if s, err = scalarValue(v, p); err != nil {
				return "", false, err
			}
			r.use(p)
			return s, true, nil
		}
	}
	return "", false, nil
}

// fieldValue converts a record value to what rewards receive: JSON
// numbers become float64 as encoding/json decodes them, binary becomes
// text, nested values are converted throughout.
func fieldValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case []byte:
		return string(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = fieldValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = fieldValue(e)
		}
		return out
	}
	return v
}

// decodeJSONRecord decodes one JSON object keeping numbers as written.
func decodeJSONRecord(line []byte) (map[string]any, error) {
	if len(line) == 0 || line[0] != '{' {
		return nil, errors.New("want a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(line)))
	dec.UseNumber()
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("bad JSON: more than one value on the line")
	}
	return rec, nil
}
