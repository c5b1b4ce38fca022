// Package config defines the YAML run configuration of rltrain: its schema
// with a default and a one-line description for every option, strict
// decoding that reports unknown keys and wrong types with file and line,
// --set overrides, validation, documentation, printing, and the resume
// compatibility check.
//
// Every option lives in the struct tags below: yaml (the key), default,
// doc, enum (allowed values) and resume:"harmless" (may change when a run
// is resumed; everything else is breaking). The structs are plain values so
// the trainer can convert them into the reward, optim and model packages'
// own types.
package config

// Config is a whole run.
type Config struct {
	Model      Model      `yaml:"model" doc:"The policy: a pretrained model directory or a from-scratch tiny architecture."`
	Data       Data       `yaml:"data" doc:"Where prompts come from: a JSONL file or a built-in synthetic task."`
	Rollout    Rollout    `yaml:"rollout" doc:"Sampling completions: batch and group sizes, sampling parameters, dynamic sampling."`
	Reward     []Reward   `yaml:"reward" doc:"Reward functions, combined by weight. Empty with a built-in task means the task's own verifier."`
	Algorithm  Algorithm  `yaml:"algorithm" doc:"Advantage estimator and policy objective (names follow TRL and verl)."`
	Optim      Optim      `yaml:"optim" doc:"AdamW, learning-rate schedule and gradient clipping."`
	Train      Train      `yaml:"train" doc:"The training loop: steps, seed, PPO epochs and batch splitting."`
	SFT        SFT        `yaml:"sft" doc:"Optional supervised warm-up on prompt+answer pairs before RL."`
	Checkpoint Checkpoint `yaml:"checkpoint" resume:"harmless" doc:"When to save checkpoints and which to keep."`
	Log        Log        `yaml:"log" resume:"harmless" doc:"Metrics and sample logging."`
	Backend    Backend    `yaml:"backend" resume:"harmless" doc:"Device to run on. Resuming on another device continues the run but is not bit-exact."`

	// pos maps a key path to where its value was set ("file:line" or
	// "--set"), for messages about it.
	pos map[string]string
}

// Model selects or builds the policy.
type Model struct {
	Path         string `yaml:"path" default:"" doc:"Hugging Face model directory or rltrain checkpoint to start from; empty builds model.init from scratch."`
	Tokenizer    string `yaml:"tokenizer" default:"" doc:"tokenizer.json to use; empty means the one in model.path, or the built-in character tokenizer when training from scratch."`
	ChatTemplate string `yaml:"chat_template" default:"" doc:"Chat template for chat prompts: empty for raw prompt text, \"auto\" for the tokenizer's own, or a template file."`
	Init         Init   `yaml:"init" doc:"Architecture of a from-scratch Llama-style model (used when model.path is empty); the vocabulary size comes from the tokenizer."`
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
	Train         string         `yaml:"train" default:"" doc:"JSONL prompt file to train on (exclusive with data.task)."`
	Eval          string         `yaml:"eval" default:"" resume:"harmless" doc:"JSONL evaluation file; empty holds out data.eval_fraction or data.eval_size of data.train."`
	Task          string         `yaml:"task" default:"" doc:"Built-in synthetic task generated on the fly: arithmetic or countdown (exclusive with data.train)."`
	TaskParams    map[string]any `yaml:"task_params" doc:"Parameters of the built-in task, e.g. difficulty, digits, ops (see the data package)."`
	PromptField   string         `yaml:"prompt_field" default:"prompt" doc:"JSONL field holding the prompt text."`
	MessagesField string         `yaml:"messages_field" default:"" doc:"JSONL field holding a chat prompt [{role, content}]; when set it replaces data.prompt_field."`
	AnswerField   string         `yaml:"answer_field" default:"answer" doc:"JSONL field holding the reference answer given to rewards."`
	SystemField   string         `yaml:"system_field" default:"" doc:"JSONL field holding a per-example system prompt; empty for none."`
	IDField       string         `yaml:"id_field" default:"id" doc:"JSONL field holding an example id; the line number when absent."`
	SkipBadLines  bool           `yaml:"skip_bad_lines" default:"false" doc:"Skip and count malformed JSONL lines instead of failing on the first."`
	EvalFraction  float64        `yaml:"eval_fraction" default:"0" doc:"Fraction of data.train held out for evaluation when data.eval is empty."`
	EvalSize      int            `yaml:"eval_size" default:"0" doc:"Number of evaluation examples: held out of data.train, or generated for a built-in task."`
	Shuffle       bool           `yaml:"shuffle" default:"true" doc:"Shuffle the training prompts every epoch (seeded by train.seed)."`
}

