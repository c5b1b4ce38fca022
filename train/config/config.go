// Package config defines the YAML run configuration of rltrain: its schema
// with a default and a one-line description for every option, strict
// decoding that reports unknown keys and wrong types with file and line,
// --set overrides, validation, documentation, printing, and the resume
// compatibility check.
//
// # Adding an option
//
// Declare it once, as a field of the type that uses it, with its tags
// (package internal/option lists them): yaml (the key), default, doc, enum
// for a string with a fixed set of values, resume:"harmless" when a
// resumed run may change it. The sections below are, or embed, the
// packages' own types (optim.Algorithm, optim.Optim, rollout.Config,
// reward.Config), so an option of the algorithm goes into optim.Algorithm,
// not here; only options that no package owns (the loop, checkpoints,
// logging) are declared in this package. Range checks go into the Check method of the
// same type (an option.Section), checks across sections into validate.go.
// Decoding, --set, --print-config, the resume diff and the reference in
// configs/README.md (regenerate it with `rltrain config --doc`) then follow
// from the declaration with no further code.
package config

import (
	"math"
	"slices"
	"strings"

	"github.com/rltrain/rltrain/internal/option"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/optim"
	"github.com/rltrain/rltrain/reward"
	"github.com/rltrain/rltrain/rollout"
	"time"
)

// Config is a whole run.
type Config struct {
	Model      Model           `yaml:"model" doc:"The policy: a pretrained model directory or a from-scratch tiny architecture."`
	Data       Data            `yaml:"data" doc:"Where prompts come from: a JSONL or Parquet file (TRL's and verl's layouts are understood: see the field options) or a built-in synthetic task."`
	Rollout    Rollout         `yaml:"rollout" doc:"Sampling completions: batch and group sizes, sampling parameters, dynamic sampling."`
	Reward     reward.Config   `yaml:"reward" doc:"Reward functions and how they combine. A bare list under reward: is reward.functions."`
	Algorithm  optim.Algorithm `yaml:"algorithm" doc:"Advantage estimator and policy objective (names follow TRL and verl)."`
	Optim      optim.Optim     `yaml:"optim" doc:"AdamW, learning-rate schedule and gradient clipping."`
	Train      Train           `yaml:"train" doc:"The training loop: steps, seed, PPO epochs and batch splitting."`
	SFT        SFT             `yaml:"sft" doc:"Optional supervised warm-up on prompt+answer pairs before RL."`
	Eval       Eval            `yaml:"eval" doc:"What counts as a correct completion."`
	Checkpoint Checkpoint      `yaml:"checkpoint" resume:"harmless" doc:"When to save checkpoints and which to keep."`
	Log        Log             `yaml:"log" resume:"harmless" doc:"Metrics and sample logging."`
	Backend    Backend         `yaml:"backend" resume:"harmless" doc:"Device to run on. Resuming on another device continues the run but is not bit-exact."`

	// pos maps a key path to where its value was set ("file:line" or
	// "--set"), for messages about it.
	pos map[string]string
}

// Model selects or builds the policy.
type Model struct {
	Path               string         `yaml:"path" default:"" doc:"Hugging Face model directory or rltrain checkpoint to start from; empty builds model.init from scratch."`
	Tokenizer          string         `yaml:"tokenizer" default:"" doc:"tokenizer.json to use; empty means the one in model.path, or the built-in character tokenizer when training from scratch."`
	ChatTemplate       string         `yaml:"chat_template" default:"" doc:"Chat template: empty renders prompts that are message lists with the tokenizer's own template and leaves text prompts raw; \"auto\" renders every prompt with the tokenizer's own; a built-in format (chatml, qwen3, llama3, llama2, plain); or a Jinja template file (as tokenizer_config.json's chat_template)."`
	ChatTemplateKwargs map[string]any `yaml:"chat_template_kwargs" doc:"Extra variables for the chat template, as TRL's chat_template_kwargs: {enable_thinking: false} turns Qwen3's thinking off."`
	Init               Init           `yaml:"init" doc:"Architecture of a from-scratch Llama-style model (used when model.path is empty); the vocabulary size comes from the tokenizer."`
	LoRA               LoRA           `yaml:"lora" doc:"Train a LoRA adapter (Hugging Face PEFT's LoraConfig names) instead of every weight: model.lora.r > 0 freezes model.path's weights."`
	Adapter            string         `yaml:"adapter" default:"" doc:"PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors) for model.path, e.g. one trained with TRL, to continue training: the run trains it, with its own r, lora_alpha and target_modules."`
}

