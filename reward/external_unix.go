//go:build unix

package reward

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the program in its own process group so that a
// timeout kills its children too (a shell script's sleep would otherwise
// keep the pipes open). On Linux the program also gets SIGKILL when
// rltrain dies, however it dies (setDeathSignal).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
}

func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}