// Rollout configures sampling.
type Rollout struct {
	BatchSize         int      `yaml:"batch_size" default:"8" doc:"Prompts per RL step."`
	GroupSize         int      `yaml:"group_size" default:"8" doc:"Completions sampled per prompt (TRL num_generations)."`
	MaxNewTokens      int      `yaml:"max_new_tokens" default:"256" doc:"Longest completion in tokens; longer ones are truncated."`
	Temperature       float64  `yaml:"temperature" default:"1.0" doc:"Sampling temperature; 0 samples greedily."`
	TopP              float64  `yaml:"top_p" default:"1.0" doc:"Nucleus sampling: keep the smallest token set with this much probability; 1 disables."`
	TopK              int      `yaml:"top_k" default:"0" doc:"Keep only the k most likely tokens; 0 disables."`
	MinP              float64  `yaml:"min_p" default:"0" doc:"Drop tokens less likely than min_p times the most likely one; 0 disables."`
	RepetitionPenalty float64  `yaml:"repetition_penalty" default:"1.0" doc:"Divide positive (multiply negative) logits of tokens already present; 1 disables."`
	IncludeStopStr    bool     `yaml:"include_stop_str" default:"false" doc:"Keep a matched stop string at the end of the completion text."`
	KVCacheMB         int      `yaml:"kv_cache_mb" default:"256" resume:"harmless" doc:"KV cache budget in MiB, preallocated; when full, fewer completions are decoded at once."`
	BlockSize         int      `yaml:"block_size" default:"16" resume:"harmless" doc:"Positions per KV cache block (prompt blocks are shared by a group)."`
	MaxBatch          int      `yaml:"max_batch" default:"0" resume:"harmless" doc:"Most completions decoded together; 0 means batch_size x group_size (at least 64)."`
	BatchInvariant    bool     `yaml:"batch_invariant" default:"false" doc:"Pad decode batches so completions do not depend on max_batch, the KV budget or threads (about a third slower)."`
	Stop              []string `yaml:"stop" doc:"Extra stop strings besides the end-of-sequence token."`
	FilterZeroStd     bool     `yaml:"filter_zero_std" default:"false" doc:"Dynamic sampling (DAPO): drop groups whose rewards are all equal and sample more prompts."`
	MaxFilterRounds   int      `yaml:"max_filter_rounds" default:"4" doc:"Extra sampling rounds allowed per step by rollout.filter_zero_std."`
}

// Reward is one reward function. Params are kept raw for the reward
// package to decode; Config.Pos("reward.N.params.KEY") locates them.
type Reward struct {
	Name     string         `yaml:"name" default:"" doc:"Name used in metrics (rewards/<name>/mean); defaults to the type."`
	Type     string         `yaml:"type" default:"" doc:"Reward function, e.g. math_answer, format, length, checklist, external (see the reward package)."`
	Weight   float64        `yaml:"weight" default:"1.0" doc:"Weight in the combined reward (or in gdpo's sum of normalised rewards)."`
	Params   map[string]any `yaml:"params" doc:"Parameters of the reward function."`
	Fallback string         `yaml:"fallback" default:"exclude" doc:"Score of a sample the reward fails on (error, NaN, timeout): a number, or exclude to drop the sample from the loss."`
	Timeout  string         `yaml:"timeout" default:"" doc:"Time limit of one scoring call, e.g. 30s; empty uses the reward package's default."`
	Shaping  map[string]any `yaml:"shaping" doc:"Optional bounded shaping of this reward, e.g. {type: sigmoid, ref: group_mean, scale: 1}."`
}

