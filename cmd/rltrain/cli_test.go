package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// execute runs the CLI with args and returns what it wrote to stdout and
// stderr. Cobra keeps flag values between Execute calls, so every flag of
// every command is reset to its default before the run and after it: no
// test sees another's flags.
func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	resetFlags(t, rootCmd)
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&out)
	rootCmd.SetArgs(args)
	defer func() {
		rootCmd.SetArgs(nil)
		rootCmd.SetOut(nil)
		rootCmd.SetErr(nil)
		resetFlags(t, rootCmd)
	}()
	err := rootCmd.Execute()
	return out.String(), err
}

// resetFlags sets every flag of c and its subcommands that a run changed
// back to its default.
func resetFlags(t *testing.T, c *cobra.Command) {
	t.Helper()
	reset := func(f *pflag.Flag) {
		if !f.Changed {
			return
		}
		var err error
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			var def []string
			if d := strings.Trim(f.DefValue, "[]"); d != "" {
				def = strings.Split(d, ",")
			}
			err = sv.Replace(def)
		} else {
			err = f.Value.Set(f.DefValue)
		}
		if err != nil {
			t.Fatalf("reset --%s of %s: %v", f.Name, c.CommandPath(), err)
		}
		f.Changed = false
	}
	c.Flags().VisitAll(reset)
	c.PersistentFlags().VisitAll(reset)
	for _, sub := range c.Commands() {
		resetFlags(t, sub)
	}
}
