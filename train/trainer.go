package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rltrain/rltrain/data"
	"github.com/rltrain/rltrain/internal/dist"
	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/optim"
	"github.com/rltrain/rltrain/reward"
	"github.com/rltrain/rltrain/rollout"
	"github.com/rltrain/rltrain/train/config"
	"github.com/rltrain/rltrain/train/metrics"
)

// Options are the run-time choices that are not part of the config.
type Options struct {
	// Resume is "" (start fresh; fails when checkpoints exist unless
	// Overwrite), "latest" (the newest complete checkpoint) or a
	// checkpoint directory.
	Resume string
	// Overwrite allows a fresh start in an output directory that already
	// holds checkpoints: Run deletes them first (and the metrics file
	// starts empty), so none of them can be mistaken for this run's.
	Overwrite bool
	// Console receives the human-readable log (nil: stderr).
	Console io.Writer
	// Progress shows a progress bar on Console.
	Progress bool
	// EvalOnly builds what evaluation needs (policy, data, rewards,
	// sampler) and nothing that writes: no optimizer, no metrics file, no
	// checkpoint checks.
	EvalOnly bool
	// SFTOnly makes Run stop after the supervised warm-up, saving it as a
	// checkpoint.
	SFTOnly bool
	// Comm is the group of ranks of a data-parallel run (nil: this process
	// alone). Every rank builds a trainer with the same config; rank 0
	// writes checkpoints, metrics and the console log.
	Comm dist.Comm
}

// maxBadSteps is how many consecutive updates with a non-finite loss or
// gradient are skipped before the run stops.
const maxBadSteps = 5

// Trainer owns every component of a run.
type Trainer struct {
	// logpDiff, while not nil, collects rollout/logp_diff_* from the
	// update's forward passes (see oldPolicy).
	logpDiff *logpDiff
	// scorer gives rewards the policy (the likelihood reward).
	scorer *policyScorer

	cfg     *config.Config
	opts    Options
	be      kernels.Backend
	pol     *Policy
	ref     *model.Model // frozen reference; nil when beta = 0
	src     *data.Source
	rewards *reward.Set
	engine  *rollout.Engine
	alg     optim.Algorithm
	opt     *optim.AdamW
	vh      *model.ValueHead // PPO's critic; nil unless advantage is gae
	ws      *model.Workspace
	chat    bool
	log     io.Writer

	state    State
	metrics  *metricsLog
	outDir   string
	ckptDir  string
	badRun   int
	lastCkp  int     // step of the last checkpoint written or resumed from
	ckptTime float64 // seconds the last checkpoint took, logged with the next step
	barOn    bool    // a progress bar is drawn on the console

	lock     *runLock // the run directory's lock; nil for EvalOnly
	clearOld bool     // Overwrite: Run deletes the previous run's checkpoints

	failedSteps int          // consecutive steps with every sample excluded
	promptMax   int          // longest prompt in tokens (0: unknown)
	skippedLong int          // prompts dropped at load for being longer
	truncated   int          // prompts truncated since the last step's metrics
	sftStream   data.Stream  // the warm-up's examples while it runs
	sftResume   *data.Cursor // warm-up position restored from a checkpoint

	comm dist.Comm // the ranks of a data-parallel run (nil: alone)
	sync *gradSync // gradient sums across ranks (made on first use)

	report       reporter  // TensorBoard writers (log.report_to)
	resumedAt    int       // the RL step this process resumed from (0: fresh)
	sftResumedAt int       // the warm-up step it resumed from
	stepStart    time.Time // when this process started its RL steps
	stepStartAt  int       // the step it started from
	zeroStd      int       // consecutive steps with frac_reward_zero_std 1
	noMixed      int       // consecutive DRPO steps without a mixed group
	correctIndex int       // the reward that judges correctness; -1: the task's verifier
	evalDump     io.Writer // every evaluation generation goes here as JSON (DumpEvaluations)
}

