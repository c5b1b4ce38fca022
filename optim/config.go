// Package optim turns rewards into parameter updates: advantage estimators
// (GRPO and its variants, RLOO, GDPO, REINFORCE++, GAE), the clipped policy
// objective with KL, entropy and importance-sampling corrections, DRPO, the
// PPO value loss, AdamW with learning-rate schedules and global grad-norm
// clipping.
//
// The per-token work runs on a kernels.Backend (PolicyLoss, AdamW, …);
// this package holds the host-side math and the wiring: it never sees a
// [tokens × vocab] tensor, only per-token log-probabilities from the fused
// output-layer kernel.
package optim

import (
	"fmt"
	"math"

	"github.com/rltrain/rltrain/internal/option"
	"github.com/rltrain/rltrain/kernels"
)

// Advantage estimator names (algorithm.advantage).
const (
	AdvGRPO        = "grpo"
	AdvDrGRPO      = "dr_grpo"
	AdvRLOO        = "rloo"
	AdvGDPO        = "gdpo"
	AdvReinforcePP = "reinforce_pp"
	AdvGAE         = "gae"
)

// Sources of the old policy's log-probs (algorithm.old_logprobs).
const (
	OldLogprobsRecompute = "recompute"
	OldLogprobsRollout   = "rollout"
)

// Policy objectives (algorithm.loss).
const (
	LossPPO  = "ppo"  // clipped surrogate (PPO, GRPO, DAPO, Dr. GRPO, …)
	LossDRPO = "drpo" // decoupled reward policy optimisation
)

// Algorithm is the `algorithm` section of a run config: the advantage
// estimator and the policy objective. Each option is declared here once
// (see package internal/option for the tags); start from DefaultAlgorithm.
type Algorithm struct {
	Advantage    string  `yaml:"advantage" default:"grpo" enum:"grpo,dr_grpo,rloo,gdpo,reinforce_pp,gae" doc:"Advantage estimator."`
	Loss         string  `yaml:"loss" default:"ppo" enum:"ppo,drpo" doc:"Policy objective: clipped-ratio PPO/GRPO or DRPO."`
	ScaleRewards string  `yaml:"scale_rewards" default:"group" enum:"group,batch,none" doc:"grpo: divide advantages by the reward std of the group, of the batch, or not at all."`
	Epsilon      float64 `yaml:"epsilon" default:"0.2" doc:"Clip range of the probability ratio (lower, and upper unless epsilon_high is set)."`
	EpsilonHigh  float64 `yaml:"epsilon_high" default:"0" doc:"Upper clip range (DAPO clip-higher uses 0.28); 0 means algorithm.epsilon."`
	// ImportanceSamplingLevel is TRL's option of the same name: sequence
	// is GSPO (Qwen, arXiv 2507.18071; verl's loss_mode: gspo),
	// sequence_token its GSPO-token variant.
	ImportanceSamplingLevel string  `yaml:"importance_sampling_level" default:"token" enum:"token,sequence,sequence_token" doc:"Importance ratio of the clipped surrogate: per token (PPO/GRPO), per sequence exp(mean_t(logp - logp_old)) (GSPO, usually with epsilon 3e-4, epsilon_high 4e-4 and loss_agg_mode seq-mean-token-mean), or sequence_token (GSPO-token: the sequence ratio's value, each token's own gradient)."`
	ClipRatioC              float64 `yaml:"clip_ratio_c" default:"3.0" doc:"Dual-clip bound c: the loss of a negative-advantage token is at most c·|A|; values <= 1 disable it."`
	// Beta > 0 loads a frozen reference model (the starting policy).
	Beta        float64 `yaml:"beta" default:"0" doc:"KL coefficient against a frozen reference model; 0 loads no reference."`
	KLEstimator string  `yaml:"kl_estimator" default:"k3" enum:"k1,k2,k3" doc:"KL estimator."`
	// KLIn: loss adds β·KL to the loss; reward subtracts β·k1 per token
	// from the reward.
	KLIn string `yaml:"kl_in" default:"loss" enum:"loss,reward" doc:"Apply the KL penalty in the loss (GRPO) or subtract it from the reward (PPO)."`
	// TargetKL adapts β per token (Ziegler et al.).
	TargetKL    float64 `yaml:"target_kl" default:"0" doc:"With kl_in=reward, adapt beta towards this KL; 0 keeps beta fixed."`
	LossAggMode string  `yaml:"loss_agg_mode" default:"token-mean" enum:"token-mean,seq-mean-token-mean,seq-mean-token-sum,seq-mean-token-sum-norm" doc:"How per-token losses are aggregated (verl names)."`
	EntropyCoef float64 `yaml:"entropy_coef" default:"0" doc:"Weight of the entropy bonus."`
	// MaskTruncated also drops those completions from the loss's
	// normalisers.
	MaskTruncated bool `yaml:"mask_truncated" default:"false" doc:"Zero the loss of completions cut at max_new_tokens (DAPO overlong filtering)."`
	// OldLogprobs rollout skips the old-policy pass; see the train
	// package.
	OldLogprobs string `yaml:"old_logprobs" default:"recompute" enum:"recompute,rollout" doc:"Old-policy log-probs when the policy moves within a step (ppo_epochs > 1, several minibatches): recompute them with a forward pass, or use the sampler's and skip that pass. rollout makes the CPU backend (with AVX-512) compute every forward row as decoding does, so the two are bit-identical (rollout/logp_diff_max is 0); on other backends they differ in the last bits."`
	// TISCap multiplies each token's surrogate by min(exp(ℓ_old −
	// ℓ_rollout), tis_cap); 2–3 is typical.
	TISCap float64 `yaml:"tis_cap" default:"0" doc:"Truncated importance sampling cap for rollout/trainer log-prob mismatch; 0 disables."`
	// TreeAdvantage and TreeMaskShared apply to tree rollouts
	// (rollout.tree_depths).
	TreeAdvantage  string `yaml:"tree_advantage" default:"group" enum:"group,sibling" doc:"Tree rollouts: normalise rewards over the prompt's whole group, or over siblings only, the completions forked from the same partial completion (V-STAR's Sibling-GRPO)."`
	TreeMaskShared bool   `yaml:"tree_mask_shared" default:"false" doc:"Tree rollouts: leave each completion's tokens shared with its siblings out of the loss, so only where siblings differ is trained."`
	// EMPGK is EMPG's k (see EMPGScales).
	EMPGK     float64 `yaml:"empg_k" default:"0" doc:"EMPG (entropy-modulated policy gradients): scale each completion's advantage by exp(-k * its batch-normalised mean token entropy), normalised to mean 1 over the batch (the paper uses k = 1); 0 disables. Costs a forward pass for the entropies when no old-policy pass runs."`
	Whiten    bool    `yaml:"whiten" default:"true" doc:"reinforce_pp: whiten advantages over the batch."`
	Gamma     float64 `yaml:"gamma" default:"1.0" doc:"gae: discount factor."`
	Lam       float64 `yaml:"lam" default:"0.95" doc:"gae: lambda (trace decay)."`
	VFCoef    float64 `yaml:"vf_coef" default:"0.1" doc:"gae: value-loss weight."`
	ValueClip float64 `yaml:"value_clip" default:"0.2" doc:"gae: bound on V - V_old in the clipped value loss; 0 disables clipping."`
	KLHorizon int     `yaml:"kl_horizon" default:"10000" doc:"Horizon in samples of the adaptive KL controller (algorithm.target_kl)."`
	// DRPO's KL penalty is DRPOBeta·max(KL − Delta, 0); the defaults are
	// the authors' 1.5B script.
	Lambda   float64 `yaml:"lambda" default:"0.1" doc:"drpo: length-weight temperature for correct completions; large values recover DisCO."`
	Tau      float64 `yaml:"tau" default:"10" doc:"drpo: temperature of the log-sum-exp over incorrect completions."`
	DRPOBeta float64 `yaml:"drpo_beta" default:"1000" doc:"drpo: coefficient of the penalty on KL beyond algorithm.delta."`
	Delta    float64 `yaml:"delta" default:"1e-4" doc:"drpo: KL allowed before the penalty starts."`
}

