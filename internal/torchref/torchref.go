// Package torchref runs the repository's PyTorch reference scripts from Go
// tests. It skips, with a message, only when the interpreter or torch is
// genuinely missing; `make setup` installs both.
package torchref

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Python is Debian's interpreter, which has python3-torch.
const Python = "/usr/bin/python3"

// Script returns the path of scripts/<name> in the repository holding the
// current directory.
func Script(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "scripts", name)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("torchref: no go.mod above the test's directory")
		}
		dir = parent
	}
}

// JSON runs scripts/<script> with req as JSON on stdin and decodes its
// JSON answer into resp.
func JSON(t testing.TB, script string, req, resp any) {
	t.Helper()
	if _, err := os.Stat(Python); err != nil {
		t.Skipf("PyTorch reference skipped: %s not found", Python)
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Python, Script(t, script))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && strings.Contains(stderr.String(), "No module named 'torch'") {
		t.Skipf("PyTorch reference skipped: %s cannot import torch (run make setup)", Python)
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	if err := json.Unmarshal(out, resp); err != nil {
		t.Fatalf("decode %s output: %v", script, err)
	}
}
