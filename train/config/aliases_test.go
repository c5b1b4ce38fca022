package config

import (
	"strings"
	"testing"
)

// TRL and verl names give the option that means the same here, not the
// nearest spelling (kl_coef is not vf_coef, adv_estimator is not
// kl_estimator).
func TestForeignNameHints(t *testing.T) {
	tests := []struct{ src, want string }{
		{"num_generations: 8\n", `x.yaml:1: unknown key "num_generations" (TRL's name; ours is "rollout.group_size")`},
		{"rollout:\n  n: 8\n", `x.yaml:2: unknown key "rollout.n" (verl's name; ours is "rollout.group_size")`},
		{"learning_rate: 1e-6\n", `x.yaml:1: unknown key "learning_rate" (TRL's name; ours is "optim.lr")`},
		{"max_completion_length: 256\n", `unknown key "max_completion_length" (TRL's name; ours is "rollout.max_new_tokens")`},
		{"num_iterations: 2\n", `unknown key "num_iterations" (TRL's name; ours is "train.ppo_epochs")`},
		{"algorithm:\n  kl_coef: 0.01\n", `x.yaml:2: unknown key "algorithm.kl_coef" (verl's name; ours is "algorithm.beta": with algorithm.kl_in: reward`},
		{"beta: 0.04\n", `unknown key "beta" (TRL's name; ours is "algorithm.beta")`},
		{"algorithm:\n  adv_estimator: grpo\n", `unknown key "algorithm.adv_estimator" (verl's name; ours is "algorithm.advantage")`},
		{"loss_type: dr_grpo\n", `unknown key "loss_type" (TRL's name; ours is "algorithm.loss_agg_mode": TRL's grpo is seq-mean-token-mean`},
		{"max_steps: 100\n", `unknown key "max_steps" (TRL's name; ours is "train.steps")`},
		{"gradient_accumulation_steps: 4\n", `unknown key "gradient_accumulation_steps" (TRL's name; ours is "train.micro_batch_size"`},
		{"save_steps: 50\n", `unknown key "save_steps" (TRL's name; ours is "checkpoint.every")`},
		{"logging_steps: 5\n", `unknown key "logging_steps" (TRL's name; ours is "log.every")`},
		{"actor_rollout_ref:\n  rollout:\n    n: 4\n", `unknown key "actor_rollout_ref" (verl's section; its options live in our model, rollout, optim and algorithm sections)`},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.src), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v\nwant %s", tc.src, err, tc.want)
		}
	}
}

// Every hint names an option that exists (or is skipped until it does),
// so the table cannot drift into advice that fails again.
func TestForeignNamesPointAtOptions(t *testing.T) {
	for key, f := range foreignNames {
		if f.to == "" {
			continue
		}
		if _, ok := lookupField(f.to); !ok {
			switch f.to {
			case "data.max_prompt_length", "log.report_to", "model.chat_template_kwargs":
				// Options added alongside this table; until then no hint.
				if h := foreignHint("", key); h != "" {
					t.Errorf("%s: hint %q names a missing option", key, h)
				}
			default:
				t.Errorf("%s points at %q, which is not an option", key, f.to)
			}
		}
		if _, ok := lookupField(key); ok {
			t.Errorf("%s is one of our own options; it needs no hint", key)
		}
	}
}

// A misspelt reward param is caught when the config is checked, with its
// file, line and the param meant.
func TestRewardParamsChecked(t *testing.T) {
	src := "data: {task: arithmetic}\nreward:\n  - name: acc\n    type: math_answer\n    params: {extrct: [hash]}\n  - type: nosuch\n"
	c, err := Parse([]byte(src), "x.yaml")
	if err == nil {
		err = c.Validate()
	}
	for _, want := range []string{
		`x.yaml:5: reward.functions.0.params.extrct: unknown param "extrct" of reward type math_answer (did you mean "extract"?)`,
		`x.yaml:6: reward.functions.1.type: unknown reward type "nosuch"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant %s", err, want)
		}
	}
}
