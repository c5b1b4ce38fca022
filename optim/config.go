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

// Policy objectives (algorithm.loss).
const (
	LossPPO  = "ppo"  // clipped surrogate (PPO, GRPO, DAPO, Dr. GRPO, …)
	LossDRPO = "drpo" // decoupled reward policy optimisation
)

// Algorithm is the `algorithm` section of a run config. Zero values are
// not defaults: start from DefaultAlgorithm and override.
type Algorithm struct {
	// Advantage is the estimator: grpo, dr_grpo, rloo, gdpo,
	// reinforce_pp or gae. Default grpo.
	Advantage string `yaml:"advantage"`
	// ScaleRewards divides GRPO advantages by the group's std (group,
	// default), the whole batch's std (batch), or not at all (none).
	ScaleRewards string `yaml:"scale_rewards"`
	// Whiten normalises reinforce_pp advantages over the batch. Default
	// true.
	Whiten bool `yaml:"whiten"`
	// Loss is the policy objective: ppo (default) or drpo.
	Loss string `yaml:"loss"`

	// Epsilon is the clip range of the ratio (both sides). Default 0.2.
	Epsilon float64 `yaml:"epsilon"`
	// EpsilonHigh, when > 0, overrides the upper clip range (DAPO: 0.28).
	// Default 0 (same as Epsilon).
	EpsilonHigh float64 `yaml:"epsilon_high"`
	// ClipRatioC caps the loss of negative-advantage tokens at c·|A|
	// (dual clip); values ≤ 1 disable it. Default 3.
	ClipRatioC float64 `yaml:"clip_ratio_c"`
	// LossAggMode: token-mean (default), seq-mean-token-mean,
	// seq-mean-token-sum or seq-mean-token-sum-norm.
	LossAggMode string `yaml:"loss_agg_mode"`

	// Beta weighs the KL to the frozen reference model; 0 (default) loads
	// no reference model at all.
	Beta float64 `yaml:"beta"`
	// KLEstimator: k1, k2 or k3 (default; verl's low_var_kl).
	KLEstimator string `yaml:"kl_estimator"`
	// KLIn: loss (default; GRPO) adds β·KL to the loss; reward (PPO)
	// subtracts β·k1 per token from the reward.
	KLIn string `yaml:"kl_in"`
	// TargetKL, when > 0 with kl_in: reward, adapts β towards this KL per
	// token (Ziegler et al.). Default 0 (fixed β).
	TargetKL float64 `yaml:"target_kl"`
	// KLHorizon is the adaptive controller's horizon in samples. Default
	// 10000.
	KLHorizon int `yaml:"kl_horizon"`

	// EntropyCoef weighs the entropy bonus. Default 0.
	EntropyCoef float64 `yaml:"entropy_coef"`
	// MaskTruncated drops completions that hit L_max without EOS from the
	// loss and from its normalisers (DAPO overlong filtering). Default
	// false.
	MaskTruncated bool `yaml:"mask_truncated"`
	// TISCap, when > 0, multiplies each token's surrogate by
	// min(exp(ℓ_old − ℓ_rollout), tis_cap) to correct for the sampler's
	// log-probs differing from the trainer's. Default 0 (off); 2–3 is
	// typical.
	TISCap float64 `yaml:"tis_cap"`

	// Gamma and Lam are GAE's discount and trace decay. Defaults 1, 0.95.
	Gamma float64 `yaml:"gamma"`
	Lam   float64 `yaml:"lam"`
	// VFCoef weighs the value loss. Default 0.1.
	VFCoef float64 `yaml:"vf_coef"`
	// ValueClip bounds V − V_old in the clipped value loss; 0 disables
	// clipping. Default 0.2.
	ValueClip float64 `yaml:"value_clip"`

	// DRPO: Lambda is the length-weight temperature (→ ∞ gives DisCO's
	// uniform weights), Tau the negatives' log-sum-exp temperature,
	// DRPOBeta and Delta the KL penalty β·max(KL − δ, 0). Defaults 0.1,
	// 10, 1000, 1e-4 (the authors' 1.5B script).
	Lambda   float64 `yaml:"lambda"`
	Tau      float64 `yaml:"tau"`
	DRPOBeta float64 `yaml:"drpo_beta"`
	Delta    float64 `yaml:"delta"`
}

// DefaultAlgorithm returns the documented defaults.
func DefaultAlgorithm() Algorithm {
	return Algorithm{
		Advantage:    AdvGRPO,
		ScaleRewards: "group",
		Whiten:       true,
		Loss:         LossPPO,
		Epsilon:      0.2,
		ClipRatioC:   3,
		LossAggMode:  "token-mean",
		KLEstimator:  "k3",
		KLIn:         "loss",
		KLHorizon:    10000,
		Gamma:        1,
		Lam:          0.95,
		VFCoef:       0.1,
		ValueClip:    0.2,
		Lambda:       0.1,
		Tau:          10,
		DRPOBeta:     1000,
		Delta:        1e-4,
	}
}

