package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rltrain/rltrain/data"
)

// Validate checks ranges, allowed values and combinations of options after
// defaults and overrides. It reports every problem, each naming the option
// and, when the value came from a file or --set, where.
func (c *Config) Validate() error {
	v := validator{c: c}
	v.enums(reflect.ValueOf(c).Elem(), "")
	v.model()
	v.data()
	v.rollout()
	v.rewards()
	v.algorithm()
	v.optim()
	v.train()
	v.rest()
	return errors.Join(v.errs...)
}

type validator struct {
	c    *Config
	errs []error
}

func (v *validator) bad(path, format string, args ...any) {
	v.errs = append(v.errs, &Error{Pos: v.c.pos[path], Key: path, Msg: fmt.Sprintf(format, args...)})
}

// Range helpers: each reports "must be ..., got X" when the check fails.
func (v *validator) atLeast(path string, got, lo int) {
	if got < lo {
		v.bad(path, "must be >= %d, got %d", lo, got)
	}
}

func (v *validator) positive(path string, got float64) {
	if !(got > 0) {
		v.bad(path, "must be > 0, got %v", got)
	}
}

func (v *validator) nonNegative(path string, got float64) {
	if got < 0 {
		v.bad(path, "must be >= 0, got %v", got)
	}
}

// within checks lo <= got < hi (closedHi: got <= hi).
func (v *validator) within(path string, got, lo, hi float64, closedHi bool) {
	if got < lo || got > hi || (!closedHi && got == hi) {
		bracket := ")"
		if closedHi {
			bracket = "]"
		}
		v.bad(path, "must be in [%v, %v%s, got %v", lo, hi, bracket, got)
	}
}

// enums checks every option with an enum tag, including list entries.
func (v *validator) enums(rv reflect.Value, path string) {
	t := rv.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key := yamlKey(sf)
		if key == "" {
			continue
		}
		fv, p := rv.Field(i), join(path, key)
		switch {
		case sf.Type.Kind() == reflect.Struct:
			v.enums(fv, p)
		case sf.Type.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.Struct:
			for j := 0; j < fv.Len(); j++ {
				v.enums(fv.Index(j), fmt.Sprintf("%s.%d", p, j))
			}
		case sf.Tag.Get("enum") != "":
			allowed := strings.Split(sf.Tag.Get("enum"), ",")
			if !slices.Contains(allowed, fv.String()) {
				v.bad(p, "must be one of %s, got %q", strings.Join(allowed, ", "), fv.String())
			}
		}
	}
}

func (v *validator) model() {
	m := v.c.Model
	if m.Path != "" {
		return // the architecture comes from the checkpoint
	}
	in := m.Init
	v.atLeast("model.init.hidden", in.Hidden, 1)
	v.atLeast("model.init.layers", in.Layers, 1)
	v.atLeast("model.init.heads", in.Heads, 1)
	v.atLeast("model.init.kv_heads", in.KVHeads, 1)
	v.atLeast("model.init.ffn", in.FFN, 1)
	v.atLeast("model.init.max_seq", in.MaxSeq, 2)
	v.positive("model.init.rope_theta", in.RopeTheta)
	v.positive("model.init.norm_eps", in.NormEps)
	v.positive("model.init.init_std", in.InitStd)
	if in.Heads > 0 && in.KVHeads > 0 && in.Heads%in.KVHeads != 0 {
		v.bad("model.init.kv_heads", "must divide model.init.heads (%d), got %d", in.Heads, in.KVHeads)
	}
	if in.Heads > 0 && in.Hidden > 0 {
		if in.Hidden%in.Heads != 0 {
			v.bad("model.init.hidden", "must be a multiple of model.init.heads (%d), got %d", in.Heads, in.Hidden)
		} else if (in.Hidden/in.Heads)%2 != 0 {
			v.bad("model.init.hidden", "head size hidden/heads must be even for RoPE, got %d/%d", in.Hidden, in.Heads)
		}
	}
	if in.MaxSeq > 0 && v.c.Rollout.MaxNewTokens >= in.MaxSeq {
		v.bad("rollout.max_new_tokens", "must be below model.init.max_seq (%d) to leave room for the prompt, got %d", in.MaxSeq, v.c.Rollout.MaxNewTokens)
	}
}