// State is what a checkpoint restores besides weights and optimizer
// moments.
type State struct {
	Version string `json:"version"`
	// Phase is "sft" while the warm-up runs and "rl" afterwards.
	Phase   string `json:"phase"`
	SFTStep int    `json:"sft_step"`
	Step    int    `json:"step"`
	// PromptIndex numbers rollout prompts across the run: together with
	// the seed it names every sampling stream.
	PromptIndex uint64      `json:"prompt_index"`
	Cursor      data.Cursor `json:"data_cursor"`
	// SFTCursor is the warm-up's position in its own example stream.
	SFTCursor   *data.Cursor      `json:"sft_cursor,omitempty"`
	RewardState map[string][]byte `json:"reward_state,omitempty"`
	KLCoef      float64           `json:"kl_coef"`
	// Best holds (step, metric) of checkpoints ranked by checkpoint.metric.
	Best    []BestEntry `json:"best,omitempty"`
	OptStep int         `json:"optimizer_step"`
	// PassRates and PassRun are the running pass rates of
	// rollout.budget: pass_rate, by prompt (passKey) and over the run.
	PassRates   map[string]passCount `json:"pass_rates,omitempty"`
	PassRun     passCount            `json:"pass_run,omitzero"`
	MetricLines int                  `json:"metric_lines"`
	Config      string               `json:"config"`
}

// BestEntry records one checkpoint's ranking metric.
type BestEntry struct {
	Step  int     `json:"step"`
	Value float64 `json:"value"`
}

// Version is written into checkpoints.
var Version = "dev"

// New builds a trainer from a validated config, restoring a checkpoint when
// opts.Resume asks for one. A trainer that will write (any but EvalOnly)
// holds the run directory's lock until Close, so a second run on the same
// train.out_dir refuses to start instead of deleting the first one's saves.
func New(cfg *config.Config, opts Options) (*Trainer, error) {
	var lock *runLock
	if !opts.EvalOnly && (opts.Comm == nil || opts.Comm.Rank() == 0) {
		var err error
		if lock, err = lockRun(outDirs(cfg)); err != nil {
			return nil, err
		}
	}
	t, err := build(cfg, opts)
	if err != nil {
		lock.release()
		return nil, err
	}
	t.lock = lock
	return t, nil
}

// build is New after the lock is taken: what evaluation needs (backend,
// data, policy, rewards, sampler), then what training adds.
func build(cfg *config.Config, opts Options) (*Trainer, error) {
	t := &Trainer{cfg: cfg, opts: opts, log: opts.Console, comm: opts.Comm}
	if t.log == nil {
		t.log = os.Stderr
	}
	if !t.leader() {
		t.log = io.Discard
	}
	t.outDir, t.ckptDir = outDirs(cfg)
	var resumeDir string
	if !opts.EvalOnly {
		var err error
		if resumeDir, err = t.agreeResumeDir(); err != nil {
			return nil, err
		}
	}
	if err := t.buildPolicy(); err != nil {
		return nil, err
	}
	if opts.EvalOnly {
		return t, nil
	}
	if err := t.buildTraining(resumeDir); err != nil {
		return nil, err
	}
	return t, nil
}

// agreeResumeDir is the checkpoint the run resumes from ("" for a fresh
// start), as rank 0 picked it, with its config checked against this one.
func (t *Trainer) agreeResumeDir() (string, error) {
	resumeDir, err := t.resumeDir()
	if err != nil {
		return "", err
	}
	// Every rank resumes from the checkpoint rank 0 picked.
	if err := t.broadcastGob(&resumeDir); err != nil {
		return "", fmt.Errorf("resume: %w", err)
	}
	if resumeDir != "" {
		if err := t.checkResumeConfig(resumeDir); err != nil {
			return "", err
		}
	}
	return resumeDir, nil
}

// buildPolicy sets up what generating and scoring need: the backend, the
// data, the policy and its tokenizer, the rewards and the sampler.
func (t *Trainer) buildPolicy() error {
	cfg := t.cfg
	var err error
	if t.be, err = NewBackend(t.rankBackend(cfg.Backend)); err != nil {
		return err
	}
	if t.src, err = data.Open(cfg.DataSpec()); err != nil {
		return err
	}
	if t.src.Skipped > 0 {
		t.logf("data: skipped %d malformed lines", t.src.Skipped)
	}
	if t.pol, err = LoadPolicy(cfg, t.be, t.src.Task); err != nil {
		return err
	}
	t.chat = cfg.Model.ChatTemplate != ""
	if note := t.pol.Tok.ChatTemplateNote(); note != "" {
		t.logf("chat template: %s", note)
	}
	if err := t.checkPromptLengths(); err != nil {
		return err
	}
	t.alg = cfg.Algorithm
	t.scorer = &policyScorer{t: t}
	if t.rewards, err = rewardSet(cfg, t.src.Task, func(msg string) { t.logf("%s", msg) }, reward.WithPolicy(t.scorer)); err != nil {
		return err
	}
	if t.correctIndex, err = correctIndex(cfg, t.src.Task != nil, t.rewards.Names()); err != nil {
		return err
	}
	if t.engine, err = rollout.New(t.pol.Model, rolloutConfig(cfg, t.pol.EOS), detok{t.pol.Tok}); err != nil {
		return err
	}
	t.ws = t.pol.Model.NewWorkspace()
	return nil
}

