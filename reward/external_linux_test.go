package reward

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// parentEnv makes TestExternalDiesWithParent's helper run as the parent
// process that is SIGKILLed.
const parentEnv = "RLTRAIN_TEST_EXTERNAL_PARENT"

func TestExternalParentHelper(t *testing.T) {
	dir := os.Getenv(parentEnv)
	if dir == "" {
		t.Skip("helper process for TestExternalDiesWithParent")
	}
	// The program starts a child, writes both pids and never answers.
	script := filepath.Join(dir, "prog.sh")
	body := "#!/bin/sh\nsleep 1000 &\necho $$ $! > " + filepath.Join(dir, "pid") + "\nread -r line\nwait\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	p := DefaultExternalParams()
	p.Command = []string{"/bin/sh", script}
	p.Workers = 1
	p.Timeout = Duration(time.Hour)
	e, err := NewExternal(p)
	if err != nil {
		t.Fatal(err)
	}
	e.Score(context.Background(), make([]Sample, 1)) // blocks until killed
}

// After SIGKILL of the process that started it, a reward program must not
// live on (it would hold memory and, for a GPU grader, a device).
func TestExternalDiesWithParent(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	parent := exec.Command(os.Args[0], "-test.run=^TestExternalParentHelper$", "-test.count=1")
	parent.Env = append(os.Environ(), parentEnv+"="+dir)
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "pid")
	var pids []int
	deadline := time.Now().Add(60 * time.Second)
	for len(pids) == 0 {
		if time.Now().After(deadline) {
			parent.Process.Kill()
			t.Fatal("the reward program did not start within 60s")
		}
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			for _, f := range strings.Fields(string(b)) {
				pid, _ := strconv.Atoi(f)
				pids = append(pids, pid)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	parent.Wait()
	deadline = time.Now().Add(30 * time.Second)
	for i, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				for _, p := range pids {
					syscall.Kill(p, syscall.SIGKILL)
				}
				t.Fatalf("%s %d still running 30s after rltrain was killed", []string{"reward program", "its child"}[i], pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// alive reports whether pid runs (a zombie waiting for a reaper does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