// LoRA configures a LoRA adapter, with PEFT's option names. The adapted
// model computes W·x + (lora_alpha/r)·B·A·x on each targeted projection,
// A [r × in] Kaiming-uniform and B [out × r] zero at the start (so step 0
// is the base model); only A and B are trained.
type LoRA struct {
	R             int          `yaml:"r" default:"0" doc:"Rank of the adapter; 0 trains every weight (full fine-tuning). With r > 0 the base weights have no gradients and no optimizer moments, the KL reference (algorithm.beta > 0) is the base model without the adapter (no second copy), and checkpoints hold adapter_model.safetensors and adapter_config.json as PEFT writes them."`
	Alpha         float64      `yaml:"lora_alpha" default:"16" doc:"The update is scaled by lora_alpha/r (lora_alpha/sqrt(r) with use_rslora)."`
	Dropout       float64      `yaml:"lora_dropout" default:"0" doc:"Dropout on the adapter's input. Only 0 is supported: dropout would make the trainer's log-probs differ from the sampler's."`
	TargetModules option.Names `yaml:"target_modules" default:"all-linear" doc:"Projections to adapt, as PEFT names them: any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, or all-linear (all seven; not the output layer)."`
	UseRSLoRA     bool         `yaml:"use_rslora" default:"false" doc:"Rank-stabilised LoRA: scale by lora_alpha/sqrt(r)."`
}

// Check implements option.Section.
func (l LoRA) Check(c *option.Checker) {
	c.AtLeast("r", l.R, 0)
	if l.R == 0 {
		return
	}
	if l.Alpha == 0 || math.IsNaN(l.Alpha) || math.IsInf(l.Alpha, 0) {
		c.Bad("lora_alpha", "must be a finite non-zero number, got %v", l.Alpha)
	}
	if l.Dropout != 0 {
		c.Bad("lora_dropout", "must be 0: adapter dropout is not supported (it would make the trainer's log-probs differ from the sampler's), got %v", l.Dropout)
	}
	if len(l.TargetModules) == 0 {
		c.Bad("target_modules", "must name at least one projection or be all-linear")
	}
	names := model.LoRAModuleNames()
	for _, t := range l.TargetModules {
		if t == "all-linear" {
			if len(l.TargetModules) > 1 {
				c.Bad("target_modules", "all-linear stands alone, got %v", l.TargetModules)
			}
			continue
		}
		if !slices.Contains(names, t) {
			c.Bad("target_modules", "%q is not a projection of a Llama-family block (%s, or all-linear)", t, strings.Join(names, ", "))
		}
	}
}

// Spec is the adapter configuration l describes, for a base model at
// basePath.
func (l LoRA) Spec(basePath string) model.LoRAConfig {
	t := model.Targets{List: l.TargetModules}
	if len(l.TargetModules) == 1 && l.TargetModules[0] == "all-linear" {
		t = model.AllLinear
	}
	return model.LoRAConfig{R: l.R, Alpha: l.Alpha, Dropout: l.Dropout, Targets: t, RSLoRA: l.UseRSLoRA, BaseModel: basePath}
}

// Init is a from-scratch architecture.
type Init struct {
	Hidden        int     `yaml:"hidden" default:"128" doc:"Hidden size."`
	Layers        int     `yaml:"layers" default:"2" doc:"Number of transformer blocks."`
	Heads         int     `yaml:"heads" default:"4" doc:"Attention heads."`
	KVHeads       int     `yaml:"kv_heads" default:"2" doc:"Key/value heads (grouped-query attention); must divide heads."`
	FFN           int     `yaml:"ffn" default:"384" doc:"SwiGLU intermediate size."`
	MaxSeq        int     `yaml:"max_seq" default:"512" doc:"Longest prompt+completion in tokens."`
	RopeTheta     float64 `yaml:"rope_theta" default:"10000" doc:"RoPE base frequency."`
	NormEps       float64 `yaml:"norm_eps" default:"1e-5" doc:"RMSNorm epsilon."`
	TieEmbeddings bool    `yaml:"tie_embeddings" default:"true" doc:"Share the input embedding with the LM head."`
	InitStd       float64 `yaml:"init_std" default:"0.02" doc:"Standard deviation of the initial weights."`
}