// buildTraining adds what training needs: the reference model, the value
// head, the gradient sync, the run's state (restored from resumeDir, or
// fresh), the optimizer and the metrics file.
func (t *Trainer) buildTraining(resumeDir string) error {
	cfg := t.cfg
	var err error
	if t.alg.UsesReference() || (t.alg.Beta > 0 && t.alg.KLIn == "reward") {
		if t.pol.Model.Adapter() != nil {
			// LoRA: the reference is the frozen base without the
			// adapter, computed from the policy's own weights.
			t.ref = t.pol.Model.Base()
		} else {
			// The reference is the starting policy, frozen.
			t.ref, err = model.New(t.pol.Model.Cfg, t.be)
			if err != nil {
				return err
			}
			t.be.Copy(t.ref.Params, t.pol.Model.Params)
		}
	}
	if t.alg.Advantage == optim.AdvGAE {
		t.vh = t.pol.Model.NewValueHead(uint64(cfg.Train.Seed), 0.01)
	}
	if t.sync, err = t.newGradSync(); err != nil {
		return err
	}
	t.state = State{Version: Version, Phase: "sft", KLCoef: t.alg.Beta}
	if cfg.SFT.Steps == 0 {
		t.state.Phase = "rl"
	}
	if resumeDir != "" {
		if err := t.restore(resumeDir); err != nil {
			return err
		}
		t.resumedAt, t.sftResumedAt = t.state.Step, t.state.SFTStep
	} else if t.opts.Overwrite {
		// At the start of Run: a dry run deletes nothing. Rank 0 alone
		// owns the run directory.
		t.clearOld = t.leader()
	} else if t.leader() {
		if dirs, _ := completeCheckpoints(t.ckptDir); len(dirs) > 0 {
			return fmt.Errorf("%s already holds checkpoints (newest %s): use --resume to continue the run, or a new train.out_dir", t.ckptDir, filepath.Base(dirs[len(dirs)-1]))
		}
	}
	if t.state.Phase == "rl" && t.opt == nil {
		if err := t.newRLOptimizer(); err != nil {
			return err
		}
	}
	if !t.leader() {
		t.metrics = discardMetrics(t.state.MetricLines)
	} else if t.metrics, err = t.openRunMetrics(resumeDir); err != nil {
		return err
	}
	return nil
}

// healthy reports whether the current weights may be checkpointed: the
// last step updated the model and every parameter is finite. A diverging
// run thus never overwrites its last good checkpoint with broken weights.
func (t *Trainer) healthy() bool {
	if t.badRun > 0 {
		t.logf("step %d: not checkpointing after a step without a valid update", t.state.Step)
		return false
	}
	trained := t.pol.Model.Params
	if a := t.pol.Model.Adapter(); a != nil {
		trained = a.Params
	}
	if ss := t.be.SumSquares(trained); !finite(ss) {
		t.logf("step %d: not checkpointing: the weights are not finite", t.state.Step)
		return false
	}
	return true
}

func (t *Trainer) metricsPath() string {
	if t.cfg.Log.File != "" {
		return t.cfg.Log.File
	}
	return filepath.Join(t.outDir, "metrics.jsonl")
}

