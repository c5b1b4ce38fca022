package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/model"
)

type logprobsFlags struct {
	modelDir, input string
	adapterDir      string
	batch, threads  int
	temperature     float64
	dev             deviceFlags
}

func init() {
	var f logprobsFlags
	cmd := &cobra.Command{
		Use:   "logprobs --model DIR --input FILE.jsonl",
		Short: "Print per-token log-probabilities of sequences under a model",
		Long: `For each input line {"ids": [...]} (or {"text": "..."} when the model
directory has a tokenizer.json), print one JSON line with the log-probability
of each token given its prefix; the first token has none (null). The line also
carries the sum, the mean over scored tokens and the perplexity exp(-mean).
Use "-" as the input to read standard input. --adapter scores through a PEFT
LoRA adapter on the model (any LoRA adapter for this base, e.g. trained with
PEFT or TRL).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLogprobs(cmd.OutOrStdout(), f) },
	}
	cmd.Flags().StringVar(&f.modelDir, "model", "", "model directory (config.json, model.safetensors)")
	cmd.Flags().StringVar(&f.adapterDir, "adapter", "", "PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors) to apply to the model")
	cmd.Flags().StringVar(&f.input, "input", "", "JSONL file of {\"ids\": [...]} or {\"text\": ...} lines")
	cmd.Flags().IntVar(&f.batch, "batch", 16, "sequences per forward pass")
	cmd.Flags().IntVar(&f.threads, "threads", 0, "CPU threads (0: one per core)")
	f.dev.add(cmd.Flags())
	cmd.Flags().Float64Var(&f.temperature, "temperature", 1, "score under softmax(logits / temperature)")
	cmd.MarkFlagRequired("model")
	cmd.MarkFlagRequired("input")
	rootCmd.AddCommand(cmd)
}

type logprobsLine struct {
	IDs  []int32 `json:"ids"`
	Text *string `json:"text"`
}

type logprobsOut struct {
	Line       int        `json:"line"`
	IDs        []int32    `json:"ids"`
	Logprobs   []*float64 `json:"logprobs"`
	Sum        float64    `json:"sum"`
	Mean       *float64   `json:"mean,omitempty"`
	Perplexity *float64   `json:"perplexity,omitempty"`
}

// newTextEncoder loads the tokenizer of a model directory and returns a
// function turning text into ids.
var newTextEncoder func(modelDir string) (func(string) ([]int32, error), error)

func runLogprobs(w io.Writer, f logprobsFlags) error {
	if f.temperature <= 0 {
		return fmt.Errorf("--temperature must be positive, got %g", f.temperature)
	}
	if f.batch < 1 {
		return fmt.Errorf("--batch must be at least 1, got %d", f.batch)
	}
	be, err := f.dev.open(f.threads)
	if err != nil {
		return err
	}
	m, err := loadModel(os.Stderr, f.modelDir, f.adapterDir, be)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(w)
	defer out.Flush()
	s := &logprobsScorer{m: m, ws: m.NewWorkspace(), out: json.NewEncoder(out), f: f}
	name, err := eachJSONLine(f.input, func(line int, l *logprobsLine) error {
		ids, err := s.sequence(l)
		if err != nil {
			return err
		}
		s.scored++
		s.pending = append(s.pending, logprobsOut{Line: line, IDs: ids})
		if len(s.pending) == f.batch {
			return s.flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.scored == 0 {
		return fmt.Errorf("%s: no sequences to score (the input is empty)", name)
	}
	return s.flush()
}

// logprobsScorer scores rltrain logprobs' sequences a batch at a time.
type logprobsScorer struct {
	m       *model.Model
	ws      *model.Workspace
	out     *json.Encoder
	f       logprobsFlags
	encode  func(string) ([]int32, error) // loaded at the first "text" line
	pending []logprobsOut
	scored  int
}

// sequence is the checked token ids of an input line.
func (s *logprobsScorer) sequence(l *logprobsLine) ([]int32, error) {
	ids := l.IDs
	switch {
	case l.Text != nil && ids != nil:
		return nil, errors.New(`give either "ids" or "text", not both`)
	case l.Text != nil:
		if s.encode == nil {
			if newTextEncoder == nil {
				return nil, errors.New(`"text" lines need a tokenizer, which this build lacks`)
			}
			var err error
			if s.encode, err = newTextEncoder(s.f.modelDir); err != nil {
				return nil, err
			}
		}
		var err error
		if ids, err = s.encode(*l.Text); err != nil {
			return nil, err
		}
	case ids == nil:
		return nil, errors.New(`want {"ids": [...]} or {"text": ...}`)
	}
	if len(ids) == 0 {
		return nil, errors.New("empty sequence")
	}
	cfg := s.m.Cfg
	for i, id := range ids {
		if id < 0 || int(id) >= cfg.Vocab {
			return nil, fmt.Errorf("ids[%d] = %d is outside the vocabulary of %d", i, id, cfg.Vocab)
		}
	}
	if mp := cfg.MaxPositions; mp > 1 && len(ids) > mp {
		return nil, fmt.Errorf("%d tokens; the model takes at most %d positions (max_position_embeddings)", len(ids), mp)
	}
	return ids, nil
}

// flush scores and prints the pending sequences.
func (s *logprobsScorer) flush() error {
	if err := scoreBatch(s.m, s.ws, s.pending, float32(1/s.f.temperature)); err != nil {
		return err
	}
	for i := range s.pending {
		if err := s.out.Encode(&s.pending[i]); err != nil {
			return err
		}
	}
	s.pending = s.pending[:0]
	return nil
}

// scoreBatch fills in the log-probs of a group of sequences with one
// right-padded forward pass.
func scoreBatch(m *model.Model, ws *model.Workspace, seqs []logprobsOut, invTemp float32) error {
	if len(seqs) == 0 {
		return nil
	}
	rows := make([][]int32, len(seqs))
	for i, s := range seqs {
		rows[i] = s.IDs
	}
	b := model.PadBatch(rows, 0)
	T := b.T
	if _, err := m.Forward(ws, b); err != nil {
		return err
	}
	logp, _, err := m.LogProbs(ws, model.Output{Targets: model.NextTokenTargets(b), InvTemp: invTemp})
	if err != nil {
		return err
	}
	for i := range seqs {
		s := &seqs[i]
		s.Logprobs = make([]*float64, len(s.IDs))
		for j := 1; j < len(s.IDs); j++ {
			v := float64(logp[i*T+j-1])
			s.Logprobs[j] = &v
			s.Sum += v
		}
		if n := len(s.IDs) - 1; n > 0 {
			mean := s.Sum / float64(n)
			ppl := math.Exp(-mean)
			s.Mean, s.Perplexity = &mean, &ppl
		}
	}
	return nil
}
