package train

import (
	"context"
	"fmt"
	"time"

	"github.com/rltrain/rltrain/data"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/optim"
	"github.com/rltrain/rltrain/train/config"
)

// sftRow is one training row of the warm-up: token ids and, per position,
// whether the next token is a target.
type sftRow struct {
	ids  []int32
	loss []bool // loss[j]: predict ids[j+1]
}

// sftExamples opens the warm-up's example stream: sft.data, or the train
// file, or the built-in task (with a seed of its own so the warm-up and RL
// see different problems).
func (t *Trainer) sftExamples() (data.Stream, error) {
	c := t.cfg
	seed := uint64(c.Train.Seed) ^ 0x5f7
	if c.SFT.Data == "" && t.src.Task != nil {
		return data.NewTaskStream(t.src.Task, seed), nil
	}
	examples, err := t.sftFileExamples()
	if err != nil {
		return nil, err
	}
	return data.NewSampler(examples, seed, true)
}

// sftFileExamples loads the warm-up's examples from sft.data, or from
// data.train without the held-out evaluation examples.
func (t *Trainer) sftFileExamples() ([]data.Example, error) {
	c := t.cfg
	path := c.SFT.Data
	if path == "" {
		path = c.Data.Train
	}
	spec := c.DataSpec()
	opts := sftFieldOptions(c.SFT, spec.JSONL)
	ds, err := data.LoadDataset(path, opts)
	if err != nil {
		return nil, fmt.Errorf("sft: %w", err)
	}
	examples := ds.Examples
	if c.SFT.Data == "" && c.Data.Eval == "" {
		// Keep the held-out evaluation examples out of the warm-up.
		if examples, _, err = data.SplitEval(examples, spec.EvalFraction, spec.EvalSize, spec.Seed); err != nil {
			return nil, fmt.Errorf("sft: %w", err)
		}
	}
	// data.truncation applies to the warm-up's prompts too.
	keep, long, first := t.promptFilter()
	kept := examples[:0:0]
	for _, ex := range examples {
		ok, err := keep(ex)
		if err != nil {
			return nil, fmt.Errorf("sft: %w", err)
		}
		if ok {
			kept = append(kept, ex)
		}
	}
	if dropped := len(examples) - len(kept); dropped > 0 {
		t.logf("sft: skipped %d prompts longer than %d tokens (data.truncation: skip); the first: %s", dropped, t.promptMax, *first)
	} else if *long > 0 {
		t.logf("sft: %d prompts are longer than %d tokens and will be truncated (data.truncation: %s); the first: %s", *long, t.promptMax, t.cfg.Data.Truncation, *first)
	}
	examples = kept
	for _, ex := range examples {
		if ex.Answer == "" {
			return nil, fmt.Errorf("sft: %s: example %s has no target completion (field %q, TRL's completion, or a final assistant message)", path, ex.ID, opts.AnswerField)
		}
	}
	return examples, nil
}

// sftFieldOptions are the data field options with the sft.* overrides.
func sftFieldOptions(s config.SFT, base data.JSONLOptions) data.JSONLOptions {
	if s.PromptField != "" {
		base.PromptField = s.PromptField
	}
	if s.MessagesField != "" {
		base.MessagesField = s.MessagesField
	}
	switch {
	case s.AnswerField != "":
		base.AnswerField = s.AnswerField
	case s.Data != "":
		// A file of its own holds targets: an answer field, TRL's
		// completion or a final assistant turn.
		base.AnswerField = "answer"
	}
	return base
}

// sftRows tokenizes examples as prompt + answer + EOS with the loss on the
// answer and EOS. With packing, consecutive examples share rows of up to
// maxLen tokens (GPT-style packing: positions continue and attention spans
// the packed examples).
func (t *Trainer) sftRows(exs []data.Example, packing bool, maxLen int) ([]sftRow, error) {
	var rows []sftRow
	for _, ex := range exs {
		text, err := t.pol.promptText(ex, t.chat)
		if err != nil {
			return nil, err
		}
		n := t.truncated // the warm-up's truncations are not the RL step's
		p, err := t.fitPrompt(ex, t.pol.encodePrompt(ex, text, t.chat))
		t.truncated = n
		if err != nil {
			return nil, err
		}
		a := toInt32(t.pol.Tok.Encode(ex.Answer, false))
		ids := append(append(append([]int32(nil), p...), a...), t.pol.EOS[0])
		loss := make([]bool, len(ids))
		for j := max(len(p)-1, 0); j < len(ids)-1; j++ {
			loss[j] = true
		}
		if packing && len(rows) > 0 {
			last := &rows[len(rows)-1]
			if len(last.ids)+len(ids) <= maxLen {
				last.ids = append(last.ids, ids...)
				last.loss = append(last.loss[:len(last.loss)-1], false)
				last.loss = append(last.loss, loss...)
				continue
			}
		}
		rows = append(rows, sftRow{ids: ids, loss: loss})
	}
	return rows, nil
}

