package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/train/plot"
)

func init() {
	var out string
	cmd := &cobra.Command{
		Use:   "plot RUN_DIR",
		Short: "Draw a run's metrics as PNG charts (reward, accuracy, length, KL, entropy, clip ratio, loss, grad norm, learning rate, throughput, warm-up)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := out
			if dir == "" {
				base := args[0]
				if st, err := os.Stat(base); err == nil && !st.IsDir() {
					base = filepath.Dir(base)
				}
				dir = filepath.Join(base, "plots")
			}
			files, err := plot.Run(args[0], dir)
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintln(cmd.OutOrStdout(), f)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "output directory (default RUN_DIR/plots)")
	rootCmd.AddCommand(cmd)
}