// DefaultAlgorithm returns the documented defaults.
func DefaultAlgorithm() Algorithm { return option.Defaults[Algorithm]() }

// Validate reports every invalid option, naming its key.
func (a Algorithm) Validate() error { return option.Validate("algorithm", a) }

// Check implements option.Section (enum values are checked from the tags).
func (a Algorithm) Check(c *option.Checker) {
	c.Open("epsilon", a.Epsilon, 0, 1)
	c.NonNegative("epsilon_high", a.EpsilonHigh)
	if math.IsNaN(a.ClipRatioC) {
		c.Bad("clip_ratio_c", "must be a number")
	}
	c.NonNegative("beta", a.Beta)
	c.NonNegative("target_kl", a.TargetKL)
	c.NonNegative("entropy_coef", a.EntropyCoef)
	c.NonNegative("empg_k", a.EMPGK)
	if a.TISCap != 0 && !(a.TISCap >= 1) {
		c.Bad("tis_cap", "must be 0 (off) or >= 1, got %v", a.TISCap)
	}
	c.Within("gamma", a.Gamma, 0, 1, true)
	c.Within("lam", a.Lam, 0, 1, true)
	c.NonNegative("vf_coef", a.VFCoef)
	c.NonNegative("value_clip", a.ValueClip)
	c.AtLeast("kl_horizon", a.KLHorizon, 1)
	c.Positive("lambda", a.Lambda)
	c.Positive("tau", a.Tau)
	c.NonNegative("drpo_beta", a.DRPOBeta)
	c.NonNegative("delta", a.Delta)
	if a.TargetKL > 0 && a.KLIn != "reward" {
		c.Bad("target_kl", "adaptive KL needs algorithm.kl_in: reward")
	}
	if a.ImportanceSamplingLevel != "token" && a.Loss != LossPPO {
		c.Bad("importance_sampling_level", "applies to algorithm.loss: ppo, not %q", a.Loss)
	}
	if a.TargetKL > 0 && a.Beta == 0 {
		c.Bad("target_kl", "adaptive KL needs an initial algorithm.beta > 0")
	}
}