// Algorithm configures advantages and the policy loss.
type Algorithm struct {
	Advantage     string  `yaml:"advantage" default:"grpo" enum:"grpo,dr_grpo,rloo,gdpo,reinforce_pp,gae" doc:"Advantage estimator."`
	Loss          string  `yaml:"loss" default:"ppo" enum:"ppo,drpo" doc:"Policy objective: clipped-ratio PPO/GRPO or DRPO."`
	ScaleRewards  string  `yaml:"scale_rewards" default:"group" enum:"group,batch,none" doc:"grpo: divide advantages by the reward std of the group, of the batch, or not at all."`
	Epsilon       float64 `yaml:"epsilon" default:"0.2" doc:"Clip range of the probability ratio (lower, and upper unless epsilon_high is set)."`
	EpsilonHigh   float64 `yaml:"epsilon_high" default:"0" doc:"Upper clip range (DAPO clip-higher uses 0.28); 0 means algorithm.epsilon."`
	ClipRatioC    float64 `yaml:"clip_ratio_c" default:"3.0" doc:"Dual-clip bound c: the loss of a negative-advantage token is at most c·|A|; values <= 1 disable it."`
	Beta          float64 `yaml:"beta" default:"0" doc:"KL coefficient against a frozen reference model; 0 loads no reference."`
	KLEstimator   string  `yaml:"kl_estimator" default:"k3" enum:"k1,k2,k3" doc:"KL estimator."`
	KLIn          string  `yaml:"kl_in" default:"loss" enum:"loss,reward" doc:"Apply the KL penalty in the loss (GRPO) or subtract it from the reward (PPO)."`
	TargetKL      float64 `yaml:"target_kl" default:"0" doc:"With kl_in=reward, adapt beta towards this KL; 0 keeps beta fixed."`
	LossAggMode   string  `yaml:"loss_agg_mode" default:"token-mean" enum:"token-mean,seq-mean-token-mean,seq-mean-token-sum,seq-mean-token-sum-norm" doc:"How per-token losses are aggregated (verl names)."`
	EntropyCoef   float64 `yaml:"entropy_coef" default:"0" doc:"Weight of the entropy bonus."`
	MaskTruncated bool    `yaml:"mask_truncated" default:"false" doc:"Zero the loss of completions cut at max_new_tokens (DAPO overlong filtering)."`
	TISCap        float64 `yaml:"tis_cap" default:"0" doc:"Truncated importance sampling cap for rollout/trainer log-prob mismatch; 0 disables."`
	Whiten        bool    `yaml:"whiten" default:"true" doc:"reinforce_pp: whiten advantages over the batch."`
	Gamma         float64 `yaml:"gamma" default:"1.0" doc:"gae: discount factor."`
	Lam           float64 `yaml:"lam" default:"0.95" doc:"gae: lambda (trace decay)."`
	VFCoef        float64 `yaml:"vf_coef" default:"0.1" doc:"gae: value-loss weight."`
	ValueClip     float64 `yaml:"value_clip" default:"0.2" doc:"gae: bound on V - V_old in the clipped value loss; 0 disables clipping."`
	KLHorizon     int     `yaml:"kl_horizon" default:"10000" doc:"Horizon in samples of the adaptive KL controller (algorithm.target_kl)."`
	Lambda        float64 `yaml:"lambda" default:"0.1" doc:"drpo: length-weight temperature for correct completions; large values recover DisCO."`
	Tau           float64 `yaml:"tau" default:"10" doc:"drpo: temperature of the log-sum-exp over incorrect completions."`
	DRPOBeta      float64 `yaml:"drpo_beta" default:"1000" doc:"drpo: coefficient of the penalty on KL beyond algorithm.delta."`
	Delta         float64 `yaml:"delta" default:"1e-4" doc:"drpo: KL allowed before the penalty starts."`
}

// ClipRange returns the lower and upper ratio clip ranges.
func (a Algorithm) ClipRange() (low, high float64) {
	if a.EpsilonHigh > 0 {
		return a.Epsilon, a.EpsilonHigh
	}
	return a.Epsilon, a.Epsilon
}