// Data selects the prompt source.
type Data struct {
	Train         string         `yaml:"train" default:"" doc:"JSONL or Parquet (.parquet) prompt file to train on, e.g. verl's train.parquet (exclusive with data.task)."`
	Eval          string         `yaml:"eval" default:"" resume:"harmless" doc:"JSONL or Parquet evaluation file; empty holds out data.eval_fraction or data.eval_size of data.train."`
	Task          string         `yaml:"task" default:"" doc:"Built-in synthetic task generated on the fly: arithmetic or countdown (exclusive with data.train)."`
	TaskParams    map[string]any `yaml:"task_params" doc:"Parameters of the built-in task, e.g. difficulty, digits, ops (see the data package)."`
	PromptField   string         `yaml:"prompt_field" default:"prompt" doc:"Field holding the prompt: text, or a list of {role, content} messages (TRL's conversational format). A dotted name reaches into nested fields; without a prompt field, TRL's messages field is used."`
	MessagesField string         `yaml:"messages_field" default:"" doc:"Field holding a chat prompt [{role, content}]; when set it replaces data.prompt_field. A final assistant turn is the completion the warm-up learns."`
	AnswerField   string         `yaml:"answer_field" default:"answer" doc:"Field holding the reference answer given to rewards (dotted for nested fields); with the default, verl's reward_model.ground_truth or TRL's completion when there is no answer field."`
	SystemField   string         `yaml:"system_field" default:"" doc:"Field holding a per-example system prompt; empty for none."`
	IDField       string         `yaml:"id_field" default:"id" doc:"Field holding an example id; with the default, verl's extra_info.index, else the line (row) number."`
	SkipBadLines  bool           `yaml:"skip_bad_lines" default:"false" doc:"Skip and count malformed lines (Parquet rows) instead of failing on the first."`
	EvalFraction  float64        `yaml:"eval_fraction" default:"0" doc:"Fraction of data.train held out for evaluation when data.eval is empty."`
	EvalSize      int            `yaml:"eval_size" default:"0" doc:"Number of evaluation examples: held out of data.train, or generated for a built-in task."`
	Shuffle       bool           `yaml:"shuffle" default:"true" doc:"Shuffle the training prompts every epoch (seeded by train.seed)."`
	// Checked when the data is loaded (so --dry-run finds them), not when a
	// prompt is sampled: an over-long prompt used to stop the run at the
	// same step on every resume.
	MaxPromptLength int    `yaml:"max_prompt_length" default:"0" doc:"Longest prompt in tokens, chat template included (TRL's and verl's max_prompt_length); 0 means the model's context (max_position_embeddings, or model.init.max_seq) less one token for the completion. Longer prompts are handled as data.truncation says."`
	Truncation      string `yaml:"truncation" default:"skip" enum:"error,left,right,skip" doc:"A prompt longer than data.max_prompt_length: skip drops it when the data is loaded (counted in the metric data/skipped_long_prompts and reported once with its file and line); error stops the run at load, naming the file and line; left keeps its last tokens and right its first (counted per step in prompts/truncated)."`
}

// Rollout configures sampling: the engine's own options and dynamic
// sampling, which the trainer does around it.
type Rollout struct {
	rollout.Config  `yaml:",inline"`
	FilterZeroStd   bool `yaml:"filter_zero_std" default:"false" doc:"Dynamic sampling (DAPO): drop groups whose rewards are all equal and sample more prompts."`
	MaxFilterRounds int  `yaml:"max_filter_rounds" default:"4" doc:"Extra sampling rounds allowed per step by rollout.filter_zero_std."`
	// Budget pass_rate is DUET-style budgeted rollouts (see train's
	// budget.go).
	Budget        string  `yaml:"budget" default:"fixed" enum:"fixed,pass_rate" doc:"Completions per prompt: fixed (group_size each), or pass_rate: the step's batch_size x group_size completions shared out by each prompt's running pass rate, to maximise the expected number of groups with both correct and incorrect completions (prompts nearly always or never solved get min_group_size, uncertain ones up to max_group_size)."`
	MinGroupSize  int     `yaml:"min_group_size" default:"2" doc:"budget pass_rate: fewest completions of a prompt."`
	MaxGroupSize  int     `yaml:"max_group_size" default:"0" doc:"budget pass_rate: most completions of a prompt; 0 means 2 x group_size."`
	PassRatePrior float64 `yaml:"pass_rate_prior" default:"2" doc:"budget pass_rate: weight, in completions, of the prior in a prompt's pass rate (correct + prior x the run's mean pass rate) / (completions + prior)."`
}

