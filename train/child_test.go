package train

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rltrain/rltrain/train/config"
)

// A child is a training run in a child process of the test binary (see
// TestMain), so a test can signal or SIGKILL a real training process.

// holdEnv names an RL step after which a child blocks for good (before
// that step's checkpoint and logs), so that a test waiting for an earlier
// checkpoint kills a run that cannot have gone further, however loaded the
// machine.
const holdEnv = "RLTRAIN_TEST_HOLD_AFTER_STEP"

// childLimit bounds a wait for a child's progress. A child that exits is
// noticed at once, so the limit fires only for one that hangs: it is far
// above what a loaded 2-core machine needs for a few steps of a tiny model.
const childLimit = 5 * time.Minute

// holdAfterStep is the child mode's step hook for holdEnv (nil when unset).
func holdAfterStep(next func(t *Trainer, step int, s *rlStep)) func(t *Trainer, step int, s *rlStep) {
	hold, err := strconv.Atoi(os.Getenv(holdEnv))
	if err != nil {
		return next
	}
	return func(t *Trainer, step int, s *rlStep) {
		if next != nil {
			next(t, step, s)
		}
		if step == hold {
			select {}
		}
	}
}

// syncBuffer is a bytes.Buffer safe to read while a child process writes
// into it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type child struct {
	*exec.Cmd
	log  *syncBuffer   // the child's stderr
	done chan struct{} // closed once the child has exited
	err  error         // its exit, once done is closed
}

// startChild runs the trainer on c in a child process, resuming from
// resume unless it is empty, with env added to its environment. The child
// is killed when the test ends if it is still running.
func startChild(t *testing.T, c *config.Config, resume string, env ...string) *child {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cfg.yaml")
	yml, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, yml, 0o644); err != nil {
		t.Fatal(err)
	}
	ch := &child{Cmd: exec.Command(os.Args[0], "-test.run=^$"), log: &syncBuffer{}, done: make(chan struct{})}
	ch.Env = append(os.Environ(), append(env, "RLTRAIN_TEST_CONFIG="+path, "RLTRAIN_TEST_RESUME="+resume)...)
	ch.Stderr = ch.log
	if err := ch.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { ch.err = ch.Cmd.Wait(); close(ch.done) }()
	t.Cleanup(func() { ch.Process.Kill(); <-ch.done })
	return ch
}

// wait waits for the child to exit and returns how it exited.
func (ch *child) wait() error {
	<-ch.done
	return ch.err
}

// waitFor polls until cond holds; a child that exits first, or childLimit
// without it, fail the test.
func (ch *child) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(childLimit)
	for !cond() {
		select {
		case <-ch.done:
			t.Fatalf("the training process ended (%v) before %s:\n%s", ch.err, what, ch.log.String())
		case <-deadline:
			ch.Process.Kill()
			t.Fatalf("%s did not happen in %v:\n%s", what, childLimit, ch.log.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// startLogged runs c in a child process and waits until its
// metrics.jsonl holds n lines.
func startLogged(t *testing.T, c *config.Config, n int) *child {
	t.Helper()
	ch := startChild(t, c, "")
	path := filepath.Join(c.Train.OutDir, "metrics.jsonl")
	ch.waitFor(t, fmt.Sprintf("%d lines in %s", n, path), func() bool {
		b, _ := os.ReadFile(path)
		return bytes.Count(b, []byte("\n")) >= n
	})
	return ch
}

// killAfter runs c in a child process and SIGKILLs it once the checkpoint
// of the given step is complete. The child holds after step+1, so the kill
// always lands before any later checkpoint.
func killAfter(t *testing.T, c *config.Config, step int) {
	t.Helper()
	done := filepath.Join(c.Train.OutDir, "checkpoints", fmt.Sprintf("step-%d", step), doneFile)
	ch := startChild(t, c, "", fmt.Sprintf("%s=%d", holdEnv, step+1))
	ch.waitFor(t, done+" to appear", func() bool {
		_, err := os.Stat(done)
		return err == nil
	})
	ch.Process.Kill()
	ch.wait()
}
