package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/train"
)

// evalFlags are rltrain eval's options.
type evalFlags struct {
	sets         []string
	modelDir     string
	adapterDir   string
	samples      int
	limit        int
	temperature  float64
	asJSON, show bool
	backend      string
	dump         string
}

func init() {
	var f evalFlags
	cmd := &cobra.Command{
		Use:   "eval CONFIG [--model DIR]",
		Short: "Evaluate a model on the config's held-out set: accuracy, mean reward, pass@k",
		Long: `Generate on the evaluation set of CONFIG (data.eval, the held-out part of
data.train, or a built-in task's eval stream) and score with the config's
rewards. Greedy by default; --samples K with --temperature T > 0 samples K
completions per prompt and reports pass@K. --model evaluates a checkpoint or
Hugging Face directory instead of model.path; --adapter DIR applies a PEFT
LoRA adapter to it (a LoRA run's checkpoint given as --model is taken as the
adapter, on the config's model.path). --dump FILE writes every
generation as a JSON line: id, sample, prompt (as rendered), completion,
finish_reason, tokens, reward, rewards (each function's score), correct and
answer.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEval(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], f)
		},
	}
	cmd.Flags().StringVar(&f.modelDir, "model", "", "model or checkpoint directory (default: the config's model.path)")
	cmd.Flags().StringVar(&f.adapterDir, "adapter", "", "PEFT LoRA adapter directory to apply to the model")
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override a config option (repeatable)")
	cmd.Flags().StringVar(&f.backend, "backend", "", "compute backend, overriding backend.type: cpu, cuda or cuda-emu")
	cmd.Flags().IntVar(&f.samples, "samples", 1, "completions per prompt (pass@k); > 1 needs --temperature > 0")
	cmd.Flags().Float64Var(&f.temperature, "temperature", 0, "sampling temperature (0: greedy)")
	cmd.Flags().IntVar(&f.limit, "limit", 0, "evaluate only the first N prompts")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the metrics as JSON")
	cmd.Flags().BoolVar(&f.show, "show", false, "print a few scored completions")
	cmd.Flags().StringVar(&f.dump, "dump", "", "write every generation with its rewards to this JSONL file")
	rootCmd.AddCommand(cmd)
}

func runEval(w, stderr io.Writer, path string, f evalFlags) error {
	sets := append([]string(nil), f.sets...)
	if f.modelDir != "" && f.adapterDir == "" && train.NotAnAdapter(f.modelDir) != nil {
		// A LoRA checkpoint: its base is the config's model.path.
		f.adapterDir, f.modelDir = f.modelDir, ""
	}
	if f.modelDir != "" {
		sets = append(sets, "model.path="+f.modelDir)
	}
	if f.adapterDir != "" {
		// The adapter's own shape, whatever model.lora says.
		sets = append(sets, "model.adapter="+f.adapterDir, "model.lora.r=0")
	}
	if f.backend != "" {
		sets = append(sets, "backend.type="+f.backend)
	}
	cfg, err := loadConfig(path, sets)
	if err != nil {
		return err
	}
	t, err := train.New(cfg, train.Options{EvalOnly: true, Console: stderr})
	if err != nil {
		return err
	}
	defer t.Close()
	exs := t.EvalExamples()
	if len(exs) == 0 {
		return fmt.Errorf("%s: the config has no evaluation examples (set data.eval, data.eval_fraction or data.eval_size)", path)
	}
	if f.limit > 0 && f.limit < len(exs) {
		exs = exs[:f.limit]
	}
	var dumpOut *bufio.Writer
	if f.dump != "" {
		file, err := os.Create(f.dump)
		if err != nil {
			return fmt.Errorf("--dump: %w", err)
		}
		defer file.Close()
		dumpOut = bufio.NewWriter(file)
		t.DumpEvaluations(dumpOut)
	}
	res, err := t.EvaluateSampled(exs, f.samples, f.temperature)
	if err != nil {
		return err
	}
	if dumpOut != nil {
		if err := dumpOut.Flush(); err != nil {
			return fmt.Errorf("--dump: %w", err)
		}
	}
	if f.asJSON {
		return json.NewEncoder(w).Encode(res.Metrics())
	}
	fmt.Fprintf(w, "prompts %d, samples per prompt %d\n", res.Prompts, res.Samples)
	fmt.Fprintf(w, "accuracy %.4f\nmean reward %.4f\nmean length %.2f tokens\n", res.Accuracy, res.MeanReward, res.MeanLength)
	if res.Samples > 1 {
		fmt.Fprintf(w, "pass@%d %.4f\n", res.Samples, res.PassAtK)
	}
	if res.Excluded > 0 {
		fmt.Fprintf(w, "excluded %d (not judged: the judging reward failed on them)\n", res.Excluded)
	}
	if f.show {
		for _, e := range res.Examples {
			fmt.Fprintf(w, "\n[%v] %q -> %q (reward %.3g)\n", map[bool]string{true: "correct", false: "wrong"}[e.Correct], e.Prompt, e.Completion, e.Reward)
		}
	}
	return nil
}
