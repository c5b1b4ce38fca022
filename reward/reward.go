package reward

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// Finish reasons a sampler reports for a completion.
const (
	FinishStop   = "stop"   // the model emitted an end-of-sequence or stop token
	FinishLength = "length" // the completion hit the length limit (truncated)
)

// Sample is one completion to score, with everything a reward may look at.
type Sample struct {
	Prompt string
	// PromptIDs are the prompt's token ids as the policy saw them (chat
	// template applied); nil when unknown (the likelihood reward then
	// encodes Prompt).
	PromptIDs     []int32
	Completion    string
	CompletionIDs []int32 // completion token ids; length rewards count these
	FinishReason  string  // FinishStop, FinishLength or "" when unknown
	// Fields holds the dataset row's extra fields as decoded JSON
	// (string, float64, bool, []any, map[string]any) or plain Go values
	// (int, []int, []string ...). See the package doc for the names each
	// built-in reads.
	Fields map[string]any
	// Group identifies the prompt the completion was sampled for: samples
	// with the same Group are one GRPO group. Group-aware rewards
	// (adaptive checklist weights) use it.
	Group int
}

// Scores is what a Reward returns for a batch.
type Scores struct {
	// Values holds one score per sample, in batch order.
	Values []float64
	// Errs is nil or holds one entry per sample; a non-nil entry marks a
	// sample the reward could not score (its value is ignored).
	Errs []error
	// Metrics are optional named batch statistics (logged as
	// rewards/<name>/<metric>).
	Metrics map[string]float64
}

// failed reports whether sample i has an error.
func (s Scores) failed(i int) bool { return s.Errs != nil && s.Errs[i] != nil }

// Reward scores a batch of samples. The Set never calls one Reward
// concurrently with itself, but runs different Rewards concurrently on the
// same samples, so Score must not modify them. It should return promptly
// once ctx is done, marking unfinished samples with errors.
type Reward interface {
	Score(ctx context.Context, samples []Sample) (Scores, error)
}

// Ranged is implemented by rewards that promise a score range. The bounds are
// documented per reward and checked by property tests.
type Ranged interface {
	Range() (lo, hi float64)
}

// Closer is implemented by rewards that hold resources (external processes).
type Closer interface {
	Close() error
}

// Stateful is implemented by rewards that learn during training (running pass
// rates) so that a resumed run continues from the same state.
type Stateful interface {
	MarshalState() ([]byte, error)
	UnmarshalState([]byte) error
}

// SampleFunc scores one sample. It is the easy way to write a reward: wrap it
// with PerSample to get panic isolation and parallelism.
type SampleFunc func(ctx context.Context, s *Sample) (float64, error)

// PerSample turns a per-sample function into a Reward that scores samples in
// parallel on all cores. A panic while scoring one sample becomes that
// sample's error; the other samples are unaffected.
func PerSample(f SampleFunc) Reward { return perSample{f: f} }

type perSample struct{ f SampleFunc }

func (p perSample) Score(ctx context.Context, samples []Sample) (Scores, error) {
	return runEach(ctx, len(samples), func(i int) (float64, error) { return p.f(ctx, &samples[i]) }), nil
}

// runEach calls f(i) for every sample index in parallel. A panic or error
// becomes that sample's error. When ctx is done runEach returns at once:
// samples not finished by then get ctx's error, and calls still running
// are abandoned (their results are discarded when they return), so one
// sample that hangs costs only itself.
func runEach(ctx context.Context, n int, f func(i int) (float64, error)) Scores {
	var (
		mu        sync.Mutex // guards values, errs, done and abandoned
		values    = make([]float64, n)
		errs      []error
		done      = make([]bool, n)
		abandoned bool
	)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		parallelFor(n, func(i int) {
			if abandoned := func() bool { mu.Lock(); defer mu.Unlock(); return abandoned }(); abandoned {
				return
			}
			v, err := callIsolated(ctx, f, i)
			mu.Lock()
			defer mu.Unlock()
			if abandoned {
				return
			}
			done[i] = true
			if err != nil {
				if errs == nil {
					errs = make([]error, n)
				}
				errs[i] = err
				return
			}
			values[i] = v
		})
	}()
	select {
	case <-finished:
		return Scores{Values: values, Errs: errs}
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	abandoned = true
	out := Scores{Values: values, Errs: errs}
	for i, d := range done {
		if !d {
			if out.Errs == nil {
				out.Errs = make([]error, n)
			}
			out.Errs[i] = fmt.Errorf("not scored before the deadline: %w", ctx.Err())
		}
	}
	// The slices are handed over; abandoned workers no longer write them.
	return out
}

func callIsolated(ctx context.Context, f func(i int) (float64, error), i int) (v float64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f(i)
}

// parallelFor runs body(i) for i in [0, n) on GOMAXPROCS workers. Work is
// handed out one index at a time so that one slow sample does not idle the
// other cores.
func parallelFor(n int, body func(i int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		for i := 0; i < n; i++ {
			body(i)
		}
		return
	}
	// One sample per claim: a sample that hangs then holds up no other.
	const chunk = 1
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer wg.Done()
			for {
				start := int(next.Add(chunk)) - chunk
				if start >= n {
					return
				}
				end := min(start+chunk, n)
				for i := start; i < end; i++ {
					body(i)
				}
			}
		}()
	}
	wg.Wait()
}

// Factory builds a reward from its params, already decoded into the typed
// params struct the type registered.
type Factory func(params any) (Reward, error)

type registration struct {
	newParams func() any // returns a pointer to a params struct holding the defaults
	build     Factory
	doc       string
}

var (
	registryMu sync.RWMutex
	registry   = map[string]registration{}
)

// Register adds a reward type. newParams returns a pointer to a fresh params
// struct filled with defaults; config params are decoded into it (unknown keys
// are errors) and the result is passed to build. Registering a name twice
// panics, since it is a programming error caught at init time.
func Register(typ, doc string, newParams func() any, build Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[typ]; dup {
		panic("reward: type registered twice: " + typ)
	}
	registry[typ] = registration{newParams: newParams, build: build, doc: doc}
}

// Types lists the registered reward types with their one-line docs, sorted.
func Types() [][2]string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([][2]string, 0, len(registry))
	for name, r := range registry {
		out = append(out, [2]string{name, r.doc})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

func lookup(typ string) (registration, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	r, ok := registry[typ]
	return r, ok
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
