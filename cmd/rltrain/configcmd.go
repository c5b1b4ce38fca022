package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/train/config"
)

func init() {
	var doc bool
	var sets []string
	cmd := &cobra.Command{
		Use:   "config [--doc | CONFIG]",
		Short: "Document every config option (--doc); with CONFIG, the same as run CONFIG --print-config",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if doc || len(args) == 0 {
				_, err := fmt.Fprint(w, config.Doc())
				return err
			}
			return printConfig(w, args[0], sets)
		},
	}
	cmd.Flags().BoolVar(&doc, "doc", false, "print the documentation of every option (markdown)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "override an option (repeatable)")
	rootCmd.AddCommand(cmd)
}

// printConfig checks a config and prints it with every default resolved:
// run CONFIG --print-config, and config CONFIG as a shorter name for it.
func printConfig(w io.Writer, path string, sets []string) error {
	cfg, err := loadConfig(path, sets)
	if err != nil {
		return err
	}
	y, err := cfg.YAML()
	if err != nil {
		return err
	}
	_, err = w.Write(y)
	return err
}