func (t *Trainer) newRLOptimizer() error {
	params := []optim.Flat{modelParams(t.pol.Model)}
	if t.vh != nil {
		params = append(params, optim.Flat{Values: t.vh.Params, Grads: t.vh.Grads, Params: []optim.Param{
			// A [1 × hidden] linear layer, as its checkpoint stores it.
			{Name: model.ValueWeightName, Shape: []int{1, t.pol.Model.Cfg.Hidden}, Value: t.vh.Weight(), Grad: t.vh.WeightGrad()},
			{Name: model.ValueBiasName, Shape: []int{1}, Value: t.vh.Bias(), Grad: t.vh.BiasGrad()}}})
	}
	if t.opt != nil {
		// The warm-up's optimizer: its moments are not carried into RL.
		t.opt.Free()
		t.opt = nil
	}
	opt, err := optim.NewFlatAdamW(t.be, t.cfg.Optim, params...)
	if err != nil {
		return fmt.Errorf("optim: %w", err)
	}
	t.opt = opt
	return nil
}

func (t *Trainer) logf(format string, args ...any) {
	fmt.Fprintf(t.log, format+"\n", args...)
}

// Policy returns the model being trained.
func (t *Trainer) Policy() *Policy { return t.pol }

// Close releases the reward processes, the metrics file and the device
// memory of the sampler and the training activations.
func (t *Trainer) Close() error {
	if t.engine != nil {
		t.engine.Close()
	}
	if t.ws != nil {
		t.ws.Free()
	}
	if t.scorer != nil {
		t.scorer.close()
	}
	if t.sync != nil {
		t.sync.close()
	}
	var errs []error
	if t.rewards != nil {
		errs = append(errs, t.rewards.Close())
	}
	if t.metrics != nil {
		errs = append(errs, t.metrics.Close())
	}
	errs = append(errs, t.report.close())
	t.lock.release()
	t.lock = nil
	return errors.Join(errs...)
}

// Summary is what a finished run reports.
type Summary struct {
	Steps          int
	BaselineEval   *EvalResult // after the warm-up, before RL (nil when resumed past it)
	FinalEval      *EvalResult
	LastCheckpoint string
	MetricsPath    string
	Interrupted    bool
	// Phase is "sft" when the run stopped during the warm-up (SFTSteps
	// then counts its steps) and "rl" otherwise.
	Phase           string
	SFTSteps        int
	SkippedUpdates  int
	CheckpointSaved bool
}

// Run trains until train.steps or until ctx is cancelled (SIGINT/SIGTERM:
// the current step finishes, a checkpoint is written, and Run returns with
// Summary.Interrupted): the warm-up if the run is in it, an evaluation
// before RL, then RL steps, each followed by its evaluation, logging and
// checkpoint (endStep).
func (t *Trainer) Run(ctx context.Context) (sum *Summary, err error) {
	defer func() { err = t.stopped(recover(), err) }()
	sum = &Summary{MetricsPath: t.metricsPath()}
	if t.opts.EvalOnly {
		return sum, errors.New("train: this trainer was built for evaluation only")
	}
	if t.clearOld {
		if err := t.removeCheckpoints(); err != nil {
			return sum, err
		}
		t.clearOld = false
	}
	if t.opts.SFTOnly && t.state.Phase != "sft" {
		return sum, errors.New("sft: the run has already finished its warm-up (sft.steps is 0 or the checkpoint is past it)")
	}
	if t.state.Phase == "sft" {
		if stop, err := t.warmUp(ctx, sum); stop || err != nil {
			return sum, err
		}
	}
	sum.Phase = "rl"
	t.rowInvariantRollouts()
	if err := t.baselineEval(sum); err != nil {
		return sum, err
	}
	total := t.cfg.Train.Steps
	stepsRun, stepsUpdated := 0, 0
	bar := newProgress(t.log, t.opts.Progress && t.cfg.Log.Progress, total, t.state.Step)
	t.barOn = bar.on
	t.stepStart, t.stepStartAt = time.Now(), t.state.Step
	for t.state.Step < total {
		// Every rank stops at the same step: a signal may reach them at
		// different times.
		stop, err := t.anyRank(ctx.Err() != nil)
		if err != nil {
			return sum, err
		}
		if stop {
			sum.Interrupted = true
			break
		}
		stepStart := time.Now()
		// A signal stops the run between steps: the step itself runs to
		// completion, so its checkpoint is consistent.
		st, err := t.step(context.WithoutCancel(ctx))
		if err != nil {
			return sum, fmt.Errorf("step %d: %w", t.state.Step+1, err)
		}
		t.promptMetrics(st.metrics)
		if err := t.checkRewardFailures(st); err != nil {
			return sum, err
		}
		t.state.Step++
		stepsRun++
		if t.badRun == 0 { // the step updated the model
			stepsUpdated++
		}
		if stepDone != nil {
			stepDone(t, t.state.Step, st)
		}
		if err := t.endStep(st, stepStart, sum); err != nil {
			return sum, err
		}
		bar.set(t.state.Step, st.metrics)
	}
	bar.done()
	sum.Steps = t.state.Step
	if !sum.Interrupted && stepsRun > 0 && stepsUpdated == 0 {
		last := "no checkpoint was written"
		if t.lastCkp > 0 {
			last = fmt.Sprintf("the last checkpoint is step %d", t.lastCkp)
		}
		return sum, fmt.Errorf("every update of the %d steps was skipped (non-finite losses or gradients), so the weights never changed; %s", stepsRun, last)
	}
	if sum.Interrupted && t.lastCkp != t.state.Step {
		dir, err := t.saveCheckpoint()
		if err != nil {
			return sum, err
		}
		sum.LastCheckpoint = dir
	}
	return sum, nil
}

