// Command rltrain is an end-to-end RL post-training framework for small
// Llama-family language models. Each subcommand lives in its own file and
// registers itself on rootCmd from an init function.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/kernels/cuda"
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
	if err := runCLI(); err != nil {
		fmt.Fprintln(os.Stderr, "rltrain:", err)
		os.Exit(1)
	}
}

// runCLI runs the command line. The CUDA backend reports a failing device
// (a kernel fault, out of memory) by panicking with *cuda.DeviceError,
// since model code has no error path for each device operation; training
// turns it into an error naming the last good checkpoint, and any other
// command ends here with the device's message rather than a stack trace.
func runCLI() (err error) {
	defer func() {
		if r := recover(); r != nil {
			de, ok := r.(*cuda.DeviceError)
			if !ok {
				panic(r)
			}
			err = de
		}
	}()
	return rootCmd.Execute()
}
