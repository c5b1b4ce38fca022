package reward

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ExternalParams configures external, a reward computed by a user program.
//
// Protocol: the program reads one JSON object per line on stdin,
//
//	{"id": 17, "index": 3, "group": 1, "prompt": "…", "completion": "…",
//	 "finish_reason": "stop", "num_tokens": 212, "fields": {…}}
//
// and answers each with one line on stdout: an object
// {"id": 17, "score": 0.5, "metrics": {"name": 1.0}} or
// {"id": 17, "error": "why"}, or a bare number. Echoing the request's id
// (unique for the run) is optional but recommended: an answer whose id is
// not the request's is rejected, so a program that prints a stray line
// cannot shift its scores onto the wrong samples. Programs are long-lived;
// Workers of them serve requests concurrently. The first request after a
// (re)start may take StartupTimeout longer than Timeout, for the program to
// load. A program that exceeds its time on a request is killed (with its
// process group) and restarted for the next request; one that exits, prints
// a line that is not a valid answer, answers another request or prints a
// line nobody asked for is restarted too. Either way the sample is marked
// failed and the run goes on.
type ExternalParams struct {
	Command []string `json:"command"` // argv; required
	Dir     string   `json:"dir"`     // working directory; default the current one
	Env     []string `json:"env"`     // extra KEY=VALUE entries
	Workers int      `json:"workers"` // processes; default 2
	Timeout Duration `json:"timeout"` // per request; default 10s
	// StartupTimeout is the extra time the first request after a start
	// may take (loading a model, say); default 60s.
	StartupTimeout Duration `json:"startup_timeout"`
	MaxLineBytes   int      `json:"max_line_bytes"` // longest accepted answer line; default 1 MiB
	// MaxCrashes is how many consecutive failures (crash, timeout,
	// garbage) end a batch early: the remaining samples fail at once
	// instead of restarting a broken program thousands of times. Default 8.
	MaxCrashes int `json:"max_crashes"`
}

// DefaultExternalParams returns external's defaults.
func DefaultExternalParams() ExternalParams {
	return ExternalParams{Workers: 2, Timeout: Duration(10 * time.Second), StartupTimeout: Duration(time.Minute), MaxLineBytes: 1 << 20, MaxCrashes: 8}
}

// External is a reward served by a pool of user processes. Range: whatever
// the program returns (non-finite values count as failures).
type External struct {
	p    ExternalParams
	pool chan *extProc

	closed atomic.Bool
	mu     sync.Mutex
	all    []*extProc
	nextID atomic.Uint64 // request ids, unique for the reward's life
}

// NewExternal validates params and builds the reward. Processes start on
// first use.
func NewExternal(p ExternalParams) (*External, error) {
	if len(p.Command) == 0 || p.Command[0] == "" {
		return nil, errors.New("param \"command\": required (a list: program and arguments)")
	}
	if p.Workers <= 0 || p.Workers > 256 {
		return nil, fmt.Errorf("param \"workers\": want 1..256, got %d", p.Workers)
	}
	if p.Timeout <= 0 {
		return nil, fmt.Errorf("param \"timeout\": want > 0")
	}
	if p.StartupTimeout < 0 {
		return nil, fmt.Errorf("param \"startup_timeout\": want >= 0")
	}
	if p.MaxLineBytes <= 0 {
		return nil, fmt.Errorf("param \"max_line_bytes\": want > 0")
	}
	if p.MaxCrashes <= 0 {
		return nil, fmt.Errorf("param \"max_crashes\": want > 0")
	}
	e := &External{p: p, pool: make(chan *extProc, p.Workers)}
	for i := 0; i < p.Workers; i++ {
		pr := &extProc{}
		e.all = append(e.all, pr)
		e.pool <- pr
	}
	return e, nil
}

type extRequest struct {
	ID           uint64         `json:"id"`
	Index        int            `json:"index"`
	Group        int            `json:"group"`
	Prompt       string         `json:"prompt"`
	Completion   string         `json:"completion"`
	FinishReason string         `json:"finish_reason"`
	NumTokens    int            `json:"num_tokens"`
	Fields       map[string]any `json:"fields"`
}