// EpsHigh is the effective upper clip range.
func (a Algorithm) EpsHigh() float64 {
	if a.EpsilonHigh > 0 {
		return a.EpsilonHigh
	}
	return a.Epsilon
}

// UsesReference reports whether a frozen reference model is needed.
func (a Algorithm) UsesReference() bool { return a.Beta > 0 && a.Loss == LossPPO }

// ParseAggMode maps a loss_agg_mode name to the kernel's mode.
func ParseAggMode(s string) (kernels.AggMode, error) {
	switch s {
	case "token-mean":
		return kernels.AggTokenMean, nil
	case "seq-mean-token-mean":
		return kernels.AggSeqMeanTokenMean, nil
	case "seq-mean-token-sum":
		return kernels.AggSeqMeanTokenSum, nil
	case "seq-mean-token-sum-norm":
		return kernels.AggSeqMeanTokenSumNorm, nil
	}
	return 0, fmt.Errorf("algorithm.loss_agg_mode: unknown mode %q (want token-mean, seq-mean-token-mean, seq-mean-token-sum or seq-mean-token-sum-norm)", s)
}

// ParseISLevel maps an importance_sampling_level name to the kernel's
// level.
func ParseISLevel(s string) (kernels.ISLevel, error) {
	switch s {
	case "token":
		return kernels.ISToken, nil
	case "sequence":
		return kernels.ISSequence, nil
	case "sequence_token":
		return kernels.ISSequenceToken, nil
	}
	return 0, fmt.Errorf("algorithm.importance_sampling_level: unknown level %q (want token, sequence or sequence_token)", s)
}

// ParseKLEstimator maps a kl_estimator name to the kernel's estimator;
// low_var_kl is accepted as verl's name for k3.
func ParseKLEstimator(s string) (kernels.KLEstimator, error) {
	switch s {
	case "k1":
		return kernels.KLK1, nil
	case "k2":
		return kernels.KLK2, nil
	case "k3", "low_var_kl":
		return kernels.KLK3, nil
	}
	return 0, fmt.Errorf("algorithm.kl_estimator: unknown estimator %q (want k1, k2 or k3)", s)
}

// Optim is the `optim` section of a run config: AdamW, the learning-rate
// schedule and gradient clipping. Start from DefaultOptim.
type Optim struct {
	LR          float64   `yaml:"lr" default:"1e-6" doc:"Peak learning rate."`
	Betas       []float64 `yaml:"betas" default:"0.9,0.999" doc:"AdamW moment decays [beta1, beta2]."`
	Eps         float64   `yaml:"eps" default:"1e-8" doc:"AdamW epsilon."`
	WeightDecay float64   `yaml:"weight_decay" default:"0.01" doc:"Decoupled weight decay."`
	// NoDecay patterns are path.Match globs over parameter names.
	NoDecay     []string `yaml:"no_decay" default:"*norm*,*bias,*embed*" doc:"Weight decay applies to the tensors of two or more dimensions (matrices, not norms or biases), except those whose names these glob patterns match."`
	WarmupSteps int      `yaml:"warmup_steps" default:"0" doc:"Linear warm-up steps from 0 to optim.lr."`
	Schedule    string   `yaml:"schedule" default:"constant" enum:"constant,linear,cosine" doc:"Learning-rate decay after warm-up."`
	MinLRRatio  float64  `yaml:"min_lr_ratio" default:"0" doc:"Final learning rate of linear and cosine schedules, as a fraction of optim.lr."`
	MaxGradNorm float64  `yaml:"max_grad_norm" default:"1.0" doc:"Clip the global gradient norm to this; 0 disables."`
}

// DefaultOptim returns the documented defaults.
func DefaultOptim() Optim { return option.Defaults[Optim]() }

// Validate reports every invalid option, naming its key.
func (o Optim) Validate() error { return option.Validate("optim", o) }

// Check implements option.Section.
func (o Optim) Check(c *option.Checker) {
	c.Positive("lr", o.LR)
	if len(o.Betas) != 2 {
		c.Bad("betas", "want 2 values [beta1, beta2], got %d", len(o.Betas))
	} else {
		c.Within("betas.0", o.Betas[0], 0, 1, false)
		c.Within("betas.1", o.Betas[1], 0, 1, false)
	}
	c.Positive("eps", o.Eps)
	c.NonNegative("weight_decay", o.WeightDecay)
	c.AtLeast("warmup_steps", o.WarmupSteps, 0)
	c.Within("min_lr_ratio", o.MinLRRatio, 0, 1, true)
	c.NonNegative("max_grad_norm", o.MaxGradNorm)
	for _, p := range o.NoDecay {
		if _, err := matchName(p, ""); err != nil {
			c.Bad("no_decay", "pattern %q: %v", p, err)
		}
	}
}
