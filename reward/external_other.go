//go:build !unix

package reward

import "os/exec"

func setProcessGroup(cmd *exec.Cmd) {}

func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

func wrapCommand(argv []string) (string, []string, string) { return argv[0], argv, "" }
