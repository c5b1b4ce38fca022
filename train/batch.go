package train

import (
	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/model"
)

// seq is one training sequence: a prompt and its completion, with the
// per-completion-token quantities the loss needs.
type seq struct {
	ids    []int32 // prompt followed by completion
	prompt int     // prompt length; the loss covers ids[prompt:]
	group  int     // index of its prompt in the step (one GRPO group)

	adv       float32
	excluded  bool // a reward failed on it and its fallback drops it
	truncated bool // hit max_new_tokens without EOS
	correct   bool // DRPO positive

	// Per completion token (len(ids)-prompt entries).
	rolloutLogp, oldLogp, refLogp []float32
	// PPO with GAE: the critic's values before the update, the per-token
	// advantages and the returns.
	oldValues, tokAdv, returns []float32
}

func (s *seq) completionLen() int { return len(s.ids) - s.prompt }

// rowBatch lays a group of sequences out as a right-padded model batch.
// Row j of sequence i predicts ids[j+1]; completion token k of sequence i is
// predicted by row i*T + prompt−1 + k.
type rowBatch struct {
	batch   model.Batch
	targets []int32
	seqs    []*seq
}

func newRowBatch(seqs []*seq) *rowBatch {
	T := 0
	for _, s := range seqs {
		T = max(T, len(s.ids))
	}
	b := model.Batch{B: len(seqs), T: T, IDs: make([]int32, len(seqs)*T), Lens: make([]int, len(seqs))}
	for i, s := range seqs {
		copy(b.IDs[i*T:], s.ids)
		b.Lens[i] = len(s.ids)
	}
	return &rowBatch{batch: b, targets: model.NextTokenTargets(b), seqs: seqs}
}

func (rb *rowBatch) rows() int { return rb.batch.B * rb.batch.T }

// row is the row predicting completion token k of sequence i.
func (rb *rowBatch) row(i, k int) int { return i*rb.batch.T + rb.seqs[i].prompt - 1 + k }

// scatter writes per-completion-token values (get(i) of length
// completionLen) into a row-layout slice; other rows are zero.
func (rb *rowBatch) scatter(get func(s *seq) []float32) []float32 {
	out := make([]float32, rb.rows())
	for i, s := range rb.seqs {
		v := get(s)
		if v == nil {
			continue
		}
		copy(out[rb.row(i, 0):], v[:s.completionLen()])
	}
	return out
}

// gather reads per-completion-token values of sequence i out of rows.
func (rb *rowBatch) gather(rows []float32, i int) []float32 {
	s := rb.seqs[i]
	return append([]float32(nil), rows[rb.row(i, 0):rb.row(i, 0)+s.completionLen()]...)
}

// mask is 1 on the rows whose target is a completion token of a sequence
// that takes part in the loss.
func (rb *rowBatch) mask() []float32 {
	out := make([]float32, rb.rows())
	for i, s := range rb.seqs {
		if s.excluded {
			continue
		}
		for k := range s.completionLen() {
			out[rb.row(i, k)] = 1
		}
	}
	return out
}

// spans are the row ranges holding each sequence's completion tokens: the
// rows an RL loss reads (see model.OutputGradArgs).
func (rb *rowBatch) spans() [][2]int {
	out := make([][2]int, len(rb.seqs))
	for i, s := range rb.seqs {
		r := rb.row(i, 0)
		out[i] = [2]int{r, r + s.completionLen()}
	}
	return out
}

// compact concatenates each sequence's per-completion-token values (zeros
// where get returns nil): the layout of the rows in spans.
func (rb *rowBatch) compact(get func(s *seq) []float32) []float32 {
	var out []float32
	for _, s := range rb.seqs {
		n := s.completionLen()
		if v := get(s); v != nil {
			out = append(out, v[:n]...)
		} else {
			out = append(out, make([]float32, n)...)
		}
	}
	return out
}

// compactTargets, compactMask and compactOffsets are targets, mask and
// offsets in the layout of compact.
func (rb *rowBatch) compactTargets() []int32 {
	var out []int32
	for _, sp := range rb.spans() {
		out = append(out, rb.targets[sp[0]:sp[1]]...)
	}
	return out
}

func (rb *rowBatch) compactMask() []float32 {
	return rb.compact(func(s *seq) []float32 {
		if s.excluded {
			return nil
		}
		return constant(1, s.completionLen())
	})
}

func (rb *rowBatch) compactOffsets() []int {
	out := make([]int, len(rb.seqs)+1)
	for i, s := range rb.seqs {
		out[i+1] = out[i] + s.completionLen()
	}
	return out
}

func (rb *rowBatch) offsets() []int {
	out := make([]int, len(rb.seqs)+1)
	for i := range out {
		out[i] = i * rb.batch.T
	}
	return out
}

// upload copies a host slice to a new device buffer.
func upload(be kernels.Backend, v []float32) kernels.Buf {
	b := be.Alloc(len(v))
	be.Upload(b, v)
	return b
}

func download(be kernels.Backend, b kernels.Buf) []float32 {
	out := make([]float32, b.Len())
	be.Download(out, b)
	return out
}

// chunks splits [0, n) into consecutive pieces of at most size (size ≤ 0:
// one piece).
func chunks(n, size int) [][2]int {
	if size <= 0 || size > n {
		size = n
	}
	var out [][2]int
	for lo := 0; lo < n; lo += size {
		out = append(out, [2]int{lo, min(lo+size, n)})
	}
	return out
}

// sequenceLogProbs computes, without gradients, every sequence's per-token
// completion log-probs under m (and entropies when wanted), micro-batch by
// micro-batch.
func sequenceLogProbs(m *model.Model, ws *model.Workspace, seqs []*seq, micro int, invTemp float32) ([][]float32, error) {
	lp, _, err := sequenceLogProbsValues(m, ws, seqs, micro, invTemp, nil)
	return lp, err
}

// sequenceLogProbsValues also returns the value head's per-token values
// when vh is not nil.
func sequenceLogProbsValues(m *model.Model, ws *model.Workspace, seqs []*seq, micro int, invTemp float32, vh *model.ValueHead) (logp, values [][]float32, err error) {
	logp = make([][]float32, len(seqs))
	if vh != nil {
		values = make([][]float32, len(seqs))
	}
	for _, c := range chunks(len(seqs), micro) {
		rb := newRowBatch(seqs[c[0]:c[1]])
		if _, err := m.Forward(ws, rb.batch); err != nil {
			return nil, nil, err
		}
		// Only completion rows: prompt and padding logits are never used.
		lp := m.TokenLogProbsSpans(ws, rb.compactTargets(), invTemp, rb.spans())
		var vals []float32
		if vh != nil {
			vals = vh.Forward(ws)
		}
		off := 0
		for i, s := range rb.seqs {
			n := s.completionLen()
			logp[c[0]+i] = lp[off : off+n : off+n]
			off += n
			if vh != nil {
				values[c[0]+i] = rb.gather(vals, i)
			}
		}
	}
	return logp, values, nil
}
