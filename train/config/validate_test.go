package config

import (
	"slices"
	"strings"
	"testing"
)

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		sets []string
		want string // one line of the joined error
	}{
		{"no data", "log:\n  every: 1\n", nil,
			"data: set data.train (a JSONL file) or data.task (arithmetic, countdown)"},
		{"train and task", minimal + "  train: p.jsonl\n", nil,
			"x.yaml:2: data.task: data.train and data.task are exclusive; set one"},
		{"unknown task", "data:\n  task: chess\n", nil,
			`x.yaml:2: data.task: must be one of arithmetic, countdown, got "chess"`},
		{"bad task params", minimal + "  task_params:\n    digitz: 3\n", nil,
			`x.yaml:4: data.task_params.digitz: task arithmetic: unknown parameter "digitz"`},
		{"task params out of range", minimal + "  task_params:\n    digits: 2\n    terms: 1\n", nil,
			"x.yaml:3: data.task_params: task arithmetic: need 2 <= min_terms <= terms <= 8"},
		{"eval fraction with task", minimal + "  eval_fraction: 0.1\n", nil,
			"x.yaml:2: data.task: a built-in task has its own held-out set"},
		{"eval fraction range", "data:\n  train: p.jsonl\n  eval_fraction: 1.5\n", nil,
			"x.yaml:3: data.eval_fraction: must be in [0, 1), got 1.5"},
		{"eval fraction and size", "data:\n  train: p.jsonl\n  eval_fraction: 0.1\n  eval_size: 10\n", nil,
			"x.yaml:4: data.eval_size: set data.eval_fraction or data.eval_size, not both"},
		{"group size range", minimal + "rollout:\n  group_size: 0\n", nil,
			"x.yaml:4: rollout.group_size: must be >= 1, got 0"},
		{"grpo needs a group", minimal + "rollout:\n  group_size: 1\n", nil,
			"x.yaml:4: rollout.group_size: advantage grpo compares completions within a group and needs >= 2, got 1"},
		{"reinforce_pp accepts group of one", minimal + "rollout:\n  group_size: 1\nalgorithm:\n  advantage: reinforce_pp\n", nil, ""},
		{"epsilon range", minimal + "algorithm:\n  epsilon: 1\n", nil,
			"x.yaml:4: algorithm.epsilon: must be in (0, 1), got 1"},
		{"negative epsilon", minimal + "algorithm:\n  epsilon: -0.1\n", nil,
			"x.yaml:4: algorithm.epsilon: must be in (0, 1), got -0.1"},
		{"dual clip off", minimal + "algorithm:\n  clip_ratio_c: 1\n", nil, ""},
		{"betas length", minimal + "optim:\n  betas: [0.9]\n", nil,
			"x.yaml:4: optim.betas: want 2 values [beta1, beta2], got 1"},
		{"betas range", minimal + "optim:\n  betas: [0.9, 1.5]\n", nil,
			"x.yaml:4: optim.betas.1: must be in [0, 1), got 1.5"},
		{"reward fallback", minimal + "reward:\n  - type: math_answer\n    fallback: zero\n", nil,
			`x.yaml:5: reward.functions.0.fallback: want exclude or a finite number, got "zero"`},
		{"reward fallback number", minimal + "reward:\n  - type: math_answer\n    fallback: -1\n    timeout: 1m30s\n", nil, ""},
		{"lr positive", minimal + "optim:\n  lr: 0\n", nil,
			"x.yaml:4: optim.lr: must be > 0, got 0"},
		{"advantage enum", minimal + "algorithm:\n  advantage: ppo\n", nil,
			`x.yaml:4: algorithm.advantage: must be one of grpo, dr_grpo, rloo, gdpo, reinforce_pp, gae, got "ppo"`},
		{"loss enum", minimal + "algorithm:\n  loss: dpo\n", nil,
			`x.yaml:4: algorithm.loss: must be one of ppo, drpo, got "dpo"`},
		{"agg mode enum", minimal + "algorithm:\n  loss_agg_mode: mean\n", nil,
			`x.yaml:4: algorithm.loss_agg_mode: must be one of token-mean, seq-mean-token-mean, seq-mean-token-sum, seq-mean-token-sum-norm, got "mean"`},
		{"kl estimator enum", minimal + "algorithm:\n  kl_estimator: k4\n", nil,
			`x.yaml:4: algorithm.kl_estimator: must be one of k1, k2, k3, got "k4"`},
		{"backend enum", minimal + "backend:\n  type: tpu\n", nil,
			`x.yaml:4: backend.type: must be one of cpu, cuda, cuda-emu, got "tpu"`},
		{"bf16 on the cpu", minimal + "backend:\n  precision: bf16\n", nil,
			"x.yaml:4: backend.precision: bf16 needs a CUDA backend (backend.type: cuda, or cuda-emu to emulate it); the CPU backend computes in fp32 only"},
		{"bf16 on cuda", minimal + "backend:\n  type: cuda-emu\n  precision: bf16\n", nil, ""},
		{"tf32 on the cpu", minimal + "backend:\n  tf32: true\n", nil,
			"x.yaml:4: backend.tf32: TF32 math needs a CUDA backend (backend.type: cuda or cuda-emu); the CPU backend computes in fp32 only"},
		{"precision enum", minimal + "backend:\n  type: cuda\n  precision: fp16\n", nil,
			`x.yaml:5: backend.precision: must be one of fp32, bf16, got "fp16"`},
		{"schedule enum", minimal + "optim:\n  schedule: step\n", nil,
			`x.yaml:4: optim.schedule: must be one of constant, linear, cosine, got "step"`},
		{"gdpo needs two rewards", minimal + "algorithm:\n  advantage: gdpo\nreward:\n  - type: math_answer\n", nil,
			"x.yaml:4: algorithm.advantage: gdpo normalises each reward separately and needs at least 2 rewards, got 1"},
		{"gdpo with two rewards", minimal + "algorithm:\n  advantage: gdpo\nreward:\n  - type: math_answer\n  - type: format\n", nil, ""},
		{"reward type required", minimal + "reward:\n  - weight: 2\n", nil,
			"reward.functions.0.type: required"},
		{"reward names unique", minimal + "reward:\n  - type: math_answer\n  - type: length\n  - type: math_answer\n", nil,
			`reward.functions.2.name: "math_answer" is already the name of reward.functions.0`},
		{"drpo whole groups", minimal + "algorithm:\n  loss: drpo\ntrain:\n  micro_batch_size: 4\n", nil,
			"x.yaml:6: train.micro_batch_size: loss drpo needs whole groups in each micro-batch: a multiple of rollout.group_size (8), got 4"},
		{"abort with drpo", minimal + "algorithm:\n  loss: drpo\nrollout:\n  abort_horizon: 4\n  abort_markers: [x]\n", nil,
			"x.yaml:6: rollout.abort_horizon: the marker-gated abort weights advantages, which loss drpo does not use"},
		{"abort horizon", minimal + "rollout:\n  abort_horizon: 4\n  abort_markers: [x]\n", nil, ""},
		{"mini batch divides", minimal + "train:\n  mini_batch_size: 12\n", nil,
			"x.yaml:4: train.mini_batch_size: must divide rollout.batch_size x rollout.group_size (64), got 12"},
		{"kv heads divide heads", minimal + "model:\n  init:\n    heads: 4\n    kv_heads: 3\n", nil,
			"x.yaml:6: model.init.kv_heads: must divide model.init.heads (4), got 3"},
		{"room for the prompt (default value has no position)", minimal, []string{"model.init.max_seq=64"},
			"rollout.max_new_tokens: must be below model.init.max_seq (64) to leave room for the prompt, got 256"},
		{"error from --set names it", minimal, []string{"rollout.top_p=0"},
			"--set rollout.top_p=0: rollout.top_p: must be in (0, 1], got 0"},
		{"adaptive kl needs reward kl", minimal + "algorithm:\n  beta: 0.1\n  target_kl: 0.05\n", nil,
			"x.yaml:5: algorithm.target_kl: adaptive KL needs algorithm.kl_in: reward"},
		{"nothing to do", minimal + "train:\n  steps: 0\n", nil,
			"x.yaml:4: train.steps: nothing to do: train.steps and sft.steps are both 0"},
		{"keep best needs a metric", minimal + "checkpoint:\n  keep_best: 1\n  metric: \"\"\n", nil,
			"x.yaml:5: checkpoint.metric: required when checkpoint.keep_best > 0"},
		{"log every", minimal + "log:\n  every: 0\n", nil,
			"x.yaml:4: log.every: must be >= 1, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.src)
			for _, s := range tt.sets {
				if err := c.Set(s); err != nil {
					t.Fatal(err)
				}
			}
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			found := false
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, tt.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("error\n%v\nhas no line starting %q", err, tt.want)
			}
		})
	}
}

