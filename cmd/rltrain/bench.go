package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/train"
)

func init() {
	var sets []string
	var steps, warmup int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bench [CONFIG]",
		Short: "Measure RL steps: rollout and training tokens/s, time split, peak memory, MFU, KV cache budget",
		Long: `Run a few RL steps of CONFIG (default configs/demo.yaml's model and task, no
warm-up) without writing checkpoints, and report rollout tokens/s, training
tokens/s, the timing_s/* split of a step, peak RSS, an MFU estimate against
the backend's measured GEMM rate, and the KV cache budget.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			path := "configs/demo.yaml"
			if len(args) == 1 {
				path = args[0]
			}
			tmp, err := os.MkdirTemp("", "rltrain-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			all := append([]string{"sft.steps=0", "checkpoint.every=0", "train.out_dir=" + filepath.Join(tmp, "run"), "data.eval_size=0"}, sets...)
			cfg, err := loadConfig(path, all)
			if err != nil {
				return err
			}
			comm, w, endRanks, err := joinRanks(cfg, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			defer endRanks(&err)
			t, err := train.New(cfg, train.Options{Console: cmd.ErrOrStderr(), Comm: comm})
			if err != nil {
				return err
			}
			defer t.Close()
			r, err := t.Bench(cmd.Context(), warmup, steps)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(w).Encode(r)
			}
			m := t.Policy().Model
			fmt.Fprintf(w, "model: %d parameters (%d layers, hidden %d, vocab %d) on %s\n", r.Params, m.Cfg.Layers, m.Cfg.Hidden, m.Cfg.Vocab, m.Backend().Name())
			if a := m.Adapter(); a != nil {
				fmt.Fprintf(w, "trained: %s\n", a.Describe())
			}
			if cb, ok := m.Backend().(*cuda.Backend); ok {
				if info, ok := cb.DeviceInfo(); ok {
					fmt.Fprintf(w, "device: %s\n", info)
				}
			}
			if r.WorldSize > 1 {
				fmt.Fprintf(w, "data parallel: %s; all-reduce %.1f%% overlapped with the backward pass\n", comm, 100*r.AllreduceOverlap)
			}
			fmt.Fprintf(w, "step: %.3f s (mean of %d after %d warm-up)\n", r.StepSeconds, r.Steps, warmup)
			for _, k := range slices.Sorted(maps.Keys(r.Timing)) {
				fmt.Fprintf(w, "  %-22s %.4f s\n", k, r.Timing[k])
			}
			fmt.Fprintf(w, "rollout: %.0f generated tokens/s\n", r.RolloutTokensPerSec)
			fmt.Fprintf(w, "training: %.0f tokens/s (forward+backward+update)\n", r.TrainTokensPerSec)
			fmt.Fprintf(w, "throughput: %.0f tokens/s (perf/throughput)\n", r.ThroughputTokensPerSec)
			fmt.Fprintf(w, "compute: %.1f GFLOP/s achieved, GEMM peak %.1f GFLOP/s, MFU %.1f%%\n", r.AchievedGFLOPS, r.GEMMPeakGFLOPS, 100*r.MFU)
			fmt.Fprintf(w, "kv cache: %d bytes per token (2·layers·kv_heads·head_dim·4), budget %.1f MiB = %d blocks of %d tokens\n",
				r.KVBytesPerToken, float64(r.KVCacheBytes)/(1<<20), r.KVCacheBlocks, r.KVBlockSize)
			fmt.Fprintf(w, "peak RSS: %.0f MB\n", r.PeakRSSMB)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&sets, "set", nil, "override a config option (repeatable)")
	cmd.Flags().IntVar(&steps, "steps", 5, "timed RL steps")
	cmd.Flags().IntVar(&warmup, "warmup", 1, "untimed RL steps first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	rootCmd.AddCommand(cmd)
}
