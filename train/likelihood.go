package train

import (
	"context"
	"fmt"
	"sync"

	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/reward"
)

// policyScorer lets rewards score text with the policy being trained
// (reward.Policy, for the likelihood reward): a forward pass over each
// context and continuation in micro-batches and the fused log-prob kernel
// over the continuation's tokens, at temperature 1. It has a workspace of
// its own, so a reward call the reward set abandoned on a timeout cannot
// corrupt the trainer's activations.
type policyScorer struct {
	t  *Trainer
	mu sync.Mutex
	ws *model.Workspace
}

// Encode implements reward.Policy.
func (p *policyScorer) Encode(text string) []int32 { return toInt32(p.t.pol.Tok.Encode(text, false)) }

// ContinuationLogProbs implements reward.Policy.
func (p *policyScorer) ContinuationLogProbs(ctx context.Context, pairs []reward.TokenPair) ([][]float32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.t.pol.Model
	seqs := make([]*seq, len(pairs))
	for i, pr := range pairs {
		ids := append(append(make([]int32, 0, len(pr.Context)+len(pr.Continuation)), pr.Context...), pr.Continuation...)
		if len(ids) > m.Cfg.MaxPositions {
			return nil, fmt.Errorf("context and reference are %d tokens, more than the model's %d positions", len(ids), m.Cfg.MaxPositions)
		}
		seqs[i] = &seq{ids: ids, prompt: len(pr.Context)}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.ws == nil {
		p.ws = m.NewWorkspace()
	}
	micro := p.t.cfg.Train.MicroBatchSize
	if micro <= 0 {
		micro = p.t.cfg.Train.MiniBatchSize
	}
	return sequenceLogProbs(m, p.ws, seqs, micro, 1)
}

// close frees the workspace.
func (p *policyScorer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ws != nil {
		p.ws.Free()
		p.ws = nil
	}
}