func (v *validator) data() {
	d := v.c.Data
	switch {
	case d.Train == "" && d.Task == "":
		v.bad("data", "set data.train (a JSONL file) or data.task (%s)", strings.Join(data.TaskNames(), ", "))
	case d.Train != "" && d.Task != "":
		v.bad("data.task", "data.train and data.task are exclusive; set one")
	}
	if d.Task != "" {
		if !slices.Contains(data.TaskNames(), d.Task) {
			v.bad("data.task", "must be one of %s, got %q", strings.Join(data.TaskNames(), ", "), d.Task)
		} else if _, err := data.NewTask(d.Task, d.TaskParams); err != nil {
			// Point at the parameter's own line when the error names one.
			path := "data.task_params"
			var pe *data.ParamError
			if errors.As(err, &pe) && v.c.pos[path+"."+pe.Param] != "" {
				path += "." + pe.Param
			}
			v.bad(path, "%v", err)
		}
		if d.Eval != "" || d.EvalFraction != 0 {
			v.bad("data.task", "a built-in task has its own held-out set: use data.eval_size, not data.eval or data.eval_fraction")
		}
	} else if len(d.TaskParams) > 0 {
		v.bad("data.task_params", "set without data.task")
	}
	v.within("data.eval_fraction", d.EvalFraction, 0, 1, false)
	v.atLeast("data.eval_size", d.EvalSize, 0)
	if d.EvalFraction > 0 && d.EvalSize > 0 && d.Task == "" {
		v.bad("data.eval_size", "set data.eval_fraction or data.eval_size, not both")
	}
	if d.Eval != "" && (d.EvalFraction > 0 || d.EvalSize > 0) {
		v.bad("data.eval", "an eval file and data.eval_fraction/data.eval_size are exclusive")
	}
	if d.MessagesField == "" && d.PromptField == "" {
		v.bad("data.prompt_field", "must not be empty (or set data.messages_field)")
	}
}

func (v *validator) rollout() {
	r := v.c.Rollout
	v.atLeast("rollout.batch_size", r.BatchSize, 1)
	v.atLeast("rollout.group_size", r.GroupSize, 1)
	v.atLeast("rollout.max_new_tokens", r.MaxNewTokens, 1)
	v.nonNegative("rollout.temperature", r.Temperature)
	if !(r.TopP > 0 && r.TopP <= 1) {
		v.bad("rollout.top_p", "must be in (0, 1], got %v", r.TopP)
	}
	v.atLeast("rollout.top_k", r.TopK, 0)
	v.within("rollout.min_p", r.MinP, 0, 1, false)
	v.atLeast("rollout.max_filter_rounds", r.MaxFilterRounds, 0)
	if !(r.RepetitionPenalty > 0) {
		v.bad("rollout.repetition_penalty", "must be > 0 (1 disables it), got %g", r.RepetitionPenalty)
	}
	v.atLeast("rollout.kv_cache_mb", r.KVCacheMB, 1)
	v.atLeast("rollout.block_size", r.BlockSize, 1)
	v.atLeast("rollout.max_batch", r.MaxBatch, 0)
	for i, s := range r.Stop {
		if s == "" {
			v.bad(fmt.Sprintf("rollout.stop.%d", i), "empty stop string")
		}
	}
}

func (v *validator) rewards() {
	names := map[string]int{}
	for i, r := range v.c.Reward {
		p := fmt.Sprintf("reward.%d", i)
		if r.Type == "" {
			v.bad(p+".type", "required")
		}
		name := r.Name
		if name == "" {
			name = r.Type
		}
		if j, dup := names[name]; dup && name != "" {
			v.bad(p+".name", "%q is already the name of reward.%d; give each reward a distinct name", name, j)
		}
		names[name] = i
		if r.Fallback != "exclude" {
			if f, err := strconv.ParseFloat(r.Fallback, 64); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				v.bad(p+".fallback", "want exclude or a finite number, got %q", r.Fallback)
			}
		}
		if r.Timeout != "" {
			if d, err := time.ParseDuration(r.Timeout); err != nil || d < 0 {
				v.bad(p+".timeout", "want a duration such as 30s or 2m, got %q", r.Timeout)
			}
		}
	}
	a := v.c.Algorithm
	if a.Advantage == "gdpo" && len(v.c.Reward) < 2 {
		v.bad("algorithm.advantage", "gdpo normalises each reward separately and needs at least 2 rewards, got %d", len(v.c.Reward))
	}
}

func (v *validator) algorithm() {
	a := v.c.Algorithm
	v.within("algorithm.epsilon", a.Epsilon, 0, 1, false)
	v.nonNegative("algorithm.epsilon_high", a.EpsilonHigh)
	v.nonNegative("algorithm.beta", a.Beta)
	v.nonNegative("algorithm.target_kl", a.TargetKL)
	v.nonNegative("algorithm.entropy_coef", a.EntropyCoef)
	if a.TISCap != 0 && !(a.TISCap >= 1) {
		v.bad("algorithm.tis_cap", "must be 0 (off) or >= 1, got %v", a.TISCap)
	}
	v.within("algorithm.gamma", a.Gamma, 0, 1, true)
	v.within("algorithm.lam", a.Lam, 0, 1, true)
	v.nonNegative("algorithm.vf_coef", a.VFCoef)
	v.nonNegative("algorithm.value_clip", a.ValueClip)
	v.atLeast("algorithm.kl_horizon", a.KLHorizon, 1)
	v.positive("algorithm.lambda", a.Lambda)
	v.positive("algorithm.tau", a.Tau)
	v.nonNegative("algorithm.drpo_beta", a.DRPOBeta)
	v.nonNegative("algorithm.delta", a.Delta)

	g := v.c.Rollout.GroupSize
	switch {
	case a.Loss == "drpo" && g < 2:
		v.bad("rollout.group_size", "loss drpo contrasts correct and incorrect completions of a prompt and needs >= 2, got %d", g)
	case slices.Contains([]string{"grpo", "dr_grpo", "rloo", "gdpo"}, a.Advantage) && a.Loss == "ppo" && g < 2:
		v.bad("rollout.group_size", "advantage %s compares completions within a group and needs >= 2, got %d", a.Advantage, g)
	}
	if a.TargetKL > 0 && a.KLIn != "reward" {
		v.bad("algorithm.target_kl", "adaptive KL needs algorithm.kl_in: reward")
	}
	if a.TargetKL > 0 && a.Beta == 0 {
		v.bad("algorithm.target_kl", "adaptive KL needs an initial algorithm.beta > 0")
	}
}

