package reward

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const graderPy = `import sys, json, time, os
for line in sys.stdin:
    req = json.loads(line)
    c = req["completion"]
    if c == "sleep":
        time.sleep(3600)
    if c == "crash":
        sys.stderr.write("grader dying now\n")
        sys.stderr.flush()
        os._exit(3)
    if c == "garbage":
        print("this is not json")
    elif c == "error":
        print(json.dumps({"error": "cannot grade"}))
    elif c == "number":
        print(7)
    else:
        print(json.dumps({"score": len(c) + req["fields"].get("bonus", 0) + req["group"], "metrics": {"pid": os.getpid()}}))
    sys.stdout.flush()
`

func writeScript(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func newExternal(t *testing.T, p ExternalParams) *External {
	t.Helper()
	e, err := NewExternal(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func python(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	return "/usr/bin/python3"
}

func TestExternalMisbehaviour(t *testing.T) {
	script := writeScript(t, "grader.py", graderPy)
	p := DefaultExternalParams()
	p.Command = []string{python(t), script}
	p.Workers = 1 // one process, so every restart is observable in order
	// The sleeping request must time out; the others answer in
	// milliseconds, so 3s leaves a loaded machine room.
	p.Timeout = Duration(3 * time.Second)
	e := newExternal(t, p)
	samples := []Sample{
		{Completion: "abc", Fields: map[string]any{"bonus": 0.5}},
		{Completion: "sleep"},
		{Completion: "ab", Group: 10},
		{Completion: "crash"},
		{Completion: "abcd"},
		{Completion: "garbage"},
		{Completion: "a"},
		{Completion: "error"},
		{Completion: "number"},
	}
	var out Scores
	var err error
	within(t, hangLimit, "a batch with a request sleeping 1h", func() { out, err = e.Score(context.Background(), samples) })
	if err != nil {
		t.Fatal(err)
	}
	wantVal := map[int]float64{0: 3.5, 2: 12, 4: 4, 6: 1, 8: 7}
	wantErr := map[int]string{1: "timed out", 3: "grader dying now", 5: "bad answer line", 7: "program reported: cannot grade"}
	for i := range samples {
		if w, ok := wantErr[i]; ok {
			if out.Errs[i] == nil || !strings.Contains(out.Errs[i].Error(), w) {
				t.Errorf("sample %d: err %v, want it to contain %q", i, out.Errs[i], w)
			}
			continue
		}
		if out.Errs[i] != nil || out.Values[i] != wantVal[i] {
			t.Errorf("sample %d: %v (err %v), want %v", i, out.Values[i], out.Errs[i], wantVal[i])
		}
	}
	if _, ok := out.Metrics["pid"]; !ok {
		t.Errorf("metrics %v: want the program's pid metric averaged", out.Metrics)
	}
}

func TestExternalShellSleepKillsGroup(t *testing.T) {
	// A shell whose child (sleep) inherits stdout: killing only the shell
	// would leave the pipe open and the reader blocked.
	script := writeScript(t, "slow.sh", "#!/bin/bash\nwhile read -r line; do sleep 3600; echo 1; done\n")
	p := DefaultExternalParams()
	p.Command = []string{"/bin/bash", script}
	p.Workers = 2
	p.Timeout = Duration(200 * time.Millisecond)
	p.StartupTimeout = 0 // every request, the first included, gets 200ms
	e := newExternal(t, p)
	var out Scores
	var err error
	within(t, hangLimit, "4 timeouts of 200ms on 2 workers", func() { out, err = e.Score(context.Background(), make([]Sample, 4)) })
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range out.Errs {
		if e == nil || !strings.Contains(e.Error(), "timed out") {
			t.Errorf("sample %d: %v, want a timeout", i, e)
		}
	}
}

func TestExternalBrokenCommand(t *testing.T) {
	p := DefaultExternalParams()
	p.Command = []string{filepath.Join(t.TempDir(), "does-not-exist")}
	p.MaxCrashes = 3
	e := newExternal(t, p)
	out, err := e.Score(context.Background(), make([]Sample, 100))
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range out.Errs {
		if err == nil {
			t.Fatalf("sample %d: no error", i)
		}
	}
	if !strings.Contains(out.Errs[99].Error(), "consecutive failures") {
		t.Errorf("last error %v: want the batch cut short after repeated failures", out.Errs[99])
	}
	// A script that exits at once is restarted, then given up on.
	p.Command = []string{"/bin/sh", "-c", "echo oops >&2; exit 1"}
	e2 := newExternal(t, p)
	out, _ = e2.Score(context.Background(), make([]Sample, 10))
	if out.Errs[0] == nil || !strings.Contains(out.Errs[0].Error(), "oops") {
		t.Errorf("err %v: want the program's stderr in the message", out.Errs[0])
	}
}

func TestExternalParamsAndClose(t *testing.T) {
	if _, err := NewExternal(DefaultExternalParams()); err == nil {
		t.Error("no command accepted")
	}
	cfg := Config{Functions: []Spec{{Name: "ext", Type: "external", Params: map[string]any{
		"command": []any{"/bin/cat"}, "timeout": "2s", "workers": 3,
	}}}}
	set := newSet(t, cfg, WithLogger(func(m string) { t.Log(m) }))
	// cat echoes the request object back: that is not a valid answer.
	res := mustScore(t, set, []Sample{{Completion: "x"}})
	if !res.Excluded[0] || res.Metrics["reward/errors/ext"] != 1 {
		t.Errorf("echoed request should be a bad answer: %+v", res)
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	res, _ = set.Score(context.Background(), []Sample{{Completion: "x"}})
	if !res.Excluded[0] {
		t.Error("Score after Close should fail its samples")
	}
}

func TestExternalLongLineAndEnv(t *testing.T) {
	script := writeScript(t, "long.py", `import sys, os
for line in sys.stdin:
    if os.environ.get("LONG") == "1":
        print("1" * 5000)
    else:
        print(os.environ.get("SCORE", "0"))
    sys.stdout.flush()
`)
	p := DefaultExternalParams()
	p.Command = []string{python(t), script}
	p.MaxLineBytes = 100
	p.Env = []string{"LONG=1"}
	out, err := newExternal(t, p).Score(context.Background(), make([]Sample, 2))
	if err != nil {
		t.Fatal(err)
	}
	if out.Errs[0] == nil || !strings.Contains(out.Errs[0].Error(), "longer than 100 bytes") {
		t.Errorf("err %v, want a line-length error", out.Errs[0])
	}
	p.Env = []string{"SCORE=0.75"}
	out, err = newExternal(t, p).Score(context.Background(), make([]Sample, 3))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out.Values {
		if out.Errs[i] != nil || v != 0.75 {
			t.Errorf("sample %d: %v (%v), want 0.75 from the environment", i, v, out.Errs[i])
		}
	}
}

// A program that crashes and then cannot be restarted gives failures of
// different error types (an exit, then a start error); remembering the last
// of them used to panic the whole process (atomic.Value requires one
// concrete type).
func TestExternalCrashThenCannotRestart(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "grader.sh")
	// The script deletes itself and dies on its first request, so the
	// restart fails with "no such file".
	body := "#!/bin/sh\nread -r line\nrm -f \"$0\"\necho 'gone' >&2\nexit 3\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Functions: []Spec{{Name: "ext", Type: "external", Params: map[string]any{
		"command": []any{script}, "workers": 1, "max_crashes": 4, "timeout": "20s",
	}}}}
	set := newSet(t, cfg, WithLogger(func(m string) { t.Log(m) }))
	defer set.Close()
	res := mustScore(t, set, make([]Sample, 6))
	for i, x := range res.Excluded {
		if !x {
			t.Errorf("sample %d not excluded", i)
		}
	}
	if res.Metrics["reward/errors/ext"] != 6 {
		t.Errorf("errors %v, want 6", res.Metrics["reward/errors/ext"])
	}
}