// warmUp runs the supervised warm-up and moves the run to RL. It reports
// stop when Run ends with it: a signal stopped it, or the run is
// warm-up only (both save a checkpoint).
func (t *Trainer) warmUp(ctx context.Context, sum *Summary) (stop bool, err error) {
	if err := t.runSFT(ctx); err != nil {
		return true, err
	}
	// The warm-up stops early only when a signal stopped it (on any rank
	// of a data-parallel run).
	interrupted := t.state.SFTStep < t.cfg.SFT.Steps
	if interrupted || t.opts.SFTOnly {
		sum.Interrupted = interrupted
		sum.Phase, sum.SFTSteps = "sft", t.state.SFTStep
		if !sum.Interrupted && len(t.src.Eval) > 0 {
			ev, err := t.Evaluate(t.src.Eval)
			if err != nil {
				return true, err
			}
			sum.FinalEval = ev
		}
		dir, err := t.saveCheckpoint()
		sum.LastCheckpoint = dir
		return true, err
	}
	t.state.Phase = "rl"
	if err := t.newRLOptimizer(); err != nil {
		return true, err
	}
	if t.ref != nil && t.pol.Model.Adapter() == nil {
		// The reference is the policy RL starts from (with LoRA, the
		// base model, whose weights the warm-up left alone).
		t.be.Copy(t.ref.Params, t.pol.Model.Params)
	}
	return false, nil
}

// baselineEval evaluates the policy RL starts from, logged as step 0 so
// charts and comparisons start from it (not when resuming past it).
func (t *Trainer) baselineEval(sum *Summary) error {
	if t.state.Step != 0 || len(t.src.Eval) == 0 {
		return nil
	}
	ev, err := t.Evaluate(t.src.Eval)
	if err != nil {
		return err
	}
	sum.BaselineEval = ev
	t.logf("eval before RL: accuracy %.3f, mean reward %.3f (%d prompts)", ev.Accuracy, ev.MeanReward, ev.Prompts)
	if err := t.metrics.Write(0, ev.Metrics()); err != nil {
		return err
	}
	t.state.MetricLines = t.metrics.lines
	t.tbScalars("rl", 0, t.resumedAt, ev.Metrics())
	return nil
}

// endStep finishes the step just taken (t.state.Step): its evaluation on
// schedule, sample printing, metrics line and checkpoint.
func (t *Trainer) endStep(st *rlStep, stepStart time.Time, sum *Summary) error {
	m, step := st.metrics, t.state.Step
	last := step == t.cfg.Train.Steps
	if ev := t.cfg.Train.EvalEvery; len(t.src.Eval) > 0 && ((ev > 0 && step%ev == 0) || last) {
		start := time.Now()
		res, err := t.Evaluate(t.src.Eval)
		if err != nil {
			return err
		}
		for k, v := range res.Metrics() {
			m[k] = v
		}
		m["timing_s/eval"] = seconds(time.Since(start))
		if last {
			sum.FinalEval = res
		}
	}
	if se := t.cfg.Log.SampleEvery; se > 0 && step%se == 0 {
		t.logSamples(step, st.groups)
	}
	if t.ckptTime > 0 {
		// The previous step's checkpoint is reported with this step.
		m["timing_s/checkpoint"] = t.ckptTime
		t.ckptTime = 0
	}
	m["timing_s/step"] = seconds(time.Since(stepStart))
	if t.alg.Loss == optim.LossDRPO {
		m["drpo/mixed_groups"] = t.mixedGroups(st.groups)
	}
	if err := t.writeMetrics(step, m); err != nil {
		return err
	}
	t.checkSignal(step, m)
	if every := t.cfg.Checkpoint.Every; ((every > 0 && step%every == 0) || last) && t.healthy() {
		start := time.Now()
		dir, err := t.saveCheckpointWithMetric(m)
		if err != nil {
			return err
		}
		sum.LastCheckpoint = dir
		t.ckptTime = seconds(time.Since(start))
	}
	return nil
}

