package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFile is the file in a run directory that a running trainer holds an
// exclusive lock on (flock on Unix); it also records the holder's PID, for
// the message a second run gets.
const lockFile = ".rltrain.lock"

// runLock is the held lock of one or more directories.
type runLock struct{ files []*os.File }

// lockRun locks the run's output directory and, when it lies elsewhere,
// its checkpoint directory, creating them as needed. It fails at once,
// naming the holder, when another run holds either.
func lockRun(outDir, ckptDir string) (*runLock, error) {
	dirs := []string{outDir}
	if rel, err := filepath.Rel(outDir, ckptDir); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		dirs = append(dirs, ckptDir)
	}
	l := &runLock{}
	for i, dir := range dirs {
		key := "train.out_dir"
		if i > 0 {
			key = "checkpoint.dir"
		}
		f, err := lockDir(dir, key)
		if err != nil {
			l.release()
			return nil, err
		}
		l.files = append(l.files, f)
	}
	return l, nil
}

func lockDir(dir, key string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: lock: %w", key, err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			holder := "another process"
			if b, err := os.ReadFile(path); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
					holder = fmt.Sprintf("process %d", pid)
				}
			}
			return nil, fmt.Errorf("%s: %s is in use by another run (%s holds %s); wait for it to finish, stop it, or use another directory", key, dir, holder, path)
		}
		return nil, fmt.Errorf("%s: lock %s: %w", key, path, err)
	}
	// Ours now: record who holds it.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// release unlocks (closing the file drops the lock); safe on nil.
func (l *runLock) release() {
	if l == nil {
		return
	}
	for _, f := range l.files {
		f.Close()
	}
	l.files = nil
}
