package data

import (
	"fmt"
	"hash/fnv"
)

// Stream hands out training prompts batch after batch and can be resumed:
// a stream restored from Cursor() continues with exactly the prompts the
// original would have produced next.
type Stream interface {
	// Next returns the next b prompts. Batches may span epoch boundaries.
	Next(b int) []Example
	// Cursor describes the position after the last prompt handed out.
	Cursor() Cursor
	// Restore moves the stream to a cursor taken from a stream over the same
	// data; it fails when the cursor belongs to different data or seed.
	Restore(Cursor) error
}

// Cursor is the serialisable (JSON) position of a Stream.
type Cursor struct {
	Kind string `json:"kind"` // "dataset" or "task"
	// Source identifies the data: a fingerprint of the dataset's prompts, or
	// the task's name and parameters. Restoring onto other data fails.
	Source string `json:"source"`
	Seed   uint64 `json:"seed"`
	// Dataset streams: the permutation of Epoch is a function of (Seed,
	// Epoch) only, and Pos is the next position in it.
	Shuffle bool `json:"shuffle,omitempty"`
	Epoch   int  `json:"epoch"`
	Pos     int  `json:"pos"`
	// Task streams: the next example index.
	Index uint64 `json:"index,omitempty"`
	// Served counts prompts handed out since the start, for logging.
	Served uint64 `json:"served"`
}

// Sampler walks a finite dataset in seeded, per-epoch shuffled order.
type Sampler struct {
	examples []Example
	source   string
	seed     uint64
	shuffle  bool
	epoch    int
	pos      int
	served   uint64
	perm     []int // permutation of the current epoch
}

// NewSampler returns a sampler over examples. With shuffle, epoch e visits
// the examples in the order Perm(SplitMix64(derive(seed, e))); without, in
// file order every epoch.
func NewSampler(examples []Example, seed uint64, shuffle bool) (*Sampler, error) {
	if len(examples) == 0 {
		return nil, fmt.Errorf("sampler: no examples")
	}
	s := &Sampler{examples: examples, source: fingerprint(examples), seed: seed, shuffle: shuffle}
	s.perm = s.permutation(0)
	return s, nil
}

// fingerprint hashes the examples' ids and prompts so a cursor cannot be
// restored onto a changed dataset by accident.
func fingerprint(examples []Example) string {
	h := fnv.New64a()
	for _, ex := range examples {
		h.Write([]byte(ex.ID))
		h.Write([]byte{0})
		h.Write([]byte(ex.Prompt))
		for _, m := range ex.Messages {
			h.Write([]byte(m.Role))
			h.Write([]byte{0})
			h.Write([]byte(m.Content))
		}
		h.Write([]byte{1})
	}
	return fmt.Sprintf("n=%d fnv=%016x", len(examples), h.Sum64())
}

func (s *Sampler) permutation(epoch int) []int {
	if !s.shuffle {
		p := make([]int, len(s.examples))
		for i := range p {
			p[i] = i
		}
		return p
	}
	return newRNG(deriveSeed(s.seed, tagEpochPerm, uint64(epoch))).Perm(len(s.examples))
}

// Epoch is the epoch the next prompt comes from.
func (s *Sampler) Epoch() int { return s.epoch }

// NextIndices returns the dataset indices of the next b prompts.
func (s *Sampler) NextIndices(b int) []int {
	out := make([]int, 0, b)
	for len(out) < b {
		if s.pos == len(s.perm) {
			s.epoch++
			s.pos = 0
			s.perm = s.permutation(s.epoch)
		}
		out = append(out, s.perm[s.pos])
		s.pos++
		s.served++
	}
	return out
}

// Next returns the next b prompts.
func (s *Sampler) Next(b int) []Example {
	idx := s.NextIndices(b)
	out := make([]Example, len(idx))
	for i, j := range idx {
		out[i] = s.examples[j]
	}
	return out
}

// Cursor reports the sampler's position.
func (s *Sampler) Cursor() Cursor {
	return Cursor{Kind: "dataset", Source: s.source, Seed: s.seed, Shuffle: s.shuffle,
		Epoch: s.epoch, Pos: s.pos, Served: s.served}
}

// Restore resumes from c.
func (s *Sampler) Restore(c Cursor) error {
	switch {
	case c.Kind != "dataset":
		return fmt.Errorf("restore sampler: cursor is for a %q stream, not a dataset", c.Kind)
	case c.Source != s.source:
		return fmt.Errorf("restore sampler: dataset changed since the cursor was saved (%s, now %s)", c.Source, s.source)
	case c.Seed != s.seed || c.Shuffle != s.shuffle:
		return fmt.Errorf("restore sampler: cursor has seed %d shuffle %v, sampler has seed %d shuffle %v", c.Seed, c.Shuffle, s.seed, s.shuffle)
	case c.Epoch < 0 || c.Pos < 0 || c.Pos > len(s.examples):
		return fmt.Errorf("restore sampler: position epoch %d pos %d out of range for %d examples", c.Epoch, c.Pos, len(s.examples))
	}
	s.epoch, s.pos, s.served = c.Epoch, c.Pos, c.Served
	s.perm = s.permutation(s.epoch)
	return nil
}

// TaskStream serves a built-in task's infinite training stream: the i-th
// prompt is Task.Generate(seed, Train, i).
type TaskStream struct {
	task  Task
	seed  uint64
	index uint64
}

// NewTaskStream starts a task's training stream at index 0.
func NewTaskStream(t Task, seed uint64) *TaskStream { return &TaskStream{task: t, seed: seed} }

// Next returns the next b prompts.
func (s *TaskStream) Next(b int) []Example {
	out := make([]Example, b)
	for i := range out {
		out[i] = s.task.Generate(s.seed, Train, s.index)
		s.index++
	}
	return out
}

// Cursor reports the stream's position.
func (s *TaskStream) Cursor() Cursor {
	return Cursor{Kind: "task", Source: s.task.Describe(), Seed: s.seed, Index: s.index, Served: s.index}
}

// Restore resumes from c.
func (s *TaskStream) Restore(c Cursor) error {
	switch {
	case c.Kind != "task":
		return fmt.Errorf("restore task stream: cursor is for a %q stream, not a task", c.Kind)
	case c.Source != s.task.Describe():
		return fmt.Errorf("restore task stream: task changed since the cursor was saved (%s, now %s)", c.Source, s.task.Describe())
	case c.Seed != s.seed:
		return fmt.Errorf("restore task stream: cursor has seed %d, stream has %d", c.Seed, s.seed)
	}
	s.index = c.Index
	return nil
}
