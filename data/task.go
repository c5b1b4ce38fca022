package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Split selects a task's training stream or its held-out evaluation stream.
type Split int

const (
	Train Split = iota
	Eval
)

func (s Split) String() string {
	if s == Eval {
		return "eval"
	}
	return "train"
}

// Task is a built-in synthetic task: an infinite seeded prompt generator
// paired with its verifier. Generate is a pure function of (seed, split, i),
// so streams need no storage and resume trivially.
type Task interface {
	Name() string
	// Describe names the task and its resolved parameters; two tasks with the
	// same description generate the same streams.
	Describe() string
	Generate(seed uint64, split Split, i uint64) Example
	// Score returns 1 for a correct completion of ex and 0 otherwise. It
	// is the verifier of the reward Reward names, so eval accuracy and the
	// training reward are the same function.
	Score(ex Example, completion string) float64
	// Reward names the registered reward type (and its parameters) that
	// judges the task's completions like Score: the training reward when
	// a run configures none.
	Reward() (typ string, params map[string]any)
	// Alphabet lists, sorted, every character a prompt or reference
	// answer can contain: the vocabulary a character-level tokenizer for
	// the task needs (plus its special tokens).
	Alphabet() string
}

// alphabet returns the sorted distinct characters of the given strings.
func alphabet(parts ...string) string {
	seen := map[rune]bool{}
	var rs []rune
	for _, p := range parts {
		for _, r := range p {
			if !seen[r] {
				seen[r] = true
				rs = append(rs, r)
			}
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
	return string(rs)
}

// TaskNames lists the built-in tasks.
func TaskNames() []string { return []string{"arithmetic", "countdown"} }

// NewTask builds a built-in task from its parameters (as found under
// data.task_params in a run config). Unknown parameters are errors.
func NewTask(name string, params map[string]any) (Task, error) {
	switch name {
	case "arithmetic":
		return newArithmetic(params)
	case "countdown":
		return newCountdown(params)
	default:
		return nil, fmt.Errorf("unknown task %q (built-in tasks: %s)", name, strings.Join(TaskNames(), ", "))
	}
}

// EvalSet returns the first n examples of a task's held-out stream.
func EvalSet(t Task, seed uint64, n int) []Example {
	out := make([]Example, n)
	for i := range out {
		out[i] = t.Generate(seed, Eval, uint64(i))
	}
	return out
}

// maxHoldoutAttempts bounds the search for a prompt on the right side of the
// held-out partition; only a prompt space of a handful of prompts exhausts it.
const maxHoldoutAttempts = 1000

// generateSplit draws example i of a split. Train and eval streams use
// different derived seeds, and, when holdout > 0, prompts are partitioned by
// a hash of their text: a fraction holdout of all possible prompts is
// reserved for eval and never appears in training, so eval accuracy measures
// generalisation rather than memorisation.
func generateSplit(seed uint64, split Split, i uint64, holdout float64, gen func(r *rng) Example) Example {
	tag := tagTaskTrain
	if split == Eval {
		tag = tagTaskEval
	}
	var ex Example
	for attempt := uint64(0); attempt < maxHoldoutAttempts; attempt++ {
		ex = gen(newRNG(deriveSeed(seed, tag, i, attempt)))
		if holdout <= 0 || heldOut(ex.Prompt, holdout) == (split == Eval) {
			break
		}
	}
	return ex
}

// heldOut reports whether prompt falls in the reserved eval fraction. It
// depends on the prompt text only, not the seed, so every run of a task
// configuration holds out the same prompts.
func heldOut(prompt string, fraction float64) bool {
	h := fnv.New64a()
	h.Write([]byte(prompt))
	return float64(mix64(h.Sum64())>>11)/(1<<53) < fraction
}

// ParamError is a problem with one named task parameter, so that a config
// loader can point at the line that set it.
type ParamError struct {
	Task, Param, Msg string
}

func (e *ParamError) Error() string { return "task " + e.Task + ": " + e.Msg }

// decodeParams fills dst (a pointer to a struct with json tags) from a
// parameter map, rejecting unknown names and wrong types with messages that
// name the parameter.
func decodeParams(task string, params map[string]any, dst any) error {
	known := map[string]bool{}
	t := reflect.TypeOf(dst).Elem()
	var names []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		known[name] = true
		names = append(names, name)
	}
	sort.Strings(names)
	// Sorted, to report the same unknown key every time.
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if !known[k] {
			return &ParamError{Task: task, Param: k, Msg: fmt.Sprintf("unknown parameter %q (known: %s)", k, strings.Join(names, ", "))}
		}
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("task %s: parameters: %w", task, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &ParamError{Task: task, Param: te.Field, Msg: fmt.Sprintf("parameter %q: want %s, got %s", te.Field, te.Type, te.Value)}
		}
		return fmt.Errorf("task %s: parameters: %w", task, err)
	}
	return nil
}
