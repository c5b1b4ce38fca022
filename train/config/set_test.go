package config

import (
	"reflect"
	"testing"
)

func TestSet(t *testing.T) {
	base := minimal + "reward:\n  - type: math_answer\n    params:\n      compare: exact\n"
	tests := []struct {
		set  string
		get  func(c *Config) any
		want any
	}{
		{"optim.lr=2e-6", func(c *Config) any { return c.Optim.LR }, 2e-6},
		{"optim.lr=1", func(c *Config) any { return c.Optim.LR }, 1.0},
		{"rollout.group_size=16", func(c *Config) any { return c.Rollout.GroupSize }, 16},
		{"algorithm.advantage=rloo", func(c *Config) any { return c.Algorithm.Advantage }, "rloo"},
		{"algorithm.lambda=0.5", func(c *Config) any { return c.Algorithm.Lambda }, 0.5},
		{"optim.betas=[0.9, 0.95]", func(c *Config) any { return c.Optim.Betas }, []float64{0.9, 0.95}},
		{"optim.betas.1=0.98", func(c *Config) any { return c.Optim.Betas }, []float64{0.9, 0.98}},
		{"optim.no_decay=[]", func(c *Config) any { return c.Optim.NoDecay }, []string(nil)},
		{"data.shuffle=false", func(c *Config) any { return c.Data.Shuffle }, false},
		{"model.path=", func(c *Config) any { return c.Model.Path }, ""},
		{"model.path=a=b", func(c *Config) any { return c.Model.Path }, "a=b"},
		{"model.tokenizer=123", func(c *Config) any { return c.Model.Tokenizer }, "123"},
		{`rollout.stop=["\n", "##"]`, func(c *Config) any { return c.Rollout.Stop }, []string{"\n", "##"}},
		{"reward.0.weight=2.5", func(c *Config) any { return *c.Reward.Functions[0].Weight }, 2.5},
		{"reward.0.params.compare=numeric", func(c *Config) any { return c.Reward.Functions[0].Params.(map[string]any)["compare"] }, "numeric"},
		{"reward.1.type=format", func(c *Config) any { r := c.Reward.Functions; return []any{len(r), r[1].Type, *r[1].Weight} }, []any{2, "format", 1.0}},
		{"data.task_params.digits=3", func(c *Config) any { return c.Data.TaskParams["digits"] }, 3},
		{"data.task_params.a.b=x", func(c *Config) any { return c.Data.TaskParams["a"] }, map[string]any{"b": "x"}},
		{"data.task_params={ops: '+*'}", func(c *Config) any { return c.Data.TaskParams }, map[string]any{"ops": "+*"}},
		{"model.init={hidden: 32, layers: 1}", func(c *Config) any { return []int{c.Model.Init.Hidden, c.Model.Init.Layers, c.Model.Init.Heads} }, []int{32, 1, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			c := mustParse(t, base)
			if err := c.Set(tt.set); err != nil {
				t.Fatal(err)
			}
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	tests := []struct{ set, want string }{
		{"rollout.grup_size=4", `--set rollout.grup_size=4: unknown key "rollout.grup_size" (did you mean "rollout.group_size"?)`},
		{"rollout.lr=4", `--set rollout.lr=4: unknown key "rollout.lr" (did you mean "optim.lr"?)`},
		{"nosuch=1", `--set nosuch=1: unknown key "nosuch"`},
		{"optim.lr=abc", `--set optim.lr=abc: optim.lr: want a number, got "abc"`},
		{"rollout.group_size=2.5", `--set rollout.group_size=2.5: rollout.group_size: want an integer, got "2.5"`},
		{"data.shuffle=1", `--set data.shuffle=1: data.shuffle: want true or false, got "1"`},
		{"optim.lr", `--set optim.lr: want key=value`},
		{"=3", `--set =3: want key=value`},
		{"reward.5.weight=1", `--set reward.5.weight=1: reward.functions: no entry "5": the list has 1 (indices 0..0; 1 appends)`},
		{"reward.x.weight=1", `--set reward.x.weight=1: unknown key "reward.x"`},
		{"reward.0.wieght=1", `--set reward.0.wieght=1: unknown key "reward.functions.0.wieght" (did you mean "reward.functions.0.weight"?)`},
		{"optim.lr.x=1", `--set optim.lr.x=1: unknown key "optim.lr.x": optim.lr is a number, not a section`},
		{"optim=3", `--set optim=3: optim: want a mapping of options, got "3"`},
		{"optim.lr=[1", `--set optim.lr=[1: optim.lr: value is not valid YAML`},
	}
	for _, tt := range tests {
		c := mustParse(t, minimal+"reward:\n  - type: math_answer\n")
		err := c.Set(tt.set)
		if err == nil || len(err.Error()) < len(tt.want) || err.Error()[:len(tt.want)] != tt.want {
			t.Errorf("Set(%q) error\n %v\nwant prefix\n %s", tt.set, err, tt.want)
		}
	}
}
