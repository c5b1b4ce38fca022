package main

import (
	"bufio"
	"bytes"
	"encoding/json"
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
	var in io.Reader = os.Stdin
	name := "stdin"
	if f.input != "-" {
		file, err := os.Open(f.input)
		if err != nil {
			return fmt.Errorf("open input: %w", err)
		}
		defer file.Close()
		in, name = file, f.input
	}
	var encode func(string) ([]int32, error)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	out := bufio.NewWriter(w)
	defer out.Flush()
	ws := m.NewWorkspace()
	var pending []logprobsOut
	flush := func() error {
		if err := scoreBatch(m, ws, pending, float32(1/f.temperature)); err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		for i := range pending {
			if err := enc.Encode(&pending[i]); err != nil {
				return err
			}
		}
		pending = pending[:0]
		return nil
	}
	scored := 0
	for lineNo := 1; sc.Scan(); lineNo++ {
		raw := sc.Bytes()
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		var l logprobsLine
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		ids := l.IDs
		switch {
		case l.Text != nil && ids != nil:
			return fmt.Errorf("%s:%d: give either \"ids\" or \"text\", not both", name, lineNo)
		case l.Text != nil:
			if encode == nil {
				if newTextEncoder == nil {
					return fmt.Errorf("%s:%d: \"text\" lines need a tokenizer, which this build lacks", name, lineNo)
				}
				if encode, err = newTextEncoder(f.modelDir); err != nil {
					return fmt.Errorf("%s:%d: %w", name, lineNo, err)
				}
			}
			if ids, err = encode(*l.Text); err != nil {
				return fmt.Errorf("%s:%d: %w", name, lineNo, err)
			}
		case ids == nil:
			return fmt.Errorf("%s:%d: want {\"ids\": [...]} or {\"text\": ...}", name, lineNo)
		}
		if len(ids) == 0 {
			return fmt.Errorf("%s:%d: empty sequence", name, lineNo)
		}
		for i, id := range ids {
			if id < 0 || int(id) >= m.Cfg.Vocab {
				return fmt.Errorf("%s:%d: ids[%d] = %d is outside the vocabulary of %d", name, lineNo, i, id, m.Cfg.Vocab)
			}
		}
		if mp := m.Cfg.MaxPositions; mp > 1 && len(ids) > mp {
			return fmt.Errorf("%s:%d: %d tokens; the model takes at most %d positions (max_position_embeddings)", name, lineNo, len(ids), mp)
		}
		scored++
		pending = append(pending, logprobsOut{Line: lineNo, IDs: ids})
		if len(pending) == f.batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if scored == 0 {
		return fmt.Errorf("%s: no sequences to score (the input is empty)", name)
	}
	if len(pending) > 0 {
		return flush()
	}
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
