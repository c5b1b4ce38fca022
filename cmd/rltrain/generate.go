package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/model/tokenizer"
	"github.com/rltrain/rltrain/rollout"
	"github.com/rltrain/rltrain/train"
)

type generateFlags struct {
	modelDir, prompt, input string
	adapterDir              string
	cfg                     rollout.Config
	threads                 int
	dev                     deviceFlags
	chat, jsonOut, quiet    bool
	chatTemplate            string
}

func init() {
	f := generateFlags{cfg: rollout.DefaultConfig()}
	f.cfg.GroupSize, f.cfg.MaxBatch = 1, 64
	cmd := &cobra.Command{
		Use:   "generate --model DIR (--prompt TEXT | --input FILE.jsonl)",
		Short: "Sample completions from a model",
		Long: `Sample --n completions for each prompt with the rollout engine (KV-cached,
continuous batching, the prompt prefilled once per group).

Prompts come from --prompt or from --input, a JSONL file ("-": standard
input) with one of {"ids": [...]}, {"text": "..."} or {"messages": [{"role":
..., "content": ...}, ...]} per line. Text needs the model directory's
tokenizer.json; --chat wraps text prompts as a user message in the model's
chat template (messages always use it).

--temperature 0 samples greedily. Each completion's random stream depends
only on (--seed, prompt line, sample index), so a completion does not change
with --n, --max-batch or --threads. With --json, one line per completion:
{"prompt", "sample", "ids", "text", "logprobs", "finish_reason"}; log-probs
are log softmax(logits / T) of the sampled tokens (T = 1 when greedy).
--adapter samples through a PEFT LoRA adapter on the model (for instance an
rltrain LoRA checkpoint, with --model its base).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGenerate(cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.modelDir, "model", "", "model directory (config.json, model.safetensors, tokenizer.json)")
	fl.StringVar(&f.adapterDir, "adapter", "", "PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors) to sample through")
	fl.StringVar(&f.prompt, "prompt", "", "one text prompt")
	fl.StringVar(&f.input, "input", "", "JSONL file of prompts (\"-\": standard input)")
	fl.IntVarP(&f.cfg.GroupSize, "n", "n", 1, "completions per prompt")
	fl.IntVar(&f.cfg.MaxNewTokens, "max-new-tokens", f.cfg.MaxNewTokens, "most tokens per completion")
	fl.Float64Var(&f.cfg.Temperature, "temperature", f.cfg.Temperature, "sampling temperature (0: greedy)")
	fl.IntVar(&f.cfg.TopK, "top-k", f.cfg.TopK, "keep the k most likely tokens (0: off)")
	fl.Float64Var(&f.cfg.TopP, "top-p", f.cfg.TopP, "nucleus sampling mass (1: off)")
	fl.Float64Var(&f.cfg.MinP, "min-p", f.cfg.MinP, "drop tokens below min-p times the top probability (0: off)")
	fl.Float64Var(&f.cfg.RepetitionPenalty, "repetition-penalty", f.cfg.RepetitionPenalty, "penalty for tokens already present (1: off)")
	fl.StringArrayVar(&f.cfg.Stop, "stop", nil, "stop string (repeatable)")
	fl.BoolVar(&f.cfg.IncludeStopStr, "include-stop-str", false, "keep the matched stop string in the text")
	fl.Uint64Var(&f.cfg.Seed, "seed", 0, "random seed")
	fl.IntVar(&f.cfg.KVCacheMB, "kv-cache-mb", f.cfg.KVCacheMB, "KV cache budget in MiB")
	fl.IntVar(&f.cfg.MaxBatch, "max-batch", f.cfg.MaxBatch, "most completions decoded together")
	fl.IntVar(&f.threads, "threads", 0, "CPU threads (0: one per core)")
	f.dev.add(fl)
	fl.BoolVar(&f.chat, "chat", false, "wrap text prompts in the chat template as a user message")
	fl.StringVar(&f.chatTemplate, "chat-template", "", "override the chat template: a built-in format (chatml, qwen3, llama3, llama2, plain) or a Jinja file")
	fl.BoolVar(&f.jsonOut, "json", false, "print one JSON line per completion")
	fl.BoolVar(&f.quiet, "quiet", false, "do not print timing to standard error")
	cmd.MarkFlagRequired("model")
	rootCmd.AddCommand(cmd)
}

// promptLine is one line of a --input file.
type promptLine struct {
	IDs      []int32             `json:"ids"`
	Text     *string             `json:"text"`
	Messages []tokenizer.Message `json:"messages"`
}

// tokDetok adapts the tokenizer to rollout.Detokenizer.
type tokDetok struct{ t *tokenizer.Tokenizer }

func (d tokDetok) Decode(ids []int32, skipSpecial bool) string {
	in := make([]int, len(ids))
	for i, id := range ids {
		in[i] = int(id)
	}
	return d.t.Decode(in, skipSpecial)
}

type generateOut struct {
	Prompt   int       `json:"prompt"`
	Sample   int       `json:"sample"`
	IDs      []int32   `json:"ids"`
	Text     string    `json:"text"`
	Logprobs []float32 `json:"logprobs"`
	Finish   string    `json:"finish_reason"`         // stop or length, as vLLM reports it
	Stop     string    `json:"stop_reason,omitempty"` // eos or stop_string when finish_reason is stop
}

func runGenerate(stdout, stderr io.Writer, f generateFlags) error {
	if (f.prompt == "") == (f.input == "") {
		return errors.New("give exactly one of --prompt and --input")
	}
	if err := f.cfg.Validate(); err != nil {
		return err
	}
	be, err := f.dev.open(f.threads)
	if err != nil {
		return err
	}
	m, err := loadModel(stderr, f.modelDir, f.adapterDir, be)
	if err != nil {
		return err
	}
	tok, err := optionalTokenizer(f.modelDir, f.chatTemplate)
	if err != nil {
		return err
	}
	var detok rollout.Detokenizer
	if tok != nil {
		detok = tokDetok{tok}
		if eos := tok.EOS(); eos >= 0 {
			f.cfg.StopTokenIDs = append(f.cfg.StopTokenIDs, eos)
		}
	}
	enc := promptEncoder{tok: tok, chat: f.chat, modelDir: f.modelDir}
	var prompts []rollout.Prompt
	if f.prompt != "" {
		ids, err := enc.encode(promptLine{Text: &f.prompt})
		if err != nil {
			return fmt.Errorf("--prompt: %w", err)
		}
		prompts = append(prompts, rollout.Prompt{IDs: ids})
	} else if prompts, err = readPrompts(f.input, enc.encode); err != nil {
		return err
	}
	eng, err := rollout.New(m, f.cfg, detok)
	if err != nil {
		return err
	}
	defer eng.Close()
	t0 := time.Now()
	comps, st, err := eng.Generate(prompts)
	if err != nil {
		return err
	}
	wall := time.Since(t0)
	if err := writeCompletions(stdout, comps, tok, f.jsonOut); err != nil {
		return err
	}
	if !f.quiet {
		rate := func(n int, d time.Duration) float64 { return float64(n) / max(d.Seconds(), 1e-9) }
		fmt.Fprintf(stderr, "generate: %d completions, %d tokens in %.2fs; prefill %d tokens (%.0f tok/s), decode %.0f tok/s over %d steps (max %d running); KV cache %d MiB, %d B/token\n",
			st.Completions, st.GeneratedTokens, wall.Seconds(), st.PrefillTokens, rate(st.PrefillTokens, st.PrefillTime),
			rate(st.DecodeTokens, st.DecodeTime), st.Steps, st.MaxRunning, eng.Cache().Bytes()>>20, m.Cfg.KVBytesPerToken())
	}
	return nil
}

// optionalTokenizer loads the model directory's tokenizer with the chat
// template option applied, or returns nil when there is none (prompts of
// token ids need none).
func optionalTokenizer(modelDir, chatTemplate string) (*tokenizer.Tokenizer, error) {
	if _, err := os.Stat(filepath.Join(modelDir, "tokenizer.json")); err != nil {
		return nil, nil
	}
	tok, err := tokenizer.LoadDir(modelDir)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	if err := train.ApplyChatOptions(tok, chatTemplate, nil); err != nil {
		return nil, fmt.Errorf("--chat-template: %w", err)
	}
	return tok, nil
}

// promptEncoder turns a prompt line into token ids: its ids as given, or
// its text or messages through the tokenizer (text through the chat
// template with --chat).
type promptEncoder struct {
	tok      *tokenizer.Tokenizer
	chat     bool
	modelDir string
}

func (e promptEncoder) encode(l promptLine) ([]int32, error) {
	switch {
	case l.IDs != nil:
		if l.Text != nil || l.Messages != nil {
			return nil, errors.New(`give one of "ids", "text" and "messages"`)
		}
		return l.IDs, nil
	case e.tok == nil:
		return nil, fmt.Errorf("text prompts need %s", filepath.Join(e.modelDir, "tokenizer.json"))
	}
	var text string
	special := true
	msgs := l.Messages
	if l.Text != nil {
		if msgs != nil {
			return nil, errors.New(`give one of "ids", "text" and "messages"`)
		}
		if e.chat {
			msgs = []tokenizer.Message{{Role: "user", Content: *l.Text}}
		} else {
			text = *l.Text
		}
	} else if msgs == nil {
		return nil, errors.New(`want {"ids": [...]}, {"text": ...} or {"messages": [...]}`)
	}
	if msgs != nil {
		s, err := e.tok.ApplyChatTemplate(msgs, true)
		if err != nil {
			return nil, err
		}
		// The template already holds the special tokens it needs.
		text, special = s, false
	}
	raw := e.tok.Encode(text, special)
	ids := make([]int32, len(raw))
	for i, id := range raw {
		ids[i] = int32(id)
	}
	return ids, nil
}

// writeCompletions prints the completions as JSON lines, or as text (token
// ids without a tokenizer) under a header line each.
func writeCompletions(w io.Writer, comps []rollout.Completion, tok *tokenizer.Tokenizer, jsonOut bool) error {
	out := bufio.NewWriter(w)
	enc := json.NewEncoder(out)
	for _, c := range comps {
		text := c.Text
		if tok != nil {
			text = tokenizer.ValidUTF8(text)
		}
		if jsonOut {
			line := generateOut{Prompt: c.Prompt, Sample: c.Sample, IDs: c.IDs, Text: text, Logprobs: c.Logprobs, Finish: c.Finish.Public(), Stop: c.Finish.StopKind()}
			if err := enc.Encode(&line); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(out, "--- prompt %d, sample %d (%s, %d tokens)\n", c.Prompt, c.Sample, c.Finish.Public(), len(c.IDs))
		if tok != nil {
			fmt.Fprintln(out, text)
		} else {
			fmt.Fprintln(out, c.IDs)
		}
	}
	return out.Flush()
}

// readPrompts reads a JSONL prompt file, numbering prompts by line order
// (the random stream of a prompt is its position among the prompts).
func readPrompts(path string, encode func(promptLine) ([]int32, error)) ([]rollout.Prompt, error) {
	var prompts []rollout.Prompt
	name, err := eachJSONLine(path, func(_ int, l *promptLine) error {
		ids, err := encode(*l)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return errors.New("empty prompt")
		}
		prompts = append(prompts, rollout.Prompt{IDs: ids, Index: uint64(len(prompts))})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(prompts) == 0 {
		return nil, fmt.Errorf("%s: no prompts", name)
	}
	return prompts, nil
}