// Check implements option.Section.
func (r Rollout) Check(c *option.Checker) {
	r.Config.Check(c)
	c.AtLeast("max_filter_rounds", r.MaxFilterRounds, 0)
	if r.Budget == "pass_rate" {
		if len(r.TreeDepths) > 0 {
			c.Bad("budget", "pass_rate group sizes do not combine with tree rollouts (rollout.tree_depths)")
		}
		c.AtLeast("min_group_size", r.MinGroupSize, 1)
		if r.MinGroupSize > r.GroupSize {
			c.Bad("min_group_size", "must be at most rollout.group_size (%d), got %d", r.GroupSize, r.MinGroupSize)
		}
		if r.MaxGroupSize != 0 && r.MaxGroupSize < r.GroupSize {
			c.Bad("max_group_size", "must be 0 or at least rollout.group_size (%d), got %d", r.GroupSize, r.MaxGroupSize)
		}
		c.Positive("pass_rate_prior", r.PassRatePrior)
	}
}

// MaxGroup is the effective max_group_size.
func (r Rollout) MaxGroup() int {
	if r.MaxGroupSize > 0 {
		return r.MaxGroupSize
	}
	return 2 * r.GroupSize
}

// Train configures the loop.
type Train struct {
	Steps          int    `yaml:"steps" default:"100" resume:"harmless" doc:"RL steps (optimizer updates per step = ppo_epochs x minibatches)."`
	Seed           int64  `yaml:"seed" default:"42" doc:"Seed of every random choice: initialisation, data order, sampling."`
	OutDir         string `yaml:"out_dir" default:"runs/rltrain" resume:"harmless" doc:"Directory for checkpoints, metrics and samples."`
	PPOEpochs      int    `yaml:"ppo_epochs" default:"1" doc:"Passes over each step's rollouts (TRL num_iterations)."`
	MiniBatchSize  int    `yaml:"mini_batch_size" default:"0" doc:"Completions per optimizer update; 0 means the whole step (batch_size x group_size)."`
	MicroBatchSize int    `yaml:"micro_batch_size" default:"0" doc:"Completions per forward/backward pass (gradient accumulation); 0 means train.mini_batch_size."`
	EvalEvery      int    `yaml:"eval_every" default:"0" resume:"harmless" doc:"Steps between evaluations; 0 evaluates only at the end."`
	// CollectiveTimeout bounds a data-parallel rank's wait for the others.
	CollectiveTimeout time.Duration `yaml:"collective_timeout" default:"30m" resume:"harmless" doc:"Data-parallel runs (under mpirun or srun): the longest one rank waits for the others in a collective (gradient sums, gathers, the checkpoint before the next step) before it aborts the whole job, so a rank that hangs ends the run instead of the job's wall clock. Long enough for rank 0 to write a checkpoint."`
}

// SFT configures the supervised warm-up.
type SFT struct {
	Steps         int     `yaml:"steps" default:"0" doc:"Supervised steps before RL; 0 skips the warm-up."`
	LR            float64 `yaml:"lr" default:"1e-4" doc:"Learning rate of the warm-up."`
	BatchSize     int     `yaml:"batch_size" default:"16" doc:"Examples per supervised step."`
	WarmupSteps   int     `yaml:"warmup_steps" default:"0" doc:"Linear warm-up steps of the supervised learning rate."`
	Packing       bool    `yaml:"packing" default:"false" doc:"Pack several examples into each sequence."`
	Data          string  `yaml:"data" default:"" doc:"JSONL or Parquet file of prompts and target completions (answer, TRL's completion, or the final assistant turn of TRL's messages); empty uses data.train or the built-in task's answers."`
	PromptField   string  `yaml:"prompt_field" default:"" doc:"Field of sft.data holding the prompt; empty means data.prompt_field."`
	MessagesField string  `yaml:"messages_field" default:"" doc:"Field of sft.data holding a chat [{role, content}]; empty means data.messages_field."`
	AnswerField   string  `yaml:"answer_field" default:"" doc:"Field of sft.data holding the target completion; empty means answer (then TRL's completion or a final assistant turn) for sft.data, data.answer_field for data.train."`
}

