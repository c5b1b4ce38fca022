package config

import (
	"fmt"
	"strings"
)

// foreignName is an option name from TRL's GRPOConfig/SFTConfig or verl's
// ppo_trainer.yaml and where its meaning lives here.
type foreignName struct {
	whose string // "TRL's name", "verl's section", ...
	to    string // our key path, or "" when note says it all
	note  string // how the meaning differs, if it does
}

func trl(to string, note ...string) foreignName {
	return foreignName{"TRL's name", to, strings.Join(note, "")}
}

func verl(to string, note ...string) foreignName {
	return foreignName{"verl's name", to, strings.Join(note, "")}
}

func trlVerl(to string, note ...string) foreignName {
	return foreignName{"TRL's and verl's name", to, strings.Join(note, "")}
}

func verlSection(note string) foreignName { return foreignName{"verl's section", "", note} }

// foreignNames is keyed by the unknown key as written, or by its dotted
// path when the name alone is ambiguous ("rollout.n").
var foreignNames = map[string]foreignName{
	// Sizes of a step.
	"num_generations":              trl("rollout.group_size"),
	"rollout.n":                    verl("rollout.group_size"),
	"train_batch_size":             verl("rollout.batch_size", "prompts per step, as verl's data.train_batch_size"),
	"per_device_train_batch_size":  trl("rollout.batch_size", "ours counts prompts; a step has rollout.batch_size × rollout.group_size completions"),
	"ppo_mini_batch_size":          verl("train.mini_batch_size", "ours counts completions, verl's counts prompts"),
	"ppo_micro_batch_size_per_gpu": verl("train.micro_batch_size", "completions per forward/backward pass"),
	"gradient_accumulation_steps":  trl("train.micro_batch_size", "set the completions per forward/backward pass; the step's gradient is accumulated over all of them"),
	"max_completion_length":        trl("rollout.max_new_tokens"),
	"max_response_length":          verl("rollout.max_new_tokens"),
	"response_length":              verl("rollout.max_new_tokens"),
	"max_prompt_length":            trlVerl("data.max_prompt_length"),
	"num_iterations":               trl("train.ppo_epochs"),
	"max_steps":                    trl("train.steps"),
	"total_training_steps":         verl("train.steps"),
	"num_train_epochs":             trl("train.steps", "runs are counted in steps of rollout.batch_size prompts"),
	"total_epochs":                 verl("train.steps", "runs are counted in steps of rollout.batch_size prompts"),

	// The objective.
	"beta":                       trl("algorithm.beta"),
	"kl_coef":                    verl("algorithm.beta", "with algorithm.kl_in: reward for verl's in-reward KL penalty"),
	"kl_loss_coef":               verl("algorithm.beta", "with algorithm.kl_in: loss (the default)"),
	"use_kl_loss":                verl("algorithm.kl_in", "kl_in: loss with algorithm.beta > 0"),
	"use_kl_in_reward":           verl("algorithm.kl_in", "kl_in: reward with algorithm.beta > 0"),
	"kl_loss_type":               verl("algorithm.kl_estimator", "verl's low_var_kl is k3"),
	"kl_penalty":                 verl("algorithm.kl_estimator"),
	"adv_estimator":              verl("algorithm.advantage"),
	"loss_mode":                  verl("algorithm.importance_sampling_level", "loss_mode: gspo is importance_sampling_level: sequence (verl aggregates it seq-mean-token-mean: set algorithm.loss_agg_mode)"),
	"loss_type":                  trl("algorithm.loss_agg_mode", "TRL's grpo is seq-mean-token-mean, bnpo and dapo are token-mean; dr_grpo is algorithm.advantage: dr_grpo"),
	"clip_ratio":                 verl("algorithm.epsilon"),
	"clip_ratio_low":             verl("algorithm.epsilon"),
	"clip_ratio_high":            verl("algorithm.epsilon_high"),
	"entropy_coeff":              verl("algorithm.entropy_coef"),
	"mask_truncated_completions": trl("algorithm.mask_truncated"),
	"norm_adv_by_std_in_grpo":    verl("algorithm.scale_rewards", "false is scale_rewards: none"),
	"reward_funcs":               trl("reward", "a list of {type, weight, params}"),
	"reward_weights":             trl("reward", "each reward's weight"),

	// Optimiser.
	"learning_rate":     trl("optim.lr"),
	"lr_scheduler_type": trl("optim.schedule"),
	"warmup_ratio":      trl("optim.warmup_steps", "a number of steps"),
	"lr_warmup_steps":   verl("optim.warmup_steps"),
	"grad_clip":         verl("optim.max_grad_norm"),
	"adam_beta1":        trl("optim.betas", "[beta1, beta2]"),
	"adam_beta2":        trl("optim.betas", "[beta1, beta2]"),
	"adam_epsilon":      trl("optim.eps"),

	// Data and model.
	"model_name_or_path":   trl("model.path"),
	"train_files":          verl("data.train"),
	"val_files":            verl("data.eval"),
	"dataset_name":         trl("data.train", "a local JSONL or Parquet file"),
	"prompt_key":           verl("data.prompt_field"),
	"dataset_text_field":   trl("data.prompt_field"),
	"chat_template_kwargs": trl("model.chat_template_kwargs"),

	// Logging and saving.
	"logging_steps":            trl("log.every"),
	"report_to":                trl("log.report_to"),
	"logger":                   verl("log.report_to"),
	"log_completions":          trl("log.sample_every", "steps between printed samples"),
	"num_completions_to_print": trl("log.samples"),
	"save_steps":               trl("checkpoint.every"),
	"save_freq":                verl("checkpoint.every"),
	"save_total_limit":         trl("checkpoint.keep_last"),
	"output_dir":               trl("train.out_dir"),
	"default_local_dir":        verl("checkpoint.dir"),
	"eval_steps":               trl("train.eval_every"),
	"test_freq":                verl("train.eval_every"),
	"bf16":                     trl("backend.precision", "precision: bf16 on the CUDA backends"),

	// verl's sections.
	"actor_rollout_ref": verlSection("its options live in our model, rollout, optim and algorithm sections"),
	"trainer":           verlSection("ours are train, checkpoint and log"),
	"critic":            {"verl's section", "algorithm.advantage", "the critic comes with advantage: gae"},
	"reward_model":      {"verl's section", "reward", ""},
}

// foreignHint explains an unknown key that is a TRL or verl option name:
// "TRL's name; ours is rollout.group_size". It names only options that
// exist here, and is "" for other keys.
func foreignHint(path, key string) string {
	f, ok := foreignNames[join(path, key)]
	if !ok {
		f, ok = foreignNames[key]
	}
	if !ok {
		return ""
	}
	if f.to != "" {
		if _, exists := lookupField(f.to); !exists {
			return ""
		}
	}
	switch {
	case f.to == "":
		return f.whose + "; " + f.note
	case f.note == "":
		return fmt.Sprintf("%s; ours is %q", f.whose, f.to)
	}
	return fmt.Sprintf("%s; ours is %q: %s", f.whose, f.to, f.note)
}
