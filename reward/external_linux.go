package reward

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
)

// On Linux a reward program runs under a small supervisor: this same
// binary, started with supervisorEnv set, which leads the program's process
// group. The kernel sends the supervisor SIGTERM when rltrain dies, however
// it dies (SIGKILL, the OOM killer), and the supervisor then kills the
// whole group, so neither the program nor anything it started outlives the
// run. (A death signal on the program itself would miss its children.)
const supervisorEnv = "RLTRAIN_REWARD_SUPERVISOR"

func init() {
	if os.Getenv(supervisorEnv) == "1" {
		os.Exit(supervise(os.Args[1:]))
	}
}

// wrapCommand returns the argv that starts argv under the supervisor and
// the environment entry that turns the supervisor on.
func wrapCommand(argv []string) (path string, args []string, env string) {
	return "/proc/self/exe", append([]string{"rltrain-reward-supervisor"}, argv...), supervisorEnv + "=1"
}

// setDeathSignal asks the kernel to signal the supervisor when its parent
// dies.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGTERM }

// supervise runs argv in the current process group and returns its exit
// code; a SIGTERM (the parent died, or someone asked) kills the group.
func supervise(argv []string) int {
	os.Unsetenv(supervisorEnv)
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "reward supervisor: no command")
		return 2
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGHUP)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "start %s: %v\n", argv[0], err)
		return 127
	}
	os.Stdin.Close()
	os.Stdout.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-term:
		_ = syscall.Kill(0, syscall.SIGKILL) // the group, this process included
		return 137
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				// Die the same way, so the parent reports the signal.
				signal.Reset(ws.Signal())
				_ = syscall.Kill(os.Getpid(), ws.Signal())
				return 128 + int(ws.Signal())
			}
			return ee.ExitCode()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "reward supervisor: %v\n", err)
			return 1
		}
		return 0
	}
}

// The kernel sends the death signal when the *thread* that forked the
// child exits, not the process. Go may end an OS thread (when a goroutine
// that locked it returns), so every program is started from one goroutine
// that holds its thread for the life of the process.
var (
	spawnOnce sync.Once
	spawnReq  chan spawnRequest
)

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func startCmd(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReq = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawnReq {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnReq <- spawnRequest{cmd, done}
	return <-done
}