// runSFT runs the supervised warm-up: token-mean cross-entropy on the
// answer tokens, AdamW at sft.lr.
func (t *Trainer) runSFT(ctx context.Context) error {
	c := t.cfg
	stream, err := t.sftExamples()
	if err != nil {
		return err
	}
	if t.sftResume != nil {
		if err := stream.Restore(*t.sftResume); err != nil {
			return fmt.Errorf("sft: resume: %w", err)
		}
	}
	t.sftStream = stream
	if t.opt == nil { // not restored from a checkpoint
		if err := t.newSFTOptimizer(); err != nil {
			return err
		}
	}
	opt := t.opt
	m := t.pol.Model
	maxLen := m.Cfg.MaxPositions
	if maxLen <= 0 {
		maxLen = 2048
	}
	start := time.Now()
	ran, updated := 0, 0
	for t.state.SFTStep < c.SFT.Steps {
		stop, err := t.anyRank(ctx.Err() != nil)
		if err != nil {
			return err
		}
		if stop {
			return nil
		}
		rows, err := t.sftRows(stream.Next(c.SFT.BatchSize), c.SFT.Packing, maxLen)
		if err != nil {
			return fmt.Errorf("sft: %w", err)
		}
		loss, err := t.sftStep(rows)
		if err != nil {
			return fmt.Errorf("sft step %d: %w", t.state.SFTStep+1, err)
		}
		upd, err := opt.Update(c.SFT.Steps)
		ran++
		if err != nil {
			t.logf("sft step %d: %v", t.state.SFTStep+1, err)
		} else {
			updated++
		}
		t.state.SFTStep++
		// TRL's SFT names, under sft/ so the warm-up's curves stay apart
		// from RL's (its step count restarts).
		sm := map[string]float64{"sft/loss": loss, "sft/grad_norm": upd.GradNorm, "sft/learning_rate": upd.LR,
			"sft/tokens": float64(sftTokens(rows))}
		if err := t.metrics.Write(t.state.SFTStep, sm); err != nil {
			return err
		}
		t.state.MetricLines = t.metrics.lines
		t.tbScalars("sft", t.state.SFTStep, t.sftResumedAt, sm)
		if every := c.Log.Every; every > 0 && (t.state.SFTStep%max(every, 10) == 0 || t.state.SFTStep == c.SFT.Steps) {
			t.logf("sft step %d/%d  loss %.4f  grad_norm %.3g  lr %.3g  (%.1fs)", t.state.SFTStep, c.SFT.Steps, loss, upd.GradNorm, upd.LR, time.Since(start).Seconds())
		}
	}
	t.sftStream = nil
	if ran > 0 && updated == 0 {
		return fmt.Errorf("sft: every update of the %d warm-up steps was skipped (non-finite gradients), so the weights never changed", ran)
	}
	return nil
}

// newSFTOptimizer builds the warm-up's AdamW (sft.lr, sft.warmup_steps).
// It is t.opt while the warm-up runs, so an sft-N checkpoint holds its
// moments and step count and a resumed warm-up continues bit for bit.
func (t *Trainer) newSFTOptimizer() error {
	c := t.cfg
	opt, err := optim.NewFlatAdamW(t.be, optimizer(c.Optim, c.SFT.LR, c.SFT.WarmupSteps), modelParams(t.pol.Model))
	if err != nil {
		return fmt.Errorf("sft: %w", err)
	}
	t.opt = opt
	return nil
}

// sftStep accumulates the gradient of the token-mean cross-entropy over
// rows and returns the loss.
func (t *Trainer) sftStep(rows []sftRow) (float64, error) {
	T, count := 0, 0
	for _, r := range rows {
		T = max(T, len(r.ids))
		for _, l := range r.loss {
			if l {
				count++
			}
		}
	}
	if count == 0 {
		return 0, fmt.Errorf("no answer tokens in the batch")
	}
	// Data parallel: the count above is the whole batch's; this rank runs
	// its share of the rows and the losses and gradients are summed.
	lo, hi := t.myShard(len(rows))
	rows = rows[lo:hi]
	T = 0
	for _, r := range rows {
		T = max(T, len(r.ids))
	}
	gs := t.gradSync()
	gs.arm()
	loss, err := t.sftRowsLoss(rows, T, count)
	gs.disarm()
	if err != nil {
		return 0, err
	}
	if t.world().Size() > 1 {
		v := []float64{loss}
		if err := t.sumFloats(v); err != nil {
			return 0, fmt.Errorf("sum the loss across ranks: %w", err)
		}
		if err := t.gradSync().finish(); err != nil {
			return 0, err
		}
		loss = v[0]
	}
	return loss / float64(count), nil
}

// sftRowsLoss runs forward and backward over rows (padded to T) with the
// answer-token count of the whole batch, and returns the summed negative
// log-likelihood of their answer tokens.
func (t *Trainer) sftRowsLoss(rows []sftRow, T, count int) (float64, error) {
	m := t.pol.Model
	if len(rows) == 0 {
		return 0, nil
	}
	ids := make([][]int32, len(rows))
	for i, r := range rows {
		ids[i] = r.ids
	}
	b := model.PadBatch(ids, T)
	targets := make([]int32, len(rows)*T)
	for i, r := range rows {
		for j := range T {
			targets[i*T+j] = -1
			if j < len(r.ids) && r.loss[j] {
				targets[i*T+j] = r.ids[j+1]
			}
		}
	}
	if _, err := m.Forward(t.ws, b); err != nil {
		return 0, err
	}
	// dL/dℓ is the same −1/count for every answer token, known before the
	// log-probs are, so the output layer runs forward and backward in one
	// pass.
	dlogp := make([]float32, len(targets))
	for i, tg := range targets {
		if tg >= 0 {
			dlogp[i] = -1 / float32(count)
		}
	}
	g, err := m.LossGrad(t.ws, model.Output{Targets: targets, InvTemp: 1}, m.KnownGrad(dlogp, nil))
	if err != nil {
		return 0, err
	}
	m.Backward(t.ws, g.DFinal)
	logp := make([]float32, len(targets))
	t.be.Download(logp, g.Logp)
	var loss float64
	for i, tg := range targets {
		if tg >= 0 {
			loss -= float64(logp[i])
		}
	}
	return loss, nil
}

// sftTokens counts the target tokens of a batch.
func sftTokens(rows []sftRow) int {
	n := 0
	for _, r := range rows {
		for _, l := range r.loss {
			if l {
				n++
			}
		}
	}
	return n
}
