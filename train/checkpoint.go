package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/model/safetensors"
	"github.com/rltrain/rltrain/train/config"
)

// A checkpoint directory holds:
//
//	config.json, model.safetensors     the policy, loadable by transformers
//	tokenizer.json, tokenizer_config.json  (chat_template: the Jinja string used)
//	special_tokens_map.json            carried over from the source, if it has one
//	generation_config.json             the source's, or EOS ids and rollout sampling
//	master.safetensors                 fp32 weights, when checkpoint.dtype is bf16
//	optimizer.safetensors              AdamW moments (m.<name>, v.<name>)
//	reference.safetensors              the frozen reference, when beta > 0
//	trainer_state.json                 step, cursors, reward state, config
//	DONE                               written last: the checkpoint is complete
//
// A LoRA run (model.lora, model.adapter) writes the adapter as PEFT's
// save_pretrained does — adapter_config.json and adapter_model.safetensors
// — instead of config.json, model.safetensors, master.safetensors and
// reference.safetensors (the base model is model.path, unchanged, and is
// also the reference); optimizer.safetensors then holds the adapter's
// moments only.
//
// It is written into a temporary sibling directory, every file fsynced,
// DONE added, and renamed into place, so a crash or a full disk at any
// point leaves either the complete new checkpoint or none (and the older
// ones untouched).
const (
	stateFile     = "trainer_state.json"
	optimizerFile = "optimizer.safetensors"
	referenceFile = "reference.safetensors"
	masterFile    = "master.safetensors"
	valueHeadFile = "value_head.safetensors"
	doneFile      = "DONE"
	tmpPrefix     = ".tmp-"
)

// checkpointName is sft-N during the warm-up and step-N during RL.
func checkpointName(phase string, step int) string {
	if phase == "sft" {
		return fmt.Sprintf("sft-%d", step)
	}
	return fmt.Sprintf("step-%d", step)
}

// checkpointOrder ranks a checkpoint directory name: warm-up checkpoints
// before RL ones, then by step; ok is false for other names.
func checkpointOrder(name string) (rank int, ok bool) {
	for i, prefix := range []string{"sft-", "step-"} {
		if s, found := strings.CutPrefix(name, prefix); found {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return 0, false
			}
			return i<<40 | n, true
		}
	}
	return 0, false
}

// completeCheckpoints lists, oldest first, the checkpoint directories under
// dir that have their DONE marker.
func completeCheckpoints(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	type ck struct {
		path string
		rank int
	}
	var cks []ck
	for _, e := range entries {
		rank, ok := checkpointOrder(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(p, doneFile)); err == nil {
			cks = append(cks, ck{p, rank})
		}
	}
	sort.Slice(cks, func(i, j int) bool { return cks[i].rank < cks[j].rank })
	out := make([]string, len(cks))
	for i, c := range cks {
		out[i] = c.path
	}
	return out, nil
}

// LatestCheckpoint returns the newest complete checkpoint under dir.
func LatestCheckpoint(dir string) (string, error) {
	cks, err := completeCheckpoints(dir)
	if err != nil {
		return "", err
	}
	if len(cks) == 0 {
		return "", fmt.Errorf("no complete checkpoint in %s", dir)
	}
	return cks[len(cks)-1], nil
}

func (t *Trainer) resumeDir() (string, error) {
	switch t.opts.Resume {
	case "":
		return "", nil
	case "latest":
		return LatestCheckpoint(t.ckptDir)
	}
	dir := t.opts.Resume
	if _, err := os.Stat(filepath.Join(dir, doneFile)); err != nil {
		if _, err2 := os.Stat(dir); err2 != nil {
			return "", fmt.Errorf("resume: %w", err2)
		}
		// A run directory or a checkpoints directory: take its newest.
		for _, d := range []string{filepath.Join(dir, "checkpoints"), dir} {
			if p, err := LatestCheckpoint(d); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("resume: %s is not a complete checkpoint (no %s marker)", dir, doneFile)
	}
	return dir, nil
}

func readState(dir string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("checkpoint %s: %s: %w", dir, stateFile, err)
	}
	if st.Phase != "sft" && st.Phase != "rl" {
		return st, fmt.Errorf("checkpoint %s: %s: unknown phase %q", dir, stateFile, st.Phase)
	}
	return st, nil
}

// checkResumeConfig compares the checkpoint's config with the current one:
// breaking changes are an error, harmless ones are reported.
func (t *Trainer) checkResumeConfig(dir string) error {
	st, err := readState(dir)
	if err != nil {
		return err
	}
	old, err := config.Parse([]byte(st.Config), filepath.Join(dir, stateFile))
	if err != nil {
		return fmt.Errorf("checkpoint %s: stored config: %w", dir, err)
	}
	harmless, breaking := config.Diff(old, t.cfg)
	if len(breaking) > 0 {
		return fmt.Errorf("resume from %s: the config changes options that would break the run:\n  %s\n(start a new run in another train.out_dir to change them)", dir, strings.Join(breaking, "\n  "))
	}
	for _, h := range harmless {
		t.logf("resume: changed %s", h)
	}
	return nil
}