type extAnswer struct {
	ID      *uint64            `json:"id"`
	Score   *float64           `json:"score"`
	Error   string             `json:"error"`
	Metrics map[string]float64 `json:"metrics"`
}

// Score implements Reward.
func (e *External) Score(ctx context.Context, samples []Sample) (Scores, error) {
	if e.closed.Load() {
		return Scores{}, errors.New("external reward is closed")
	}
	out := Scores{Values: make([]float64, len(samples)), Errs: make([]error, len(samples))}
	metricSum := map[string]float64{}
	metricN := map[string]int{}
	var mmu sync.Mutex
	var crashes atomic.Int64 // consecutive failures
	// The last failure's message. Failures have different concrete error
	// types (a start error, a timeout, a closed pipe, a cancelled context),
	// so they are kept behind one pointer type.
	var lastCrash atomic.Pointer[string]
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < e.p.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(samples) {
					return
				}
				if err := ctx.Err(); err != nil {
					out.Errs[i] = err
					continue
				}
				if crashes.Load() >= int64(e.p.MaxCrashes) {
					last := "unknown"
					if p := lastCrash.Load(); p != nil {
						last = *p
					}
					out.Errs[i] = fmt.Errorf("skipped after %d consecutive failures; last: %s", e.p.MaxCrashes, last)
					continue
				}
				v, metrics, broken, err := e.safeCall(ctx, i, &samples[i])
				if broken {
					crashes.Add(1)
					msg := "failed"
					if err != nil {
						msg = err.Error()
					}
					lastCrash.Store(&msg)
				} else {
					crashes.Store(0)
				}
				if err != nil {
					out.Errs[i] = err
					continue
				}
				out.Values[i] = v
				if len(metrics) > 0 {
					mmu.Lock()
					for k, m := range metrics {
						metricSum[k] += m
						metricN[k]++
					}
					mmu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(metricSum) > 0 {
		out.Metrics = map[string]float64{}
		for k, s := range metricSum {
			out.Metrics[k] = s / float64(metricN[k])
		}
	}
	return out, nil
}

// safeCall is call with a panic turned into a failure of this sample: the
// workers run outside the Set's recover, and a panic there would end the
// whole process.
func (e *External) safeCall(ctx context.Context, i int, s *Sample) (v float64, metrics map[string]float64, broken bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, metrics, broken, err = 0, nil, true, fmt.Errorf("panic: %v", r)
		}
	}()
	return e.call(ctx, i, s)
}

// call sends one request to a pooled process. broken reports that the
// process failed (and was killed) rather than the program reporting an
// error for this sample.
func (e *External) call(ctx context.Context, i int, s *Sample) (v float64, metrics map[string]float64, broken bool, err error) {
	var pr *extProc
	select {
	case pr = <-e.pool:
	case <-ctx.Done():
		return 0, nil, false, ctx.Err()
	}
	defer func() { e.pool <- pr }()
	if e.closed.Load() {
		return 0, nil, false, errors.New("external reward is closed")
	}
	if !pr.alive() {
		if err := pr.start(e.p); err != nil {
			return 0, nil, true, err
		}
		if e.closed.Load() { // Close ran while the program started
			pr.kill()
			return 0, nil, false, errors.New("external reward is closed")
		}
	}
	fields := s.Fields
	if fields == nil {
		fields = map[string]any{} // programs can rely on an object
	}
	id := e.nextID.Add(1)
	req, err := json.Marshal(extRequest{
		ID: id, Index: i, Group: s.Group, Prompt: s.Prompt, Completion: validUTF8(s.Completion),
		FinishReason: s.FinishReason, NumTokens: len(s.CompletionIDs), Fields: fields,
	})
	if err != nil {
		return 0, nil, false, fmt.Errorf("encode request: %w", err)
	}
	timeout := time.Duration(e.p.Timeout)
	if pr.fresh {
		timeout += time.Duration(e.p.StartupTimeout)
	}
	line, err := pr.roundTrip(ctx, append(req, '\n'), timeout)
	if err != nil {
		pr.kill()
		return 0, nil, true, err
	}
	pr.fresh = false
	v, metrics, err = parseExtAnswer(line, id)
	var perr programError
	if errors.As(err, &perr) {
		return 0, nil, false, err
	}
	if err != nil {
		// The stream may be out of step with our requests: start afresh.
		pr.kill()
		return 0, nil, true, err
	}
	return v, metrics, false, nil
}