// Validate reports the first invalid option, naming its key.
func (a Algorithm) Validate() error {
	if err := oneOf("algorithm.advantage", a.Advantage, AdvGRPO, AdvDrGRPO, AdvRLOO, AdvGDPO, AdvReinforcePP, AdvGAE); err != nil {
		return err
	}
	if err := oneOf("algorithm.scale_rewards", a.ScaleRewards, "group", "batch", "none"); err != nil {
		return err
	}
	if err := oneOf("algorithm.loss", a.Loss, LossPPO, LossDRPO); err != nil {
		return err
	}
	if _, err := ParseAggMode(a.LossAggMode); err != nil {
		return err
	}
	if _, err := ParseKLEstimator(a.KLEstimator); err != nil {
		return err
	}
	if err := oneOf("algorithm.kl_in", a.KLIn, "loss", "reward"); err != nil {
		return err
	}
	checks := []struct {
		key string
		ok  bool
	}{
		{"algorithm.epsilon must be in (0, 1)", a.Epsilon > 0 && a.Epsilon < 1},
		{"algorithm.epsilon_high must be ≥ 0", a.EpsilonHigh >= 0},
		{"algorithm.clip_ratio_c must be > 1, or ≤ 1 to disable", !math.IsNaN(a.ClipRatioC)},
		{"algorithm.beta must be ≥ 0", a.Beta >= 0},
		{"algorithm.target_kl must be ≥ 0", a.TargetKL >= 0},
		{"algorithm.target_kl needs kl_in: reward and beta > 0", a.TargetKL == 0 || (a.KLIn == "reward" && a.Beta > 0)},
		{"algorithm.kl_horizon must be > 0", a.KLHorizon > 0},
		{"algorithm.entropy_coef must be ≥ 0", a.EntropyCoef >= 0},
		{"algorithm.tis_cap must be 0 (off) or ≥ 1", a.TISCap == 0 || a.TISCap >= 1},
		{"algorithm.gamma must be in [0, 1]", a.Gamma >= 0 && a.Gamma <= 1},
		{"algorithm.lam must be in [0, 1]", a.Lam >= 0 && a.Lam <= 1},
		{"algorithm.vf_coef must be ≥ 0", a.VFCoef >= 0},
		{"algorithm.value_clip must be ≥ 0", a.ValueClip >= 0},
		{"algorithm.lambda must be > 0", a.Lambda > 0},
		{"algorithm.tau must be > 0", a.Tau > 0},
		{"algorithm.drpo_beta must be ≥ 0", a.DRPOBeta >= 0},
		{"algorithm.delta must be ≥ 0", a.Delta >= 0},
	}
	for _, c := range checks {
		if !c.ok {
			return fmt.Errorf("%s", c.key)
		}
	}
	return nil
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

// Optim is the `optim` section of a run config.
type Optim struct {
	// LR is the peak learning rate. Default 1e-6.
	LR float64 `yaml:"lr"`
	// Betas are AdamW's β1, β2. Default [0.9, 0.999].
	Betas [2]float64 `yaml:"betas"`
	// Eps is AdamW's ε. Default 1e-8.
	Eps float64 `yaml:"eps"`
	// WeightDecay is the decoupled decay. Default 0.01.
	WeightDecay float64 `yaml:"weight_decay"`
	// NoDecay lists glob patterns (path.Match over the parameter's name)
	// of parameters exempt from weight decay. Default: norms, biases and
	// embeddings.
	NoDecay []string `yaml:"no_decay"`
	// Schedule is constant (default), linear (decay to the floor) or
	// cosine (to the floor), each after WarmupSteps of linear warm-up.
	Schedule    string `yaml:"schedule"`
	WarmupSteps int    `yaml:"warmup_steps"`
	// MinLRRatio is the floor of the linear and cosine schedules as a
	// fraction of LR. Default 0.
	MinLRRatio float64 `yaml:"min_lr_ratio"`
	// MaxGradNorm clips the global gradient norm; 0 disables. Default 1.
	MaxGradNorm float64 `yaml:"max_grad_norm"`
	// GradAccum is the number of micro-batches per optimizer step.
	// Default 1.
	GradAccum int `yaml:"grad_accum"`
}

// DefaultNoDecay matches the norms, biases and embedding tables of the
// Llama-family parameter names.
var DefaultNoDecay = []string{"*norm*", "*bias", "*embed*"}

// DefaultOptim returns the documented defaults.
func DefaultOptim() Optim {
	return Optim{
		LR:          1e-6,
		Betas:       [2]float64{0.9, 0.999},
		Eps:         1e-8,
		WeightDecay: 0.01,
		NoDecay:     append([]string(nil), DefaultNoDecay...),
		Schedule:    "constant",
		MaxGradNorm: 1,
		GradAccum:   1,
	}
}

// Validate reports the first invalid option, naming its key.
func (o Optim) Validate() error {
	if err := oneOf("optim.schedule", o.Schedule, "constant", "linear", "cosine"); err != nil {
		return err
	}
	checks := []struct {
		key string
		ok  bool
	}{
		{"optim.lr must be > 0", o.LR > 0},
		{"optim.betas must be in [0, 1)", o.Betas[0] >= 0 && o.Betas[0] < 1 && o.Betas[1] >= 0 && o.Betas[1] < 1},
		{"optim.eps must be > 0", o.Eps > 0},
		{"optim.weight_decay must be ≥ 0", o.WeightDecay >= 0},
		{"optim.warmup_steps must be ≥ 0", o.WarmupSteps >= 0},
		{"optim.min_lr_ratio must be in [0, 1]", o.MinLRRatio >= 0 && o.MinLRRatio <= 1},
		{"optim.max_grad_norm must be ≥ 0", o.MaxGradNorm >= 0},
		{"optim.grad_accum must be ≥ 1", o.GradAccum >= 1},
	}
	for _, c := range checks {
		if !c.ok {
			return fmt.Errorf("%s", c.key)
		}
	}
	for _, p := range o.NoDecay {
		if _, err := matchName(p, ""); err != nil {
			return fmt.Errorf("optim.no_decay: pattern %q: %w", p, err)
		}
	}
	return nil
}

func oneOf(key, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s: unknown value %q (want one of %v)", key, v, allowed)
}
