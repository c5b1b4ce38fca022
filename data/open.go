package data

import (
	"errors"
	"fmt"
)

// Spec says where a run's prompts come from; it mirrors the data section of
// the run config.
type Spec struct {
	Train string // JSONL or Parquet training file (exclusive with Task)
	Eval  string // JSONL or Parquet eval file; empty holds out part of Train
	Task  string // built-in task name (exclusive with Train)
	// TaskParams are the task's parameters (see ArithmeticParams and
	// CountdownParams).
	TaskParams   map[string]any
	JSONL        JSONLOptions
	EvalFraction float64 // share of Train held out when Eval is empty
	EvalSize     int     // examples held out of Train, or a task's eval set size
	Shuffle      bool    // reshuffle file prompts every epoch
	Seed         uint64
}

// Source is an opened prompt source: a resumable training stream and a
// fixed evaluation set.
type Source struct {
	Train Stream
	Eval  []Example
	// Task is the built-in task (nil for JSONL data); its Score is the
	// default reward.
	Task Task
	// TrainSize is the number of training examples, 0 for an infinite
	// task stream.
	TrainSize int
	// TrainExamples are the training examples of a file in file order
	// (nil for a task), for checks that look at every prompt.
	TrainExamples []Example
	// Skipped counts malformed lines skipped in the train and eval files.
	Skipped int

	// How the training examples are ordered, for Filter.
	seed    uint64
	shuffle bool
}

// filterExamples is the examples for which keep returns true.
func filterExamples(exs []Example, keep func(Example) (bool, error)) ([]Example, error) {
	var kept []Example
	for _, ex := range exs {
		ok, err := keep(ex)
		if err != nil {
			return nil, err
		}
		if ok {
			kept = append(kept, ex)
		}
	}
	return kept, nil
}

// Filter drops the examples of a prompt file (training and evaluation)
// for which keep returns false, and rebuilds the training order from the
// same seed; an error from keep ends it. It returns how many training and
// evaluation examples were dropped. A built-in task's stream is left as is.
func (s *Source) Filter(keep func(Example) (bool, error)) (droppedTrain, droppedEval int, err error) {
	if s.Task != nil || s.TrainExamples == nil {
		return 0, 0, nil
	}
	kept, err := filterExamples(s.TrainExamples, keep)
	if err != nil {
		return 0, 0, err
	}
	keptEval, err := filterExamples(s.Eval, keep)
	if err != nil {
		return 0, 0, err
	}
	droppedTrain, droppedEval = len(s.TrainExamples)-len(kept), len(s.Eval)-len(keptEval)
	if droppedTrain == 0 && droppedEval == 0 {
		return 0, 0, nil
	}
	if len(kept) == 0 {
		return droppedTrain, droppedEval, fmt.Errorf("data: all %d training prompts were dropped", len(s.TrainExamples))
	}
	sampler, err := NewSampler(kept, s.seed, s.shuffle)
	if err != nil {
		return droppedTrain, droppedEval, fmt.Errorf("data: %w", err)
	}
	s.Train, s.TrainSize, s.TrainExamples, s.Eval = sampler, len(kept), kept, keptEval
	return droppedTrain, droppedEval, nil
}

// Open loads or generates the prompts a Spec describes.
func Open(s Spec) (*Source, error) {
	switch {
	case s.Train == "" && s.Task == "":
		return nil, errors.New("data: no training prompts: set a train file or a built-in task")
	case s.Train != "" && s.Task != "":
		return nil, errors.New("data: a train file and a built-in task are exclusive")
	}
	if s.Task != "" {
		task, err := NewTask(s.Task, s.TaskParams)
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		if s.EvalSize < 0 {
			return nil, fmt.Errorf("data: eval size must be >= 0, got %d", s.EvalSize)
		}
		return &Source{Train: NewTaskStream(task, s.Seed), Eval: EvalSet(task, s.Seed, s.EvalSize), Task: task}, nil
	}
	train, err := LoadDataset(s.Train, s.JSONL)
	if err != nil {
		return nil, err
	}
	src := &Source{Skipped: train.Skipped}
	examples := train.Examples
	if s.Eval != "" {
		if s.EvalFraction > 0 || s.EvalSize > 0 {
			return nil, errors.New("data: an eval file and a held-out fraction or size are exclusive")
		}
		eval, err := LoadDataset(s.Eval, s.JSONL)
		if err != nil {
			return nil, err
		}
		src.Eval, src.Skipped = eval.Examples, src.Skipped+eval.Skipped
	} else {
		examples, src.Eval, err = SplitEval(examples, s.EvalFraction, s.EvalSize, s.Seed)
		if err != nil {
			return nil, fmt.Errorf("data: %s: %w", s.Train, err)
		}
	}
	sampler, err := NewSampler(examples, s.Seed, s.Shuffle)
	if err != nil {
		return nil, fmt.Errorf("data: %s: %w", s.Train, err)
	}
	src.Train, src.TrainSize, src.TrainExamples = sampler, len(examples), examples
	src.seed, src.shuffle = s.Seed, s.Shuffle
	return src, nil
}