// Checkpoint configures saving.
type Checkpoint struct {
	Every    int    `yaml:"every" default:"100" doc:"Steps between checkpoints; 0 saves only at the end."`
	KeepLast int    `yaml:"keep_last" default:"2" doc:"Most recent checkpoints to keep; 0 keeps all."`
	KeepBest int    `yaml:"keep_best" default:"0" doc:"Also keep this many best checkpoints by checkpoint.metric."`
	Metric   string `yaml:"metric" default:"eval/accuracy" doc:"Metric that ranks checkpoints for checkpoint.keep_best."`
	Mode     string `yaml:"mode" default:"max" enum:"max,min" doc:"Whether a larger or a smaller checkpoint.metric is better."`
	Dir      string `yaml:"dir" default:"" doc:"Checkpoint directory; empty means <train.out_dir>/checkpoints."`
	Dtype    string `yaml:"dtype" default:"fp32" enum:"fp32,bf16" doc:"Precision of the saved model.safetensors (bf16 halves it, as Hugging Face checkpoints usually are); the fp32 master weights that resume needs are kept beside it."`
}

// Eval says what a correct completion is.
type Eval struct {
	CorrectReward    string  `yaml:"correct_reward" default:"" doc:"Reward (by name) that judges a completion correct, for eval/accuracy and pass@k, checkpoint.keep_best on them and DRPO's correct/incorrect split; empty means a built-in task's own verifier, or else the first reward."`
	CorrectThreshold float64 `yaml:"correct_threshold" default:"0.5" doc:"A completion is correct when eval.correct_reward scores it at least this."`
}

// Log configures metrics output.
type Log struct {
	Every       int      `yaml:"every" default:"1" doc:"Steps between metric lines."`
	SampleEvery int      `yaml:"sample_every" default:"0" doc:"Steps between printed sample completions; 0 never prints them."`
	Samples     int      `yaml:"samples" default:"2" doc:"Completions printed each time."`
	Format      string   `yaml:"format" default:"text" enum:"text,json" doc:"Console format of metric lines."`
	File        string   `yaml:"file" default:"" doc:"Metrics JSONL file; empty means <train.out_dir>/metrics.jsonl."`
	Progress    bool     `yaml:"progress" default:"true" doc:"Show a progress bar on a terminal."`
	ReportTo    []string `yaml:"report_to" default:"jsonl" doc:"Where metrics go, as TRL's report_to: jsonl (metrics.jsonl, always written: resume and plots read it) and tensorboard (an events.out.tfevents.* file in <train.out_dir>/tensorboard with every metric as a scalar and the printed samples as text)."`
}

// Backend selects the device.
type Backend struct {
	Type    string `yaml:"type" default:"cpu" enum:"cpu,cuda,cuda-emu" doc:"Compute backend: cpu, cuda (an NVIDIA GPU, found at run time: the NVIDIA driver and cuBLAS are loaded when this is chosen) or cuda-emu (the CUDA kernels emulated on the CPU, for testing; slow)."`
	Threads int    `yaml:"threads" default:"0" doc:"CPU threads; 0 uses every core."`
	Device  int    `yaml:"device" default:"0" doc:"CUDA device index."`
	// Precision applies to the CUDA backends only.
	Precision string `yaml:"precision" default:"fp32" enum:"fp32,bf16" doc:"GEMM precision of the CUDA backends: fp32, or bf16 (mixed precision as autocast does it: every matrix product on bfloat16 operands with fp32 accumulation and output; norms, softmax, log-probs, losses, the optimizer and the master weights stay fp32). The CPU backend computes in fp32 only."`
	TF32      bool   `yaml:"tf32" default:"false" doc:"CUDA backends: let the fp32 matrix products round their operands to TF32 (10-bit mantissa) and use tensor cores (cuBLAS TF32 tensor-op math; cuda-emu rounds the same way). Affects precision fp32 only."`
}
