package train

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rltrain/rltrain/train/metrics"
)

// metricsLog appends one JSON object per step to metrics.jsonl. On resume
// it keeps exactly the lines the checkpoint had written, dropping those of
// steps after the checkpoint (a run killed after its last checkpoint logged
// steps that the resumed run will redo).
type metricsLog struct {
	f     *os.File
	w     *bufio.Writer
	lines int
}

func openMetrics(path string, keep int) (*metricsLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	// Find the byte offset after `keep` lines and truncate there.
	r := bufio.NewReader(f)
	var off int64
	for n := 0; n < keep; n++ {
		line, err := r.ReadBytes('\n')
		off += int64(len(line))
		if err == io.EOF {
			if n < keep-1 || len(line) == 0 || line[len(line)-1] != '\n' {
				f.Close()
				return nil, fmt.Errorf("metrics: %s has %d complete lines, the checkpoint recorded %d", path, n, keep)
			}
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	if err := f.Truncate(off); err != nil {
		f.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &metricsLog{f: f, w: bufio.NewWriter(f), lines: keep}, nil
}

// Write appends the metrics of one step (non-finite values are written as
// null, which JSON can carry) and flushes.
func (l *metricsLog) Write(step int, m map[string]float64) error {
	if _, err := io.WriteString(l.w, metrics.Line(step, m)+"\n"); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	l.lines++
	return nil
}

// Sync makes the written lines durable (before a checkpoint records their
// count).
func (l *metricsLog) Sync() error {
	if err := l.w.Flush(); err != nil {
		return err
	}
	return l.f.Sync()
}

func (l *metricsLog) Close() error {
	if err := l.w.Flush(); err != nil {
		l.f.Close()
		return err
	}
	return l.f.Close()
}

// progress is a single-line progress bar with an ETA, drawn only when
// enabled (a terminal).
type progress struct {
	w       io.Writer
	on      bool
	total   int
	start   time.Time
	startAt int
}

func newProgress(w io.Writer, on bool, total, at int) *progress {
	return &progress{w: w, on: on, total: total, start: time.Now(), startAt: at}
}

func (p *progress) set(step int, m map[string]float64) {
	if !p.on || p.total == 0 {
		return
	}
	done := step - p.startAt
	eta := time.Duration(0)
	if done > 0 {
		eta = time.Duration(float64(time.Since(p.start)) / float64(done) * float64(p.total-step))
	}
	const width = 30
	fill := width * step / p.total
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d reward %.3f  ETA %s ", strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		step, p.total, m["reward"], eta.Round(time.Second))
}

func (p *progress) done() {
	if p.on {
		fmt.Fprintln(p.w)
	}
}
