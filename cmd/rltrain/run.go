package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/internal/dist"
	"github.com/rltrain/rltrain/train"
	"github.com/rltrain/rltrain/train/config"
)

type runFlags struct {
	sets        []string
	resume      string
	printConfig bool
	dryRun      bool
	overwrite   bool
	sftOnly     bool
}

func init() {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run CONFIG",
		Short: "Train: supervised warm-up (if configured) then RL, with checkpoints",
		Long: `Run the training a YAML config describes. SIGINT or SIGTERM finishes the
current step, writes a checkpoint and exits 0; --resume continues from the
newest complete checkpoint (or the one given), bit for bit on the CPU backend.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := configAndResume(cmd, args, &f)
			if err != nil {
				return err
			}
			return runTrain(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), path, f)
		},
	}
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override an option: --set optim.lr=2e-6 (repeatable)")
	cmd.Flags().StringVar(&f.resume, "resume", "", "resume from the newest complete checkpoint, or from PATH")
	cmd.Flags().Lookup("resume").NoOptDefVal = "latest"
	cmd.Flags().BoolVar(&f.printConfig, "print-config", false, "print the resolved config and exit")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "build everything (model, data, rewards) and exit without training")
	cmd.Flags().BoolVar(&f.overwrite, "overwrite", false, "start fresh, deleting the checkpoints and metrics a previous run left in the output directory")
	rootCmd.AddCommand(cmd)
}

// configAndResume picks the config path from the arguments. --resume
// takes an optional value, so `--resume PATH` (with a space) leaves PATH
// as a second argument: the one that is a directory (a checkpoint or a run
// directory) or "latest" is the resume target, the other the config.
func configAndResume(cmd *cobra.Command, args []string, f *runFlags) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	if !cmd.Flags().Changed("resume") || f.resume != "latest" {
		return "", fmt.Errorf("want one CONFIG argument, got %d: %s", len(args), strings.Join(args, " "))
	}
	isTarget := func(p string) bool {
		if p == "latest" {
			return true
		}
		st, err := os.Stat(p)
		return err == nil && st.IsDir()
	}
	switch a, b := isTarget(args[0]), isTarget(args[1]); {
	case b && !a:
		f.resume = args[1]
		return args[0], nil
	case a && !b:
		f.resume = args[0]
		return args[1], nil
	}
	return "", fmt.Errorf("cannot tell the config from the --resume target in %q and %q (the target is a checkpoint directory or \"latest\"); write --resume=PATH", args[0], args[1])
}

// loadConfig reads a config with --set overrides applied.
func loadConfig(path string, sets []string) (*config.Config, error) {
	return config.Load(path, sets)
}

// joinRanks joins the job's ranks (a process started alone is a job of
// one). In a job of several, a failing rank ends the whole job at once
// (the others would wait for it at their next collective) and only rank 0
// prints results: stdout is then where this rank prints, and end, deferred
// with the command's error, aborts or closes the job.
func joinRanks(cfg *config.Config, stdout io.Writer) (comm dist.Comm, out io.Writer, end func(*error), err error) {
	comm, err = dist.Open(dist.Options{Timeout: cfg.Train.CollectiveTimeout})
	if err != nil {
		return nil, nil, nil, err
	}
	if comm.Size() == 1 {
		return comm, stdout, func(*error) {}, nil
	}
	if comm.Rank() != 0 {
		stdout = io.Discard
	}
	return comm, stdout, func(err *error) {
		if *err != nil {
			comm.Abort(1, fmt.Sprintf("rank %d: %v", comm.Rank(), *err))
		}
		comm.Close()
	}, nil
}

func runTrain(ctx context.Context, stdout, stderr io.Writer, path string, f runFlags) (err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.printConfig {
		return printConfig(stdout, path, f.sets)
	}
	cfg, err := loadConfig(path, f.sets)
	if err != nil {
		return err
	}
	comm, stdout, endRanks, err := joinRanks(cfg, stdout)
	if err != nil {
		return err
	}
	defer endRanks(&err)
	if comm.Size() > 1 && comm.Rank() == 0 {
		fmt.Fprintf(stderr, "data parallel: %s\n", comm)
	}
	train.Version = version
	t, err := train.New(cfg, train.Options{Resume: f.resume, Overwrite: f.overwrite, Console: stderr, Progress: isTerminal(stderr), SFTOnly: f.sftOnly, Comm: comm})
	if err != nil {
		return err
	}
	defer t.Close()
	m := t.Policy().Model
	if comm.Rank() == 0 {
		fmt.Fprintf(stderr, "model %s: %d parameters, %d layers, hidden %d, vocab %d; backend %s\n",
			m.Cfg.Architecture, m.NumParams(), m.Cfg.Layers, m.Cfg.Hidden, m.Cfg.Vocab, m.Backend().Name())
		if a := m.Adapter(); a != nil {
			fmt.Fprintf(stderr, "training %s (%.2f%% of the model; the base is frozen)\n", a.Describe(), 100*float64(a.NumParams())/float64(m.NumParams()))
		}
	}
	if f.dryRun {
		// Every prompt is rendered and tokenized as training would, so a
		// dataset that cannot train fails here, not at the first eval.
		rep, err := t.DryRun()
		if err != nil {
			return fmt.Errorf("dry run: %w", err)
		}
		rep.Print(stdout, m.Cfg.MaxPositions, cfg.Rollout.MaxNewTokens)
		fmt.Fprintln(stdout, "dry run: config, data, model and rewards are ready")
		return nil
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := t.Run(ctx)
	if err != nil {
		return err
	}
	if sum.BaselineEval != nil {
		fmt.Fprintf(stdout, "baseline accuracy (before RL): %.3f\n", sum.BaselineEval.Accuracy)
	}
	if sum.FinalEval != nil {
		fmt.Fprintf(stdout, "final accuracy: %.3f (mean reward %.3f)\n", sum.FinalEval.Accuracy, sum.FinalEval.MeanReward)
	}
	if sum.BaselineEval != nil && sum.FinalEval != nil {
		fmt.Fprintf(stdout, "accuracy change from RL: %+.1f points\n", 100*(sum.FinalEval.Accuracy-sum.BaselineEval.Accuracy))
	}
	if sum.Interrupted {
		at := fmt.Sprintf("step %d", sum.Steps)
		if sum.Phase == "sft" {
			at = fmt.Sprintf("warm-up step %d", sum.SFTSteps)
		}
		fmt.Fprintf(stdout, "interrupted after %s; resume with: %s\n", at, resumeCommand(path, f))
	}
	if sum.LastCheckpoint != "" {
		fmt.Fprintf(stdout, "checkpoint: %s\n", sum.LastCheckpoint)
	}
	fmt.Fprintf(stdout, "metrics: %s\n", sum.MetricsPath)
	return nil
}

// resumeCommand is the command line that continues an interrupted run:
// the same program, subcommand, config and --set flags, with --resume
// (and without --overwrite, which would discard the checkpoint).
func resumeCommand(path string, f runFlags) string {
	sub := "run"
	if f.sftOnly {
		sub = "sft"
	}
	args := []string{os.Args[0], sub, path}
	for _, s := range f.sets {
		args = append(args, "--set", s)
	}
	args = append(args, "--resume")
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
