package train

import (
	"math"
	"time"

	"github.com/rltrain/rltrain/optim"
)

// empg scales every completion's advantage by EMPG's self-calibrating
// scale (algorithm.empg_k; optim.EMPGScales) of its mean token entropy
// under the sampling policy, computed here with one forward pass over the
// step's completions (each rank its share, then gathered, so every rank
// scales the same way). Single-turn completions are EMPG's steps; with one
// step per trajectory its future-clarity bonus has no next step and is not
// used.
func (t *Trainer) empg(s *rlStep) error {
	k := t.alg.EMPGK
	if k == 0 {
		return nil
	}
	start := time.Now()
	ents, err := t.shardedEntropies(s)
	if err != nil {
		return err
	}
	H := make([]float64, len(s.seqs))
	for i, q := range s.seqs {
		H[i] = math.NaN()
		if q.excluded || len(ents[i]) == 0 {
			continue
		}
		var sum float64
		for _, e := range ents[i] {
			sum += float64(e)
		}
		H[i] = sum / float64(len(ents[i]))
	}
	g := optim.EMPGScales(H, k)
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, q := range s.seqs {
		q.adv *= float32(g[i])
		for j := range q.tokAdv {
			q.tokAdv[j] *= float32(g[i])
		}
		if !math.IsNaN(H[i]) {
			lo, hi = math.Min(lo, g[i]), math.Max(hi, g[i])
		}
	}
	if hi >= lo {
		s.metrics["empg/scale_min"], s.metrics["empg/scale_max"] = lo, hi
	}
	s.metrics["timing_s/empg"] = seconds(time.Since(start))
	return nil
}

// shardedEntropies returns the per-token entropies of every completion
// under the sampling distribution, each rank computing its groups' and
// gathering the rest.
func (t *Trainer) shardedEntropies(s *rlStep) ([][]float32, error) {
	m, w := t.pol.Model, t.world()
	lo, hi := 0, len(s.seqs)
	if w.Size() > 1 {
		lo, hi = groupShard(s.seqs, w.Rank(), w.Size())
	}
	mine := s.seqs[lo:hi]
	ents := make([][]float32, 0, len(mine))
	for _, c := range chunks(len(mine), s.micro) {
		rb := newRowBatch(mine[c[0]:c[1]])
		if _, err := m.Forward(t.ws, rb.batch); err != nil {
			return nil, err
		}
		out := rb.output(s.invTemp)
		out.Entropy = true
		_, ent, err := m.LogProbs(t.ws, out)
		if err != nil {
			return nil, err
		}
		offs := rb.offsets()
		for i := range rb.seqs {
			ents = append(ents, ent[offs[i]:offs[i+1]:offs[i+1]])
		}
	}
	if w.Size() == 1 {
		return ents, nil
	}
	return t.gatherPerToken(s.seqs, ents)
}