// restore loads a checkpoint into the freshly built trainer.
func (t *Trainer) restore(dir string) error {
	st, err := readState(dir)
	if err != nil {
		return err
	}
	if err := t.restoreWeights(dir); err != nil {
		return err
	}
	if st.Phase == "rl" {
		if err := t.newRLOptimizer(); err != nil {
			return err
		}
		if err := t.loadOptimizer(filepath.Join(dir, optimizerFile)); err != nil {
			return fmt.Errorf("checkpoint %s: %w", dir, err)
		}
		t.opt.SetStepCount(st.OptStep)
		if t.vh != nil {
			if err := t.loadValueHead(filepath.Join(dir, valueHeadFile)); err != nil {
				return fmt.Errorf("checkpoint %s: %w", dir, err)
			}
		}
		if t.ref != nil && t.pol.Model.Adapter() == nil {
			ref, _, err := safetensors.ReadFile(filepath.Join(dir, referenceFile))
			if err != nil {
				return fmt.Errorf("checkpoint %s: reference model: %w", dir, err)
			}
			if err := t.ref.SetTensors(filepath.Join(dir, referenceFile), ref); err != nil {
				return fmt.Errorf("checkpoint %s: %w", dir, err)
			}
			if name, i, v, bad := t.ref.NonFinite(); bad {
				return fmt.Errorf("checkpoint %s: %s: tensor %q holds %v at index %d", dir, referenceFile, name, v, i)
			}
		}
	} else {
		if st.SFTCursor != nil {
			t.sftResume = st.SFTCursor
		}
		if err := t.newSFTOptimizer(); err != nil {
			return err
		}
		path := filepath.Join(dir, optimizerFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && st.OptStep == 0 {
			// Written before warm-up checkpoints held the optimizer.
			t.logf("resume: %s has no warm-up optimizer state; its moments start from zero", dir)
		} else if err := t.loadOptimizer(path); err != nil {
			return fmt.Errorf("checkpoint %s: %w", dir, err)
		}
		t.opt.SetStepCount(st.OptStep)
	}
	if err := t.src.Train.Restore(st.Cursor); err != nil {
		return fmt.Errorf("checkpoint %s: data cursor: %w", dir, err)
	}
	if len(st.RewardState) > 0 {
		if err := t.rewards.UnmarshalState(st.RewardState); err != nil {
			return fmt.Errorf("checkpoint %s: reward state: %w", dir, err)
		}
	}
	t.state = st
	t.lastCkp = st.Step
	step := st.Step
	if st.Phase == "sft" {
		step = st.SFTStep
	}
	t.logf("resumed from %s (%s step %d)", dir, st.Phase, step)
	return nil
}

// restoreWeights loads a checkpoint's trained weights: the LoRA adapter's,
// or the whole model's (the fp32 master copy when there is one).
func (t *Trainer) restoreWeights(dir string) error {
	if a := t.pol.Model.Adapter(); a != nil {
		path := filepath.Join(dir, model.AdapterWeightsFile)
		tensors, _, err := safetensors.ReadFile(path)
		if err != nil {
			return fmt.Errorf("checkpoint %s: %w (a LoRA run resumes from its adapter)", dir, err)
		}
		if err := a.SetTensors(path, tensors); err != nil {
			return fmt.Errorf("checkpoint %s: %w", dir, err)
		}
		return nil
	}
	var tensors map[string]*safetensors.Tensor
	var err error
	if _, statErr := os.Stat(filepath.Join(dir, masterFile)); statErr == nil {
		// checkpoint.dtype bf16: the exact weights are here.
		tensors, _, err = safetensors.ReadFile(filepath.Join(dir, masterFile))
	} else {
		tensors, _, err = safetensors.ReadModel(dir)
	}
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if err := t.pol.Model.SetTensors(dir, tensors); err != nil {
		return fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if name, i, v, bad := t.pol.Model.NonFinite(); bad {
		return fmt.Errorf("checkpoint %s: model weights: tensor %q holds %v at index %d (resume from an earlier checkpoint)", dir, name, v, i)
	}
	return nil
}

func (t *Trainer) loadValueHead(path string) error {
	ts, _, err := safetensors.ReadFile(path)
	if err != nil {
		return err
	}
	D := t.pol.Model.Cfg.Hidden
	w, err := safetensors.Expect(ts, model.ValueWeightName, 1, D)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	b, err := safetensors.Expect(ts, model.ValueBiasName, 1)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, x := range append(append([]float32(nil), w.Data...), b.Data...) {
		if x != x || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%s: the value head holds %v; it must be finite", path, x)
		}
	}
	t.be.Upload(t.vh.Params, append(append([]float32(nil), w.Data...), b.Data...))
	return nil
}

func (t *Trainer) loadOptimizer(path string) error {
	ts, _, err := safetensors.ReadFile(path)
	if err != nil {
		return err
	}
	be := t.be
	for i, p := range t.opt.Params() {
		m, v := t.opt.Moments(i)
		for _, part := range []struct {
			prefix string
			buf    interface{ Len() int }
		}{{"m.", m}, {"v.", v}} {
			tt, ok := ts[part.prefix+p.Name]
			if !ok {
				return fmt.Errorf("%s: tensor %q is missing", path, part.prefix+p.Name)
			}
			if len(tt.Data) != part.buf.Len() {
				return fmt.Errorf("%s: tensor %q has %d values, the model needs %d", path, part.prefix+p.Name, len(tt.Data), part.buf.Len())
			}
			// Non-finite moments (or a negative second moment) would turn
			// the weights into NaN at the next update.
			for j, x := range tt.Data {
				if x != x || math.IsInf(float64(x), 0) || (part.prefix == "v." && x < 0) {
					return fmt.Errorf("%s: tensor %q holds %v at index %d; optimizer state must be finite (and v non-negative)", path, part.prefix+p.Name, x, j)
				}
			}
		}
		be.Upload(m, ts["m."+p.Name].Data)
		be.Upload(v, ts["v."+p.Name].Data)
	}
	return nil
}

// saveCheckpoint writes the current state as a new checkpoint.
func (t *Trainer) saveCheckpoint() (string, error) { return t.saveCheckpointWithMetric(nil) }

func (t *Trainer) saveCheckpointWithMetric(m map[string]float64) (string, error) {
	// Data-parallel ranks must hold the same weights; rank 0 writes them.
	if err := t.checkWeightsSame(); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if !t.leader() {
		t.lastCkp = t.state.Step
		return "", nil
	}
	if err := t.metrics.Sync(); err != nil {
		return "", fmt.Errorf("checkpoint: metrics: %w", err)
	}
	step := t.state.Step
	if t.state.Phase == "sft" {
		step = t.state.SFTStep
	}
	name := checkpointName(t.state.Phase, step)
	final := filepath.Join(t.ckptDir, name)
	if err := os.MkdirAll(t.ckptDir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(t.ckptDir, tmpPrefix+name+"-")
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	// MkdirTemp makes it 0700; a checkpoint is as readable as the rest of
	// the run directory.
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if err := t.writeCheckpoint(tmp, m); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("checkpoint %s: %w (the previous checkpoints are intact)", final, err)
	}
	if _, err := os.Stat(final); err == nil {
		// Re-saving the same step (an interrupted run resumed and
		// interrupted again): replace the old copy.
		old := final + ".old"
		os.RemoveAll(old)
		if err := os.Rename(final, old); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("checkpoint: %w", err)
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if err := syncDir(t.ckptDir); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	t.lastCkp = t.state.Step
	if m != nil && t.cfg.Checkpoint.KeepBest > 0 {
		if v, ok := m[t.cfg.Checkpoint.Metric]; ok && finite(v) {
			t.state.Best = append(t.state.Best, BestEntry{Step: t.state.Step, Value: v})
		}
	}
	t.prune()
	return final, nil
}

// writeWeights writes the trained weights: the LoRA adapter as PEFT
// writes it, or the whole model (with an fp32 master copy beside bf16
// weights).
func (t *Trainer) writeWeights(dir string) error {
	if a := t.pol.Model.Adapter(); a != nil {
		// Adapters are small: always fp32, so resume is exact.
		return a.Save(dir)
	}
	dtype := safetensors.F32
	if t.cfg.Checkpoint.Dtype == "bf16" {
		dtype = safetensors.BF16
		// model.safetensors is rounded; resume needs the weights as they are.
		if err := safetensors.WriteFile(filepath.Join(dir, masterFile), t.pol.Model.HostTensors(false), nil, safetensors.F32); err != nil {
			return err
		}
	}
	return t.pol.Model.Save(dir, dtype)
}

func (t *Trainer) writeCheckpoint(dir string, m map[string]float64) error {
	be := t.be
	if err := t.writeWeights(dir); err != nil {
		return err
	}
	sp := t.cfg.Rollout.Sampling
	if err := t.pol.writeHFFiles(dir, sp.Temperature, sp.TopP, sp.TopK); err != nil {
		return err
	}
	if t.opt != nil {
		var ts []*safetensors.Tensor
		for i, p := range t.opt.Params() {
			mm, vv := t.opt.Moments(i)
			shape := []int{p.Value.Len()}
			ts = append(ts, &safetensors.Tensor{Name: "m." + p.Name, Shape: shape, Data: download(be, mm)},
				&safetensors.Tensor{Name: "v." + p.Name, Shape: shape, Data: download(be, vv)})
		}
		if err := safetensors.WriteFile(filepath.Join(dir, optimizerFile), ts, nil, safetensors.F32); err != nil {
			return err
		}
		if err := fault(filepath.Join(dir, optimizerFile)); err != nil {
			return err
		}
		t.state.OptStep = t.opt.StepCount()
	}
	if t.vh != nil {
		p := download(be, t.vh.Params)
		D := len(p) - 1
		ts := []*safetensors.Tensor{
			{Name: model.ValueWeightName, Shape: []int{1, D}, Data: p[:D]},
			{Name: model.ValueBiasName, Shape: []int{1}, Data: p[D:]},
		}
		if err := safetensors.WriteFile(filepath.Join(dir, valueHeadFile), ts, nil, safetensors.F32); err != nil {
			return err
		}
	}
	if t.ref != nil && t.state.Phase == "rl" && t.pol.Model.Adapter() == nil {
		if err := safetensors.WriteFile(filepath.Join(dir, referenceFile), t.ref.HostTensors(false), nil, safetensors.F32); err != nil {
			return err
		}
	}
	st := t.state
	st.Cursor = t.src.Train.Cursor()
	if t.sftStream != nil {
		c := t.sftStream.Cursor()
		st.SFTCursor = &c
	}
	rs, err := t.rewards.MarshalState()
	if err != nil {
		return fmt.Errorf("reward state: %w", err)
	}
	st.RewardState = rs
	yml, err := t.cfg.YAML()
	if err != nil {
		return err
	}
	st.Config = string(yml)
	st.MetricLines = t.metrics.lines
	if m != nil {
		if v, ok := m[t.cfg.Checkpoint.Metric]; ok && finite(v) && t.cfg.Checkpoint.KeepBest > 0 {
			st.Best = append(append([]BestEntry(nil), st.Best...), BestEntry{Step: st.Step, Value: v})
		}
	}
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(dir, stateFile), js); err != nil {
		return err
	}
	if err := fault(filepath.Join(dir, stateFile)); err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(dir, doneFile), []byte("complete\n")); err != nil {
		return err
	}
	return syncDir(dir)
}