type programError struct{ msg string }

func (p programError) Error() string { return "program reported: " + p.msg }

// parseExtAnswer reads the answer to request id.
func parseExtAnswer(line []byte, id uint64) (float64, map[string]float64, error) {
	line = bytes.TrimSpace(line)
	if len(line) > 0 && line[0] == '{' {
		var a extAnswer
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			return 0, nil, fmt.Errorf("bad answer line %s: %w", quoteShort(line), err)
		}
		if a.ID != nil && *a.ID != id {
			return 0, nil, fmt.Errorf("answer %s is for request %d, not %d: the program wrote more (or fewer) lines than it was asked for", quoteShort(line), *a.ID, id)
		}
		if a.Error != "" {
			return 0, nil, programError{a.Error}
		}
		if a.Score == nil {
			return 0, nil, fmt.Errorf("answer line has no score: %s", quoteShort(line))
		}
		return *a.Score, a.Metrics, nil
	}
	var f float64
	if err := json.Unmarshal(line, &f); err != nil {
		return 0, nil, fmt.Errorf("bad answer line %s: want a number or a JSON object", quoteShort(line))
	}
	return f, nil, nil
}

func quoteShort(b []byte) string {
	const max = 80
	if len(b) > max {
		return fmt.Sprintf("%q…", b[:max])
	}
	return fmt.Sprintf("%q", b)
}

// Close kills every process. Score calls after Close fail.
func (e *External) Close() error {
	e.closed.Store(true)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, pr := range e.all {
		pr.kill()
	}
	return nil
}

// extProc is one program instance. It is used by one request at a time
// (it lives in the pool channel), so its fields need no lock except for
// kill from Close.
type extProc struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  *os.File
	lines  chan lineResult
	exited chan struct{}
	stop   chan struct{} // closed by kill: the line reader gives up
	stderr *tailWriter
	fresh  bool // started and not yet answered: StartupTimeout applies
}

type lineResult struct {
	line []byte
	err  error
}

func (p *extProc) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *extProc) start(ep ExternalParams) error {
	p.kill()
	// A command that cannot be found fails here, with the same message
	// whether or not a supervisor starts it (see wrapCommand).
	if probe := exec.Command(ep.Command[0]); probe.Err != nil {
		return fmt.Errorf("start %s: %w", ep.Command[0], probe.Err)
	}
	if name := ep.Command[0]; strings.ContainsRune(name, os.PathSeparator) {
		if !filepath.IsAbs(name) && ep.Dir != "" {
			name = filepath.Join(ep.Dir, name)
		}
		if _, err := os.Stat(name); err != nil {
			return fmt.Errorf("start %s: %w", ep.Command[0], err)
		}
	}
	path, args, env := wrapCommand(ep.Command)
	cmd := exec.Command(path, args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Dir = ep.Dir
	if len(ep.Env) > 0 || env != "" {
		cmd.Env = append(os.Environ(), ep.Env...)
		if env != "" {
			cmd.Env = append(cmd.Env, env)
		}
	}
	setProcessGroup(cmd)
	inR, inW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start %s: %w", ep.Command[0], err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return fmt.Errorf("start %s: %w", ep.Command[0], err)
	}
	tail := &tailWriter{max: 2048}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, tail
	cmd.WaitDelay = time.Second
	if err := startCmd(cmd); err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return fmt.Errorf("start %s: %w", ep.Command[0], err)
	}
	inR.Close()
	outW.Close()
	exited := make(chan struct{})
	stop := make(chan struct{})
	lines := make(chan lineResult, 1)
	go func() {
		_ = cmd.Wait() // the exit status is reported through the reader
		close(exited)
	}()
	go readLines(outR, ep.MaxLineBytes, lines, stop)
	p.mu.Lock()
	p.cmd, p.stdin, p.lines, p.exited, p.stop, p.stderr = cmd, inW, lines, exited, stop, tail
	p.fresh = true
	p.mu.Unlock()
	return nil
}

