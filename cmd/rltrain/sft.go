package main

import (
	"github.com/spf13/cobra"
)

func init() {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "sft CONFIG",
		Short: "Run only the supervised warm-up (the config's sft section) and save it as a checkpoint",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.sftOnly = true
			path, err := configAndResume(cmd, args, &f)
			if err != nil {
				return err
			}
			return runTrain(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), path, f)
		},
	}
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override an option: --set sft.steps=500 (repeatable)")
	cmd.Flags().StringVar(&f.resume, "resume", "", "resume from the newest complete checkpoint, or from PATH")
	cmd.Flags().Lookup("resume").NoOptDefVal = "latest"
	cmd.Flags().BoolVar(&f.overwrite, "overwrite", false, "start fresh, deleting the checkpoints and metrics a previous run left in the output directory")
	rootCmd.AddCommand(cmd)
}