// Optim configures the optimiser.
type Optim struct {
	LR          float64   `yaml:"lr" default:"1e-6" doc:"Peak learning rate."`
	Betas       []float64 `yaml:"betas" default:"0.9,0.999" doc:"AdamW moment decays [beta1, beta2]."`
	Eps         float64   `yaml:"eps" default:"1e-8" doc:"AdamW epsilon."`
	WeightDecay float64   `yaml:"weight_decay" default:"0.01" doc:"Decoupled weight decay."`
	NoDecay     []string  `yaml:"no_decay" default:"*norm*,*bias,*embed*" doc:"Glob patterns of parameter names exempt from weight decay."`
	WarmupSteps int       `yaml:"warmup_steps" default:"0" doc:"Linear warm-up steps from 0 to optim.lr."`
	Schedule    string    `yaml:"schedule" default:"constant" enum:"constant,linear,cosine" doc:"Learning-rate decay after warm-up."`
	MinLRRatio  float64   `yaml:"min_lr_ratio" default:"0" doc:"Final learning rate of linear and cosine schedules, as a fraction of optim.lr."`
	MaxGradNorm float64   `yaml:"max_grad_norm" default:"1.0" doc:"Clip the global gradient norm to this; 0 disables."`
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
}

// SFT configures the supervised warm-up.
type SFT struct {
	Steps       int     `yaml:"steps" default:"0" doc:"Supervised steps before RL; 0 skips the warm-up."`
	LR          float64 `yaml:"lr" default:"1e-4" doc:"Learning rate of the warm-up."`
	BatchSize   int     `yaml:"batch_size" default:"16" doc:"Examples per supervised step."`
	WarmupSteps int     `yaml:"warmup_steps" default:"0" doc:"Linear warm-up steps of the supervised learning rate."`
	Packing     bool    `yaml:"packing" default:"false" doc:"Pack several examples into each sequence."`
	Data        string  `yaml:"data" default:"" doc:"JSONL with prompt and answer fields; empty uses data.train or the built-in task's answers."`
}

// Checkpoint configures saving.
type Checkpoint struct {
	Every    int    `yaml:"every" default:"100" doc:"Steps between checkpoints; 0 saves only at the end."`
	KeepLast int    `yaml:"keep_last" default:"2" doc:"Most recent checkpoints to keep; 0 keeps all."`
	KeepBest int    `yaml:"keep_best" default:"0" doc:"Also keep this many best checkpoints by checkpoint.metric."`
	Metric   string `yaml:"metric" default:"eval/accuracy" doc:"Metric that ranks checkpoints for checkpoint.keep_best."`
	Mode     string `yaml:"mode" default:"max" enum:"max,min" doc:"Whether a larger or a smaller checkpoint.metric is better."`
	Dir      string `yaml:"dir" default:"" doc:"Checkpoint directory; empty means <train.out_dir>/checkpoints."`
}

// Log configures metrics output.
type Log struct {
	Every       int    `yaml:"every" default:"1" doc:"Steps between metric lines."`
	SampleEvery int    `yaml:"sample_every" default:"0" doc:"Steps between printed sample completions; 0 never prints them."`
	Samples     int    `yaml:"samples" default:"2" doc:"Completions printed each time."`
	Format      string `yaml:"format" default:"text" enum:"text,json" doc:"Console format of metric lines."`
	File        string `yaml:"file" default:"" doc:"Metrics JSONL file; empty means <train.out_dir>/metrics.jsonl."`
	Progress    bool   `yaml:"progress" default:"true" doc:"Show a progress bar on a terminal."`
}

// Backend selects the device.
type Backend struct {
	Type    string `yaml:"type" default:"cpu" enum:"cpu,cuda,cuda-emu" doc:"Compute backend: cpu, cuda (an NVIDIA GPU; needs a binary built with -tags cuda) or cuda-emu (the CUDA kernels emulated on the CPU, for testing; slow)."`
	Threads int    `yaml:"threads" default:"0" doc:"CPU threads; 0 uses every core."`
	Device  int    `yaml:"device" default:"0" doc:"CUDA device index."`
	// Precision applies to the CUDA backends only.
	Precision string `yaml:"precision" default:"fp32" enum:"fp32,bf16" doc:"GEMM precision of the CUDA backends: fp32, or bf16 (mixed precision as autocast does it: every matrix product on bfloat16 operands with fp32 accumulation and output; norms, softmax, log-probs, losses, the optimizer and the master weights stay fp32). The CPU backend computes in fp32 only."`
	TF32      bool   `yaml:"tf32" default:"false" doc:"CUDA backends: let the fp32 matrix products round their operands to TF32 (10-bit mantissa) and use tensor cores (cuBLAS TF32 tensor-op math; cuda-emu rounds the same way). Affects precision fp32 only."`
}
