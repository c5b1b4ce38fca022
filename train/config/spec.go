package config

import "github.com/rltrain/rltrain/data"

// DataSpec converts the data section into what data.Open takes; the data
// order is seeded by train.seed.
func (c *Config) DataSpec() data.Spec {
	d := c.Data
	return data.Spec{
		Train:      d.Train,
		Eval:       d.Eval,
		Task:       d.Task,
		TaskParams: d.TaskParams,
		JSONL: data.JSONLOptions{
			PromptField:   d.PromptField,
			MessagesField: d.MessagesField,
			AnswerField:   d.AnswerField,
			SystemField:   d.SystemField,
			IDField:       d.IDField,
			SkipBadLines:  d.SkipBadLines,
		},
		EvalFraction: d.EvalFraction,
		EvalSize:     d.EvalSize,
		Shuffle:      d.Shuffle,
		Seed:         uint64(c.Train.Seed),
	}
}
