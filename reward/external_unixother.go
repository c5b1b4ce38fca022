//go:build unix && !linux

package reward

import (
	"os/exec"
	"syscall"
)

// setDeathSignal: only Linux has a parent-death signal; elsewhere a killed
// rltrain leaves its reward programs to notice the closed stdin.
func setDeathSignal(*syscall.SysProcAttr) {}

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

func wrapCommand(argv []string) (string, []string, string) { return argv[0], argv, "" }