// A program that hangs past the reward-level timeout while its per-request
// timeout is about to fire mixes a context error with timeout errors.
func TestExternalHangPastSetTimeout(t *testing.T) {
	script := writeScript(t, "hang.sh", "#!/bin/sh\nwhile read -r line; do sleep 30; done\n")
	cfg := Config{Timeout: 300 * time.Millisecond, Functions: []Spec{{Name: "ext", Type: "external", Params: map[string]any{
		"command": []any{"/bin/sh", script}, "workers": 2, "timeout": "300ms",
	}}}}
	set := newSet(t, cfg, WithLogger(func(m string) { t.Log(m) }))
	defer set.Close()
	for round := 0; round < 3; round++ {
		res := mustScore(t, set, make([]Sample, 8))
		for i, x := range res.Excluded {
			if !x {
				t.Errorf("round %d sample %d not excluded", round, i)
			}
		}
	}
}

// A program that takes longer to start than the per-request timeout is
// given startup_timeout for its first answer (it used to be restarted
// forever and never score anything).
func TestExternalSlowStart(t *testing.T) {
	script := writeScript(t, "slow.sh", "#!/bin/sh\nsleep 3\nwhile read -r line; do echo 1; done\n")
	p := DefaultExternalParams()
	p.Command = []string{"/bin/sh", script}
	p.Workers = 1
	p.Timeout = Duration(2 * time.Second)
	out, err := newExternal(t, p).Score(context.Background(), make([]Sample, 3))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range out.Errs {
		if e != nil || out.Values[i] != 1 {
			t.Errorf("sample %d: %v (%v), want 1", i, out.Values[i], e)
		}
	}
	// Without the allowance the first request times out.
	p.StartupTimeout = 0
	out, _ = newExternal(t, p).Score(context.Background(), make([]Sample, 1))
	if out.Errs[0] == nil || !strings.Contains(out.Errs[0].Error(), "timed out") {
		t.Errorf("startup_timeout 0: %v, want a timeout", out.Errs[0])
	}
}

// A program that prints two lines per request must not shift its scores
// onto other samples: answers echo the request id, and a mismatch (or a
// line nobody asked for) fails the sample and restarts the program.
func TestExternalDoublePrint(t *testing.T) {
	script := writeScript(t, "double.py", `import sys, json
for line in sys.stdin:
    req = json.loads(line)
    ans = json.dumps({"id": req["id"], "score": len(req["completion"])})
    print(ans)
    print(ans)
    sys.stdout.flush()
`)
	p := DefaultExternalParams()
	p.Command = []string{python(t), script}
	p.Workers = 1
	p.MaxCrashes = 100
	samples := make([]Sample, 12)
	for i := range samples {
		samples[i].Completion = strings.Repeat("x", i+1)
	}
	out, err := newExternal(t, p).Score(context.Background(), samples)
	if err != nil {
		t.Fatal(err)
	}
	scored := 0
	for i, e := range out.Errs {
		if e != nil {
			if !strings.Contains(e.Error(), "no request asked for") && !strings.Contains(e.Error(), "is for request") {
				t.Errorf("sample %d: unexpected error %v", i, e)
			}
			continue
		}
		scored++
		if out.Values[i] != float64(i+1) {
			t.Errorf("sample %d got score %v, another sample's (want %d)", i, out.Values[i], i+1)
		}
	}
	if scored == 0 {
		t.Error("no sample was scored")
	}
}
