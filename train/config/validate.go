package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/rltrain/rltrain/data"
	"github.com/rltrain/rltrain/internal/option"
	"github.com/rltrain/rltrain/optim"
)

// Validate checks ranges, allowed values and combinations of options after
// defaults and overrides. It reports every problem, each naming the option
// and, when the value came from a file or --set, where. Each section checks
// its own options (option.Section); the checks across sections are here.
func (c *Config) Validate() error {
	v := validator{c: c}
	v.Walk("", reflect.ValueOf(c).Elem())
	v.model()
	v.data()
	v.rewards()
	v.groups()
	v.optim()
	v.train()
	v.rest()
	v.reporting()
	errs := make([]error, 0, len(v.Errors()))
	for _, e := range v.Errors() {
		e.Pos = c.pos[e.Key]
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// validator checks with keys given as full paths ("rollout.group_size").
type validator struct {
	option.Checker
	c *Config
}

func (v *validator) model() {
	m := v.c.Model
	if m.Path == "" && m.LoRA.R > 0 {
		v.Bad("model.lora.r", "a LoRA adapter trains on a pretrained base model: set model.path (a Hugging Face model directory or an rltrain checkpoint)")
	}
	if m.Path == "" && m.Adapter != "" {
		v.Bad("model.adapter", "needs its base model in model.path")
	}
	if m.Path != "" {
		return // the architecture comes from the checkpoint
	}
	in := m.Init
	v.AtLeast("model.init.hidden", in.Hidden, 1)
	v.AtLeast("model.init.layers", in.Layers, 1)
	v.AtLeast("model.init.heads", in.Heads, 1)
	v.AtLeast("model.init.kv_heads", in.KVHeads, 1)
	v.AtLeast("model.init.ffn", in.FFN, 1)
	v.AtLeast("model.init.max_seq", in.MaxSeq, 2)
	v.Positive("model.init.rope_theta", in.RopeTheta)
	v.Positive("model.init.norm_eps", in.NormEps)
	v.Positive("model.init.init_std", in.InitStd)
	if in.Heads > 0 && in.KVHeads > 0 && in.Heads%in.KVHeads != 0 {
		v.Bad("model.init.kv_heads", "must divide model.init.heads (%d), got %d", in.Heads, in.KVHeads)
	}
	if in.Heads > 0 && in.Hidden > 0 {
		if in.Hidden%in.Heads != 0 {
			v.Bad("model.init.hidden", "must be a multiple of model.init.heads (%d), got %d", in.Heads, in.Hidden)
		} else if (in.Hidden/in.Heads)%2 != 0 {
			v.Bad("model.init.hidden", "head size hidden/heads must be even for RoPE, got %d/%d", in.Hidden, in.Heads)
		}
	}
	if in.MaxSeq > 0 && v.c.Rollout.MaxNewTokens >= in.MaxSeq {
		v.Bad("rollout.max_new_tokens", "must be below model.init.max_seq (%d) to leave room for the prompt, got %d", in.MaxSeq, v.c.Rollout.MaxNewTokens)
	}
}

func (v *validator) data() {
	d := v.c.Data
	switch {
	case d.Train == "" && d.Task == "":
		v.Bad("data", "set data.train (a JSONL file) or data.task (%s)", strings.Join(data.TaskNames(), ", "))
	case d.Train != "" && d.Task != "":
		v.Bad("data.task", "data.train and data.task are exclusive; set one")
	}
	if d.Task != "" {
		if !slices.Contains(data.TaskNames(), d.Task) {
			v.Bad("data.task", "must be one of %s, got %q", strings.Join(data.TaskNames(), ", "), d.Task)
		} else if _, err := data.NewTask(d.Task, d.TaskParams); err != nil {
			// Point at the parameter's own line when the error names one.
			path := "data.task_params"
			var pe *data.ParamError
			if errors.As(err, &pe) && v.c.pos[path+"."+pe.Param] != "" {
				path += "." + pe.Param
			}
			v.Bad(path, "%v", err)
		}
		if d.Eval != "" || d.EvalFraction != 0 {
			v.Bad("data.task", "a built-in task has its own held-out set: use data.eval_size, not data.eval or data.eval_fraction")
		}
	} else if len(d.TaskParams) > 0 {
		v.Bad("data.task_params", "set without data.task")
	}
	v.Within("data.eval_fraction", d.EvalFraction, 0, 1, false)
	v.AtLeast("data.eval_size", d.EvalSize, 0)
	v.AtLeast("data.max_prompt_length", d.MaxPromptLength, 0)
	if d.EvalFraction > 0 && d.EvalSize > 0 && d.Task == "" {
		v.Bad("data.eval_size", "set data.eval_fraction or data.eval_size, not both")
	}
	if d.Eval != "" && (d.EvalFraction > 0 || d.EvalSize > 0) {
		v.Bad("data.eval", "an eval file and data.eval_fraction/data.eval_size are exclusive")
	}
	if d.MessagesField == "" && d.PromptField == "" {
		v.Bad("data.prompt_field", "must not be empty (or set data.messages_field)")
	}
}

// rewards checks the rewards against the algorithm (reward.Config checks
// its own options).
func (v *validator) rewards() {
	if n := len(v.c.Reward.Functions); v.c.Algorithm.Advantage == optim.AdvGDPO && n < 2 {
		v.Bad("algorithm.advantage", "gdpo normalises each reward separately and needs at least 2 rewards, got %d", n)
	}
}

// groups checks rollout.group_size against the algorithm: estimators that
// compare completions within a group need two of them.
func (v *validator) groups() {
	a, g := v.c.Algorithm, v.c.Rollout.GroupSize
	switch {
	case a.Loss == optim.LossDRPO && g < 2:
		v.Bad("rollout.group_size", "loss drpo contrasts correct and incorrect completions of a prompt and needs >= 2, got %d", g)
	case slices.Contains([]string{optim.AdvGRPO, optim.AdvDrGRPO, optim.AdvRLOO, optim.AdvGDPO}, a.Advantage) && a.Loss == optim.LossPPO && g < 2:
		v.Bad("rollout.group_size", "advantage %s compares completions within a group and needs >= 2, got %d", a.Advantage, g)
	}
	if a.Loss == optim.LossDRPO && v.c.Rollout.AbortHorizon > 0 {
		v.Bad("rollout.abort_horizon", "the marker-gated abort weights advantages, which loss drpo does not use")
	}
}

// optim checks the warm-up's optimizer options (the RL ones are
// optim.Optim's).
func (v *validator) optim() {
	s := v.c.SFT
	v.AtLeast("sft.steps", s.Steps, 0)
	v.Positive("sft.lr", s.LR)
	v.AtLeast("sft.batch_size", s.BatchSize, 1)
	v.AtLeast("sft.warmup_steps", s.WarmupSteps, 0)
}

func (v *validator) train() {
	t := v.c.Train
	v.AtLeast("train.steps", t.Steps, 0)
	v.AtLeast("train.ppo_epochs", t.PPOEpochs, 1)
	v.AtLeast("train.mini_batch_size", t.MiniBatchSize, 0)
	v.AtLeast("train.micro_batch_size", t.MicroBatchSize, 0)
	v.AtLeast("train.eval_every", t.EvalEvery, 0)
	if t.CollectiveTimeout <= 0 {
		v.Bad("train.collective_timeout", "must be above 0, got %s", t.CollectiveTimeout)
	}
	if t.Steps == 0 && v.c.SFT.Steps == 0 {
		v.Bad("train.steps", "nothing to do: train.steps and sft.steps are both 0")
	}
	total := v.c.Rollout.BatchSize * v.c.Rollout.GroupSize
	mini := t.MiniBatchSize
	if mini == 0 {
		mini = total
	}
	if t.MiniBatchSize > 0 && total > 0 && total%t.MiniBatchSize != 0 {
		v.Bad("train.mini_batch_size", "must divide rollout.batch_size x rollout.group_size (%d), got %d", total, t.MiniBatchSize)
	}
	if t.MicroBatchSize > 0 && mini > 0 && mini%t.MicroBatchSize != 0 {
		v.Bad("train.micro_batch_size", "must divide the mini-batch (%d completions), got %d", mini, t.MicroBatchSize)
	}
	g := v.c.Rollout.GroupSize
	if v.c.Algorithm.Loss == "drpo" && g > 0 {
		micro := t.MicroBatchSize
		if micro == 0 {
			micro = mini
		}
		if micro%g != 0 {
			v.Bad("train.micro_batch_size", "loss drpo needs whole groups in each micro-batch: a multiple of rollout.group_size (%d), got %d", g, micro)
		}
	}
}

func (v *validator) rest() {
	ck := v.c.Checkpoint
	v.AtLeast("checkpoint.every", ck.Every, 0)
	v.AtLeast("checkpoint.keep_last", ck.KeepLast, 0)
	v.AtLeast("checkpoint.keep_best", ck.KeepBest, 0)
	if ck.KeepBest > 0 && ck.Metric == "" {
		v.Bad("checkpoint.metric", "required when checkpoint.keep_best > 0")
	}
	l := v.c.Log
	v.AtLeast("log.every", l.Every, 1)
	v.AtLeast("log.sample_every", l.SampleEvery, 0)
	v.AtLeast("log.samples", l.Samples, 0)
	v.AtLeast("backend.threads", v.c.Backend.Threads, 0)
	v.AtLeast("backend.device", v.c.Backend.Device, 0)
	if be := v.c.Backend; be.Precision == "bf16" && (be.Type == "" || be.Type == "cpu") {
		v.Bad("backend.precision", "bf16 needs a CUDA backend (backend.type: cuda, or cuda-emu to emulate it); the CPU backend computes in fp32 only")
	}
	if be := v.c.Backend; be.TF32 && (be.Type == "" || be.Type == "cpu") {
		v.Bad("backend.tf32", "TF32 math needs a CUDA backend (backend.type: cuda or cuda-emu); the CPU backend computes in fp32 only")
	}
}

// reporting checks what says where results go and what counts as correct.
func (v *validator) reporting() {
	for i, r := range v.c.Log.ReportTo {
		if r != "jsonl" && r != "tensorboard" {
			v.Bad(fmt.Sprintf("log.report_to.%d", i), "want jsonl or tensorboard, got %q (metrics.jsonl is always written, for other trackers to read)", r)
		}
	}
	e := v.c.Eval
	if names := v.c.Reward.Names(); e.CorrectReward != "" && len(names) > 0 {
		if !slices.Contains(names, e.CorrectReward) {
			v.Bad("eval.correct_reward", "%q is not the name of a reward; the rewards are %s", e.CorrectReward, strings.Join(names, ", "))
		}
	}
}
