package kernels

// Optional capabilities. A Backend may also implement these; callers test
// for them with a type assertion and fall back when they are absent.

// RowWorkers is implemented by a backend that can hand out single-threaded
// backends over its own memory (a buffer of the backend is a buffer of each
// worker). A caller whose rows are independent — a decoding step's
// sequences — runs each share of the rows on its own worker from its own
// goroutine: one hand-off per step instead of one per operation.
type RowWorkers interface {
	RowWorkers() []Backend
}

// InvariantRows is implemented by a backend whose decoding step computes
// each row the same way, to the bit, whatever the other rows, as long as a
// step has at most InvariantRows() rows.
type InvariantRows interface {
	InvariantRows() int
}

// RowSampler is implemented by a backend that draws the next token of each
// row of logits where the logits lie (a GPU), so that a decoding step
// transfers a token id and a log-prob per row instead of the [rows × vocab]
// logits. It samples exactly as the rollout package's CPU sampler does
// (same filters, same tie-breaking, the same counter-based random stream,
// internal/rng, at each row's coordinates); only the floating-point
// rounding of the weights differs, so a token can differ only when a draw
// falls within rounding of a cumulative boundary.
type RowSampler interface {
	// SampleRows writes the token and its log-prob under
	// log softmax(logits / T) (unfiltered; T = 1 when greedy) for each row
	// of logits[len(draws) × vocab].
	SampleRows(tokens []int32, logprobs []float32, logits Buf, vocab int, p SampleParams, seed uint64, draws []Draw)
}

// SampleParams are the sampling filters of RowSampler, as the rollout
// package's Sampling defines them (no repetition penalty).
type SampleParams struct {
	Temperature float64 // 0 picks the argmax, lowest id on ties
	TopK        int     // keep the k highest-ranked tokens; 0 disables
	TopP        float64 // keep the smallest top-ranked set with this share of the mass; 1 disables
	MinP        float64 // keep tokens with at least MinP times the top weight; 0 disables
}

// Draw names a row's random draw: the coordinates of internal/rng's stream
// under the call's seed.
type Draw struct {
	Prompt, Sample, Step uint64
}

// RowInvariantForward is implemented by a backend that can compute every
// product of a forward pass row by row, each row of A·Wᵀ by the same
// operations whatever the other rows, as its decoding steps do; with the
// model's attention also computed row by row (model.Model.SetRowInvariant),
// a training forward pass then reproduces the sampler's logits to the bit.
type RowInvariantForward interface {
	// SetRowInvariant turns row-invariant products on or off for every
	// later call; it returns false, changing nothing, when the backend
	// cannot.
	SetRowInvariant(on bool) bool
	// RowLogProb is log softmax(invTemp·z)[target] for a row of raw logits
	// z, computed exactly as the backend's fused output-layer kernels
	// (TokenLogProbs, TokenLogProbsGrad) compute it for the same row.
	RowLogProb(logits []float32, target int32, invTemp float32) float32
}
