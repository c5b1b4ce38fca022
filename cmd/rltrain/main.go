// Command rltrain is an end-to-end RL post-training framework for small
// Llama-family language models. Each subcommand lives in its own file and
// registers itself on rootCmd from an init function.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

var rootCmd = &cobra.Command{
	Use:           "rltrain",
	Short:         "RL post-training for small transformer language models",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "rltrain:", err)
		os.Exit(1)
	}
}
