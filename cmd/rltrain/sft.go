package main

import (
	"github.com/spf13/cobra"
)

func init() {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "sft CONFIG",
		Short: "Run only the supervised warm-up (the config's sft section) and save it as a checkpoint",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.sftOnly = true
			return runTrain(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], f)
		},
	}
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override an option: --set sft.steps=500 (repeatable)")
	cmd.Flags().StringVar(&f.resume, "resume", "", "resume from the newest complete checkpoint, or from PATH")
	cmd.Flags().Lookup("resume").NoOptDefVal = "latest"
	cmd.Flags().BoolVar(&f.overwrite, "overwrite", false, "start fresh even if the output directory holds checkpoints")
	rootCmd.AddCommand(cmd)
}