// readLines forwards complete lines; it ends with an error (io.EOF when the
// program closed stdout) or when stop is closed.
func readLines(r *os.File, maxLine int, out chan<- lineResult, stop <-chan struct{}) {
	defer r.Close()
	send := func(lr lineResult) bool {
		select {
		case out <- lr:
			return true
		case <-stop:
			return false
		}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		var line []byte
		for {
			chunk, err := br.ReadSlice('\n')
			line = append(line, chunk...)
			if len(line) > maxLine {
				send(lineResult{err: fmt.Errorf("answer line longer than %d bytes", maxLine)})
				return
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				send(lineResult{err: err})
				return
			}
			break
		}
		if !send(lineResult{line: line}) {
			return
		}
	}
}

func (p *extProc) roundTrip(ctx context.Context, req []byte, timeout time.Duration) ([]byte, error) {
	p.mu.Lock()
	stdin, lines, exited, tail := p.stdin, p.lines, p.exited, p.stderr
	p.mu.Unlock()
	// A line waiting before the request is sent answers nothing we asked:
	// the stream is out of step (a program that prints two lines per
	// request), and reading on would give this sample another's score.
	select {
	case lr := <-lines:
		if lr.err != nil {
			return nil, p.exitError(exited, tail, lr.err)
		}
		return nil, fmt.Errorf("the program wrote a line no request asked for (%s); restarting it (echo each request's id to have every answer checked)", quoteShort(bytes.TrimSpace(lr.line)))
	default:
	}
	deadline := time.Now().Add(timeout)
	_ = stdin.SetWriteDeadline(deadline)
	if _, err := stdin.Write(req); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("timed out after %s writing the request", timeout)
		}
		return nil, p.exitError(exited, tail, err)
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case lr := <-lines:
		if lr.err != nil {
			return nil, p.exitError(exited, tail, lr.err)
		}
		return lr.line, nil
	case <-timer.C:
		return nil, fmt.Errorf("timed out after %s", timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// exitError describes why the program stopped answering.
func (p *extProc) exitError(exited chan struct{}, tail *tailWriter, cause error) error {
	state := ""
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	select {
	case <-exited:
		// Wait has returned, so ProcessState is safe to read.
		if cmd != nil && cmd.ProcessState != nil {
			state = cmd.ProcessState.String()
		}
	case <-time.After(200 * time.Millisecond):
	}
	msg := "program stopped answering"
	if errors.Is(cause, io.EOF) {
		msg = "program closed its output"
	} else if cause != nil {
		msg = cause.Error()
	}
	if state != "" {
		msg += " (" + state + ")"
	}
	if last := tail.lastLine(); last != "" {
		msg += "; stderr: " + last
	}
	return errors.New(msg)
}

// kill stops the process and its group; safe to call at any time.
func (p *extProc) kill() {
	p.mu.Lock()
	cmd, stdin, exited, stop := p.cmd, p.stdin, p.exited, p.stop
	p.cmd, p.stdin, p.stop = nil, nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	close(stop)
	if stdin != nil {
		stdin.Close()
	}
	killProcessGroup(cmd)
	select {
	case <-exited:
	case <-time.After(2 * time.Second):
	}
}

// tailWriter keeps the last bytes written (the program's stderr).
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailWriter) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(b), nil
}

func (t *tailWriter) lastLine() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func init() {
	Register("external", "a user program speaking JSON lines on stdin/stdout, with a process pool, timeouts and restarts",
		func() any { p := DefaultExternalParams(); return &p },
		func(p any) (Reward, error) { return NewExternal(*p.(*ExternalParams)) })
}
