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