func (v *validator) optim() {
	o := v.c.Optim
	v.positive("optim.lr", o.LR)
	if len(o.Betas) != 2 {
		v.bad("optim.betas", "want 2 values [beta1, beta2], got %d", len(o.Betas))
	} else {
		v.within("optim.betas.0", o.Betas[0], 0, 1, false)
		v.within("optim.betas.1", o.Betas[1], 0, 1, false)
	}
	v.positive("optim.eps", o.Eps)
	v.nonNegative("optim.weight_decay", o.WeightDecay)
	v.atLeast("optim.warmup_steps", o.WarmupSteps, 0)
	v.within("optim.min_lr_ratio", o.MinLRRatio, 0, 1, true)
	v.nonNegative("optim.max_grad_norm", o.MaxGradNorm)
	s := v.c.SFT
	v.atLeast("sft.steps", s.Steps, 0)
	v.positive("sft.lr", s.LR)
	v.atLeast("sft.batch_size", s.BatchSize, 1)
	v.atLeast("sft.warmup_steps", s.WarmupSteps, 0)
}

func (v *validator) train() {
	t := v.c.Train
	v.atLeast("train.steps", t.Steps, 0)
	v.atLeast("train.ppo_epochs", t.PPOEpochs, 1)
	v.atLeast("train.mini_batch_size", t.MiniBatchSize, 0)
	v.atLeast("train.micro_batch_size", t.MicroBatchSize, 0)
	v.atLeast("train.eval_every", t.EvalEvery, 0)
	if t.Steps == 0 && v.c.SFT.Steps == 0 {
		v.bad("train.steps", "nothing to do: train.steps and sft.steps are both 0")
	}
	total := v.c.Rollout.BatchSize * v.c.Rollout.GroupSize
	mini := t.MiniBatchSize
	if mini == 0 {
		mini = total
	}
	if t.MiniBatchSize > 0 && total > 0 && total%t.MiniBatchSize != 0 {
		v.bad("train.mini_batch_size", "must divide rollout.batch_size x rollout.group_size (%d), got %d", total, t.MiniBatchSize)
	}
	if t.MicroBatchSize > 0 && mini > 0 && mini%t.MicroBatchSize != 0 {
		v.bad("train.micro_batch_size", "must divide the mini-batch (%d completions), got %d", mini, t.MicroBatchSize)
	}
	g := v.c.Rollout.GroupSize
	if v.c.Algorithm.Loss == "drpo" && g > 0 {
		micro := t.MicroBatchSize
		if micro == 0 {
			micro = mini
		}
		if micro%g != 0 {
			v.bad("train.micro_batch_size", "loss drpo needs whole groups in each micro-batch: a multiple of rollout.group_size (%d), got %d", g, micro)
		}
	}
}

func (v *validator) rest() {
	ck := v.c.Checkpoint
	v.atLeast("checkpoint.every", ck.Every, 0)
	v.atLeast("checkpoint.keep_last", ck.KeepLast, 0)
	v.atLeast("checkpoint.keep_best", ck.KeepBest, 0)
	if ck.KeepBest > 0 && ck.Metric == "" {
		v.bad("checkpoint.metric", "required when checkpoint.keep_best > 0")
	}
	l := v.c.Log
	v.atLeast("log.every", l.Every, 1)
	v.atLeast("log.sample_every", l.SampleEvery, 0)
	v.atLeast("log.samples", l.Samples, 0)
	v.atLeast("backend.threads", v.c.Backend.Threads, 0)
	v.atLeast("backend.device", v.c.Backend.Device, 0)
	if be := v.c.Backend; be.Precision == "bf16" && (be.Type == "" || be.Type == "cpu") {
		v.bad("backend.precision", "bf16 needs a CUDA backend (backend.type: cuda, or cuda-emu to emulate it); the CPU backend computes in fp32 only")
	}
	if be := v.c.Backend; be.TF32 && (be.Type == "" || be.Type == "cpu") {
		v.bad("backend.tf32", "TF32 math needs a CUDA backend (backend.type: cuda or cuda-emu); the CPU backend computes in fp32 only")
	}
}