// prune deletes checkpoints beyond keep_last, sparing the keep_best best
// ones by checkpoint.metric.
func (t *Trainer) prune() {
	keepLast := t.cfg.Checkpoint.KeepLast
	if keepLast <= 0 {
		return
	}
	cks, err := completeCheckpoints(t.ckptDir)
	if err != nil {
		t.logf("checkpoint: %v", err)
		return
	}
	keep := map[string]bool{}
	for _, p := range cks[max(0, len(cks)-keepLast):] {
		keep[p] = true
	}
	if kb := t.cfg.Checkpoint.KeepBest; kb > 0 {
		best := append([]BestEntry(nil), t.state.Best...)
		sort.SliceStable(best, func(i, j int) bool {
			if t.cfg.Checkpoint.Mode == "min" {
				return best[i].Value < best[j].Value
			}
			return best[i].Value > best[j].Value
		})
		for _, b := range best[:min(kb, len(best))] {
			keep[filepath.Join(t.ckptDir, checkpointName("rl", b.Step))] = true
		}
	}
	for _, p := range cks {
		if !keep[p] {
			if err := os.RemoveAll(p); err != nil {
				t.logf("checkpoint: remove %s: %v", p, err)
			}
		}
	}
	// Leftovers of interrupted saves.
	if entries, err := os.ReadDir(t.ckptDir); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				os.RemoveAll(filepath.Join(t.ckptDir, e.Name()))
			}
		}
	}
}

// removeCheckpoints deletes every checkpoint directory (complete or not)
// and leftover of an interrupted save under the checkpoint directory: what
// --overwrite discards, so that a later --resume cannot pick a previous
// run's step-N over this run's checkpoints, nor keep_last prune this run's.
func (t *Trainer) removeCheckpoints() error {
	entries, err := os.ReadDir(t.ckptDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("overwrite: %w", err)
	}
	n := 0
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".old")
		if _, ok := checkpointOrder(name); !ok && !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(t.ckptDir, e.Name())); err != nil {
			return fmt.Errorf("overwrite: %w", err)
		}
		n++
	}
	if n > 0 {
		t.logf("overwrite: removed %d checkpoint directories of the previous run from %s", n, t.ckptDir)
	}
	return nil
}

// writeFault, when set (by tests), is consulted after each checkpoint file
// is written and can fail it, standing in for a full disk.
var writeFault func(path string) error

func fault(path string) error {
	if writeFault != nil {
		return writeFault(path)
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
