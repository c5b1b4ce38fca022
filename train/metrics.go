package train

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rltrain/rltrain/train/config"
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

// headLines counts the complete lines at the start of path, up to max, and
// returns their length in bytes; a missing file has none.
func headLines(path string, max int) (lines int, size int64, err error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for lines < max {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			size += int64(len(line))
			for err == bufio.ErrBufferFull {
				line, err = r.ReadSlice('\n')
				size += int64(len(line))
			}
			if err == nil {
				lines++
			}
			continue
		}
		if err != nil {
			break
		}
		size += int64(len(line))
		lines++
	}
	return lines, size, nil
}

// openRunMetrics opens the run's metrics file. A fresh run starts it
// empty. A resumed run keeps the lines its checkpoint had written; when
// the file lacks them because it is not the one the checkpoint's run
// wrote (a new log.file, or a resume into a new train.out_dir), it is
// started with a copy of that run's first lines, or, when those cannot be
// found, afresh from the checkpoint's step, and the log says which.
func (t *Trainer) openRunMetrics(resumeDir string) (*metricsLog, error) {
	path := t.metricsPath()
	keep := t.state.MetricLines
	if resumeDir == "" || keep == 0 {
		return openMetrics(path, keep)
	}
	have, _, err := headLines(path, keep)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if have >= keep {
		return openMetrics(path, keep)
	}
	old := checkpointMetricsPath(resumeDir)
	if old != "" && sameFile(old, path) {
		return openMetrics(path, keep) // the run's own file, shortened: report it
	}
	if old != "" {
		if n, size, err := headLines(old, keep); err == nil && n == keep {
			if err := copyHead(old, path, size); err != nil {
				return nil, fmt.Errorf("metrics: %w", err)
			}
			t.logf("metrics: %s continues %s (its first %d lines, up to the checkpoint, copied)", path, old, keep)
			return openMetrics(path, keep)
		}
	}
	where := "the run's metrics file is unknown"
	if old != "" {
		where = fmt.Sprintf("%s does not hold them", old)
	}
	t.logf("metrics: %s starts afresh after %s: the %d lines logged before it are not available (%s)", path, filepath.Base(resumeDir), keep, where)
	t.state.MetricLines = 0
	return openMetrics(path, 0)
}

// checkpointMetricsPath is the metrics file of the run that wrote the
// checkpoint in dir, from the config it stored ("" when unknown).
func checkpointMetricsPath(dir string) string {
	st, err := readState(dir)
	if err != nil {
		return ""
	}
	old, err := config.Parse([]byte(st.Config), filepath.Join(dir, stateFile))
	if err != nil {
		return ""
	}
	if old.Log.File != "" {
		return old.Log.File
	}
	return filepath.Join(old.Train.OutDir, "metrics.jsonl")
}

func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// copyHead writes the first size bytes of src to dst (replacing it),
// synced.
func copyHead(src, dst string, size int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err = io.CopyN(out, in, size); err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// discardMetrics is the metrics log of a rank other than 0 in a
// data-parallel run: it counts lines and writes nothing.
func discardMetrics(keep int) *metricsLog {
	return &metricsLog{w: bufio.NewWriter(io.Discard), lines: keep}
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
	if l.f == nil {
		return nil
	}
	return l.f.Sync()
}

func (l *metricsLog) Close() error {
	if l.f == nil {
		return nil
	}
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
