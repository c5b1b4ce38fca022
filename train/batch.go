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
	// weight multiplies the advantage: 1/abort_keep_prob for a completion
	// continued past abort_horizon without a marker, else 1.
	weight float32

	// Tree rollouts: the completion's leading tokens shared with its
	// siblings, its sibling set, and the first completion token in the
	// loss (tree_mask_shared; 0 otherwise).
	shared, branch, lossFrom int

	// Per completion token (len(ids)-prompt entries).
	rolloutLogp, oldLogp, refLogp []float32
	// PPO with GAE: the critic's values before the update, the per-token
	// advantages and the returns.
	oldValues, tokAdv, returns []float32
}

func (s *seq) completionLen() int { return len(s.ids) - s.prompt }

// lossLen is the number of completion tokens in the loss.
func (s *seq) lossLen() int { return max(0, s.completionLen()-s.lossFrom) }

// rowBatch lays a group of sequences out as a right-padded model batch.
// Row j of sequence i predicts ids[j+1], so the rows predicting sequence
// i's completion tokens are one span; those spans are the output rows of
// every RL loss (prompt and padding logits are never used), and every
// per-token value is in their compact layout: sequence i's completion
// tokens at offsets()[i] ..< offsets()[i+1].
type rowBatch struct {
	batch model.Batch
	seqs  []*seq
}

func newRowBatch(seqs []*seq) *rowBatch {
	rows := make([][]int32, len(seqs))
	for i, s := range seqs {
		rows[i] = s.ids
	}
	return &rowBatch{batch: model.PadBatch(rows, 0), seqs: seqs}
}

// output selects the completion tokens' rows: the row predicting
// completion token k of sequence i is i·T + prompt − 1 + k, and its target
// is that token.
func (rb *rowBatch) output(invTemp float32) model.Output {
	o := model.Output{Spans: make([][2]int, len(rb.seqs)), InvTemp: invTemp}
	for i, s := range rb.seqs {
		r := i*rb.batch.T + s.prompt - 1
		o.Spans[i] = [2]int{r, r + s.completionLen()}
		o.Targets = append(o.Targets, s.ids[s.prompt:]...)
	}
	return o
}

// compact concatenates each sequence's per-completion-token values (zeros
// where get returns nil).
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

// mask is 1 on the tokens of the sequences that take part in the loss.
func (rb *rowBatch) mask() []float32 {
	return rb.compact(func(s *seq) []float32 {
		if s.excluded {
			return nil
		}
		m := constant(1, s.completionLen())
		clear(m[:min(s.lossFrom, len(m))])
		return m
	})
}

// offsets are the bounds of each sequence's tokens.
func (rb *rowBatch) offsets() []int {
	out := make([]int, len(rb.seqs)+1)
	for i, s := range rb.seqs {
		out[i+1] = out[i] + s.completionLen()
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
		out := rb.output(invTemp)
		lp, _, err := m.LogProbs(ws, out)
		if err != nil {
			return nil, nil, err
		}
		var vals []float32
		if vh != nil {
			if vals, err = vh.Forward(ws, out.Spans); err != nil {
				return nil, nil, err
			}
		}
		offs := rb.offsets()
		for i := range rb.seqs {
			lo, hi := offs[i], offs[i+1]
			logp[c[0]+i] = lp[lo:hi:hi]
			if vh != nil {
				values[c[0]+i] = vals[lo:hi:hi]
			}
		}
	}
	return logp, values, nil
}
