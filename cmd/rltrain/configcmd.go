package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/train/config"
)

func init() {
	var doc bool
	var sets []string
	cmd := &cobra.Command{
		Use:   "config [--doc | CONFIG]",
		Short: "Document every config option, or check and print a config with its defaults resolved",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if doc || len(args) == 0 {
				_, err := fmt.Fprint(w, config.Doc())
				return err
			}
			cfg, err := loadConfig(args[0], sets)
			if err != nil {
				return err
			}
			y, err := cfg.YAML()
			if err != nil {
				return err
			}
			_, err = w.Write(y)
			return err
		},
	}
	cmd.Flags().BoolVar(&doc, "doc", false, "print the documentation of every option (markdown)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "override an option (repeatable)")
	rootCmd.AddCommand(cmd)
}
