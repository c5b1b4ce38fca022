package dist

import (
	"errors"
	"sync"
	"time"
)

// Reducer sums gradient buckets across ranks in the background, so that
// the sum of one bucket runs while the backward pass still computes the
// next (as PyTorch's DDP does). Buckets are host float32 slices reduced in
// place with AllReduceSum, in the order they were started, which every
// rank must share; no other collective on the same Comm may run between
// the first Start and Wait.
type Reducer struct {
	c       Comm
	jobs    chan []float32
	done    chan error
	pending int
	mu      sync.Mutex
	stats   ReduceStats
	window  [2]time.Time // the current compute window, for the overlap
	scratch Scratch
}

// ReduceStats is the reducer's running account.
type ReduceStats struct {
	// Buckets and Bytes reduced.
	Buckets int
	Bytes   int64
	// Busy is the time spent in all-reduces; Overlapped the part of it
	// inside a compute window (Computing(true) .. Computing(false)).
	Busy, Overlapped time.Duration
	// Waited is the time Wait blocked the caller.
	Waited time.Duration
}

// NewReducer starts the background goroutine.
func NewReducer(c Comm) *Reducer {
	r := &Reducer{c: c, jobs: make(chan []float32, 1024), done: make(chan error, 1024)}
	go r.loop()
	return r
}

func (r *Reducer) loop() {
	for buf := range r.jobs {
		start := time.Now()
		err := AllReduceSum(r.c, buf, &r.scratch)
		end := time.Now()
		r.mu.Lock()
		r.stats.Buckets++
		r.stats.Bytes += int64(len(buf)) * 4
		r.stats.Busy += end.Sub(start)
		r.stats.Overlapped += overlap(start, end, r.window)
		r.mu.Unlock()
		r.done <- err
	}
}

// overlap is the length of [s, e] inside window (an open window's end is
// e itself).
func overlap(s, e time.Time, window [2]time.Time) time.Duration {
	ws, we := window[0], window[1]
	if ws.IsZero() {
		return 0
	}
	if we.IsZero() || we.After(e) {
		we = e
	}
	if ws.Before(s) {
		ws = s
	}
	if we.Before(ws) {
		return 0
	}
	return we.Sub(ws)
}

// Computing marks the start (true) or end (false) of a compute window.
func (r *Reducer) Computing(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.window = [2]time.Time{time.Now(), {}}
	} else if !r.window[0].IsZero() {
		r.window[1] = time.Now()
	}
}

// Start queues buf for summing; the caller must not touch it until Wait.
func (r *Reducer) Start(buf []float32) {
	r.pending++
	r.jobs <- buf
}

// Wait blocks until every started bucket is summed.
func (r *Reducer) Wait() error {
	start := time.Now()
	var errs []error
	for ; r.pending > 0; r.pending-- {
		if err := <-r.done; err != nil {
			errs = append(errs, err)
		}
	}
	r.mu.Lock()
	r.stats.Waited += time.Since(start)
	r.window = [2]time.Time{}
	r.mu.Unlock()
	return errors.Join(errs...)
}

// Stats returns the account so far and, with reset, starts a new one.
func (r *Reducer) Stats(reset bool) ReduceStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	if reset {
		r.stats = ReduceStats{}
	}
	return s
}

// Close stops the goroutine (after Wait).
func (r *Reducer) Close() { close(r.jobs) }