// checkRewardFailures warns about a step in which the rewards failed on
// every sample (it trained on nothing; its reward is null, not 0) and
// stops the run after reward.max_failed_steps of them in a row.
func (t *Trainer) checkRewardFailures(st *rlStep) error {
	if len(st.seqs) == 0 || int(st.metrics["reward/excluded"]) < len(st.seqs) {
		t.failedSteps = 0
		return nil
	}
	t.failedSteps++
	limit := t.cfg.Reward.MaxFailedSteps
	t.logf("step %d: every sample was excluded: the rewards failed on all %d completions (see the reward errors above); the step learned nothing (%d in a row; reward.max_failed_steps %d)", t.state.Step+1, len(st.seqs), t.failedSteps, limit)
	if limit > 0 && t.failedSteps >= limit {
		last := "no checkpoint was written"
		if t.lastCkp > 0 {
			last = fmt.Sprintf("the last checkpoint is step %d", t.lastCkp)
		}
		return fmt.Errorf("step %d: the rewards failed on every sample for %d steps in a row (reward.max_failed_steps); stopping: %s", t.state.Step+1, t.failedSteps, last)
	}
	return nil
}

// writeMetrics appends the step's metrics line and prints the console line.
func (t *Trainer) writeMetrics(step int, m map[string]float64) error {
	if err := t.metrics.Write(step, m); err != nil {
		return err
	}
	t.state.MetricLines = t.metrics.lines
	t.tbScalars("rl", step, t.resumedAt, m)
	if t.cfg.Log.Every > 0 && step%t.cfg.Log.Every == 0 {
		prefix, suffix := "", ""
		if t.barOn {
			prefix = "\r\x1b[K" // clear the progress bar's line first
		} else if t.cfg.Log.Format != "json" {
			// No bar shows progress (a log file, a batch job): the line does.
			suffix = elapsedETA(t.stepStart, t.stepStartAt, step, t.cfg.Train.Steps)
		}
		t.logf("%s%s%s", prefix, consoleLine(step, t.cfg.Train.Steps, m, t.cfg.Log.Format), suffix)
	}
	return nil
}

// logSamples prints a few of the step's completions with their rewards.
func (t *Trainer) logSamples(step int, groups []*rolledGroup) {
	n := t.cfg.Log.Samples
	var lines []string
	defer func() {
		if len(lines) > 0 {
			t.tbText(step, "samples", sampleMarkdown(lines))
		}
	}()
	for gi, g := range groups {
		for si, c := range g.comps {
			if n <= 0 {
				return
			}
			n--
			line := fmtSample(step, gi, si, g.totals[si], c.Finish, g.text, c.Text)
			lines = append(lines, line)
			t.logf("%s", line)
			break // one completion per prompt, for variety
		}
	}
}

// consoleLine formats the headline metrics of a step.
func consoleLine(step, total int, m map[string]float64, format string) string {
	if format == "json" {
		return metrics.Line(step, m)
	}
	keys := []string{"reward", "reward_std", "eval/accuracy", "kl", "entropy", "clip_ratio", "grad_norm", "completions/mean_length", "timing_s/step"}
	var b strings.Builder
	fmt.Fprintf(&b, "step %d/%d", step, total)
	for _, k := range keys {
		v, ok := m[k]
		if k == "kl" {
			v, ok = consoleKL(m)
		}
		if ok {
			fmt.Fprintf(&b, "  %s %.4g", k, v)
		}
	}
	return b.String()
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