func TestLoadValidates(t *testing.T) {
	p := writeTemp(t, minimal+"optim:\n  lr: -1\n")
	_, err := Load(p, nil)
	if err == nil || !strings.Contains(err.Error(), p+":4: optim.lr: must be > 0, got -1") {
		t.Fatalf("error %v", err)
	}
	if _, err := Load(p, []string{"optim.lr=1e-5"}); err != nil {
		t.Fatalf("override did not fix the value: %v", err)
	}
}

func TestValidateReportingAndCorrectness(t *testing.T) {
	src := "data:\n  task: arithmetic\nlog:\n  report_to: [jsonl, wandb]\neval:\n  correct_reward: acc\nreward:\n  - type: format\n  - name: answer\n    type: math_answer\n"
	c, err := Parse([]byte(src), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	for _, want := range []string{`log.report_to.1: want jsonl or tensorboard, got "wandb"`, `eval.correct_reward: "acc" is not the name of a reward; the rewards are format, answer`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant %s", err, want)
		}
	}
	c, err = Parse([]byte("data:\n  task: arithmetic\nlog:\n  report_to: [jsonl, tensorboard]\neval:\n  correct_reward: answer\n  correct_threshold: 1\nreward:\n  - type: format\n  - name: answer\n    type: math_answer\n"), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Eval.CorrectThreshold != 1 || !slices.Equal(c.Log.ReportTo, []string{"jsonl", "tensorboard"}) {
		t.Fatalf("eval %+v report_to %v", c.Eval, c.Log.ReportTo)
	}
}
