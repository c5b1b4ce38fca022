// Package cpu is the reference implementation of kernels.Backend: plain
// []float32 buffers, OpenBLAS for matrix products and goroutines for the
// element-wise and reduction work.
package cpu

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/rltrain/rltrain/kernels"
)

// F32 is the CPU buffer type: a slice of host memory.
type F32 []float32

// Len implements kernels.Buf.
func (f F32) Len() int { return len(f) }

var (
	_ kernels.Backend       = (*Backend)(nil)
	_ kernels.RowWorkers    = (*Backend)(nil)
	_ kernels.InvariantRows = (*Backend)(nil)

	_ kernels.RowInvariantForward = (*Backend)(nil)
)

// Backend runs kernels on the host. Its methods may be called from
// several goroutines, but each call uses all the backend's threads, so
// concurrent calls only compete for the same cores.
type Backend struct {
	threads int
	// rowInvariant sends every A·Wᵀ product to rowsGemm whatever its
	// row count (SetRowInvariant); shared with the row workers.
	rowInvariant *atomic.Bool
	workers      []kernels.Backend // RowWorkers, made on first use

	mu      sync.Mutex
	scratch [][]float32 // reusable large temporaries (logit chunks)
	// probabilities kept by the last single-chunk TokenLogProbs call
	probs    []float32
	probsKey probKey
}

// getScratch returns a temporary of n floats, reusing a previous one when
// possible so that per-step temporaries of tens of megabytes do not churn
// the garbage collector. Return it with putScratch.
func (b *Backend) getScratch(n int) []float32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, s := range b.scratch {
		if cap(s) >= n {
			b.scratch = append(b.scratch[:i], b.scratch[i+1:]...)
			return s[:n]
		}
	}
	return make([]float32, n)
}

func (b *Backend) putScratch(s []float32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.scratch) < 4 {
		b.scratch = append(b.scratch, s)
	}
}

// New returns a CPU backend running its kernels on the given number of
// goroutines; threads ≤ 0 means one per core.
func New(threads int) *Backend {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	// OpenBLAS itself stays single-threaded: see Gemm.
	setBLASThreads(1)
	return &Backend{threads: threads, rowInvariant: new(atomic.Bool)}
}

// Threads reports the worker count.
func (b *Backend) Threads() int { return b.threads }

// RowWorkers returns one single-threaded backend per thread over the same
// memory (a buffer of b is a buffer of each). A caller whose rows are
// independent — a decoding step's sequences — runs each share of the rows
// on its own worker from its own goroutine: one hand-off per step instead
// of one per operation. A share of at most InvariantRows rows gives the
// same bits as the whole batch would (every operation of a decoding step
// then computes a row the same way whatever the other rows and threads).
func (b *Backend) RowWorkers() []kernels.Backend {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.workers == nil {
		for range b.threads {
			b.workers = append(b.workers, &Backend{threads: 1, rowInvariant: b.rowInvariant})
		}
	}
	return b.workers
}

// Name implements kernels.Memory.
func (b *Backend) Name() string { return "cpu" }

// Data returns the host slice behind a CPU buffer. It panics when given a
// buffer from another backend, which is a programming error.
func Data(buf kernels.Buf) []float32 {
	if buf == nil {
		return nil
	}
	f, ok := buf.(F32)
	if !ok {
		panic(fmt.Sprintf("cpu: buffer of type %T is not a CPU buffer", buf))
	}
	return f
}

// VectorKernels reports whether the AVX-512 code paths are in use (a build
// with GOEXPERIMENT=simd on a CPU that has AVX-512).
func VectorKernels() bool { return simdEnabled() }
