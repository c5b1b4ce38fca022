package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid config.
const minimal = "data:\n  task: arithmetic\n"

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse([]byte(src), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := Default()
	checks := []struct {
		key       string
		got, want any
	}{
		{"rollout.group_size", c.Rollout.GroupSize, 8},
		{"rollout.temperature", c.Rollout.Temperature, 1.0},
		{"algorithm.advantage", c.Algorithm.Advantage, "grpo"},
		{"algorithm.epsilon", c.Algorithm.Epsilon, 0.2},
		{"algorithm.loss_agg_mode", c.Algorithm.LossAggMode, "token-mean"},
		{"algorithm.kl_estimator", c.Algorithm.KLEstimator, "k3"},
		{"algorithm.tau", c.Algorithm.Tau, 10.0},
		{"algorithm.whiten", c.Algorithm.Whiten, true},
		{"optim.betas", c.Optim.Betas, []float64{0.9, 0.999}},
		{"optim.no_decay", c.Optim.NoDecay, []string{"*norm*", "*bias", "*embed*"}},
		{"reward entry fallback", mustParse(t, "reward:\n  - type: a\n").Reward.Functions[0].Fallback, "exclude"},
		{"optim.lr", c.Optim.LR, 1e-6},
		{"optim.max_grad_norm", c.Optim.MaxGradNorm, 1.0},
		{"data.prompt_field", c.Data.PromptField, "prompt"},
		{"data.shuffle", c.Data.Shuffle, true},
		{"train.seed", c.Train.Seed, int64(42)},
		{"model.init.tie_embeddings", c.Model.Init.TieEmbeddings, true},
		{"backend.type", c.Backend.Type, "cpu"},
		{"reward", len(c.Reward.Functions), 0},
		{"reward.combine", c.Reward.Combine, "sum"},
		{"reward.timeout", c.Reward.Timeout, time.Minute},
		{"data.task_params", len(c.Data.TaskParams), 0},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.key, ck.got, ck.want)
		}
	}
	if lo, hi := c.Algorithm.Epsilon, c.Algorithm.EpsHigh(); lo != 0.2 || hi != 0.2 {
		t.Errorf("clip range = %v, %v; want 0.2, 0.2", lo, hi)
	}
	c.Algorithm.EpsilonHigh = 0.28
	if hi := c.Algorithm.EpsHigh(); hi != 0.28 {
		t.Errorf("clip range upper = %v, want 0.28", hi)
	}
	// An empty file is all defaults.
	if e := mustParse(t, ""); !equalConfigs(e, Default()) {
		t.Error("empty file differs from Default()")
	}
	// Defaults plus a data source validate.
	if err := mustParse(t, minimal).Validate(); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

// Every option has a doc line, every scalar a parseable default, and every
// enum's default is one of its values.
func TestSchemaComplete(t *testing.T) {
	for _, f := range schema(reflect.TypeOf(Config{}), "", false) {
		if f.doc == "" {
			t.Errorf("%s has no doc", f.path)
		}
		k := f.typ.Kind()
		optionalSection := k == reflect.Pointer && f.typ.Elem().Kind() == reflect.Struct
		scalar := k != reflect.Struct && k != reflect.Slice && k != reflect.Map && k != reflect.Interface && !optionalSection
		if scalar && !f.hasDef {
			t.Errorf("%s has no default", f.path)
		}
		if len(f.enum) > 0 && !strings.Contains(","+strings.Join(f.enum, ",")+",", ","+f.def+",") {
			t.Errorf("%s default %q is not one of %v", f.path, f.def, f.enum)
		}
	}
}

func TestParseFull(t *testing.T) {
	c, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Optim.LR != 3e-4 || c.Rollout.Stop[0] != "\n" || c.Algorithm.EpsilonHigh != 0.28 || c.Train.Seed != 7 {
		t.Errorf("values not read: lr %v stop %q eps_high %v seed %v", c.Optim.LR, c.Rollout.Stop, c.Algorithm.EpsilonHigh, c.Train.Seed)
	}
	if r := c.Reward.Functions; len(r) != 2 || *r[0].Weight != 1 || *r[1].Weight != 0.2 || r[1].Params == nil {
		t.Errorf("rewards %+v", c.Reward)
	}
	if got := c.Reward.Functions[1].Params.(map[string]any)["outside"]; !reflect.DeepEqual(got, -1) {
		t.Errorf("reward params outside = %#v", got)
	}
	for path, want := range map[string]string{
		"reward.functions.1.params.hi": "testdata/full.yaml:29",
		"algorithm.epsilon_high":       "testdata/full.yaml:34",
		"data.task_params":             "testdata/full.yaml:12",
		"optim.beta1":                  "",
	} {
		if got := c.Pos(path); got != want {
			t.Errorf("Pos(%q) = %q, want %q", path, got, want)
		}
	}
	if _, err := Load("testdata/missing.yaml", nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"misspelt key", "rollout:\n  batch_size: 4\n  grup_size: 8\n",
			`x.yaml:3: unknown key "rollout.grup_size" (did you mean "rollout.group_size"?)`},
		{"misspelt section", "rollouts:\n  group_size: 8\n",
			`x.yaml:1: unknown key "rollouts" (did you mean "rollout"?)`},
		{"key in the wrong section", "data:\n  task: arithmetic\nrollout:\n  lr: 1e-5\n",
			`x.yaml:4: unknown key "rollout.lr" (did you mean "optim.lr"?)`},
		{"unknown key, nothing close", "log:\n  colour: blue\n",
			`x.yaml:2: unknown key "log.colour"`},
		{"number wanted", "data:\n  task: arithmetic\n\nalgorithm:\n\n  advantage: grpo\n  epsilon: abc\n",
			`x.yaml:7: algorithm.epsilon: want a number, got "abc"`},
		{"integer wanted", "rollout:\n  group_size: 1.5\n",
			`x.yaml:2: rollout.group_size: want an integer, got "1.5"`},
		{"quoted number is a string", "rollout:\n  group_size: \"8\"\n",
			`x.yaml:2: rollout.group_size: want an integer, got "8"`},
		{"bool wanted", "data:\n  shuffle: yes\n",
			`x.yaml:2: data.shuffle: want true or false, got "yes"`},
		{"empty scalar", "optim:\n  lr:\n",
			`x.yaml:2: optim.lr: want a number, got nothing`},
		{"not finite", "optim:\n  lr: .inf\n",
			`x.yaml:2: optim.lr: want a finite number, got ".inf"`},
		{"section given a scalar", "optim: 3\n",
			`x.yaml:1: optim: want a mapping of options, got "3"`},
		{"scalar given a mapping", "optim:\n  lr:\n    a: 1\n",
			`x.yaml:3: optim.lr: want a number, got a mapping`},
		{"list given a mapping", "reward:\n  functions:\n    type: math_answer\n",
			`x.yaml:3: reward.functions: want a list, got a mapping`},
		{"string list given a string", "rollout:\n  stop: x\n",
			`x.yaml:2: rollout.stop: want a list, got "x"`},
		{"params given a list", "data:\n  task_params: [1]\n",
			`x.yaml:2: data.task_params: want a mapping, got a list`},
		{"unknown key in a list entry", "reward:\n  - type: math_answer\n  - type: length\n    wieght: 2\n",
			`x.yaml:4: unknown key "reward.functions.1.wieght" (did you mean "reward.functions.1.weight"?)`},
		{"duration wanted", minimal + "reward:\n  - type: math_answer\n    timeout: 30\n",
			`x.yaml:5: reward.functions.0.timeout: want a duration such as 30s or 2m, got "30"`},
		{"shaping reference", minimal + "reward:\n  - type: math_answer\n    shaping: {ref: middle}\n",
			`x.yaml:5: reward.functions.0.shaping.ref: want a number or group_mean, got "middle"`},
		{"duplicate key", "log:\n  every: 1\n  every: 2\n",
			`x.yaml:3: duplicate key "log.every" (first set on line 2)`},
		{"top level not a mapping", "- a\n",
			`x.yaml:1: config: want a mapping of options, got a list`},
		{"syntax error", "model:\n  path: a\n   b: c\n",
			`x.yaml:3: mapping values are not allowed in this context`},
		{"all errors reported", "log:\n  every: x\n  samples: y\n",
			"x.yaml:2: log.every: want an integer, got \"x\"\nx.yaml:3: log.samples: want an integer, got \"y\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "x.yaml")
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error\n %v\nwant\n %s", err, tt.want)
			}
		})
	}
}

func TestAliasesResolve(t *testing.T) {
	c := mustParse(t, "optim:\n  lr: &lr 3e-4\nsft:\n  lr: *lr\n")
	if c.SFT.LR != 3e-4 {
		t.Fatalf("sft.lr = %v, want the aliased 3e-4", c.SFT.LR)
	}
}

func equalConfigs(a, b *Config) bool {
	x, y := *a, *b
	x.pos, y.pos = nil, nil
	return reflect.DeepEqual(x, y)
}

func writeTemp(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The reward section is reward.Config: a mapping with functions, combine,
// shaping and timeout, or a bare list of functions.
func TestRewardSection(t *testing.T) {
	c := mustParse(t, minimal+`reward:
  combine: min
  timeout: 5s
  shaping: {type: sigmoid, ref: group_mean}
  functions:
    - {type: format, fallback: 0, timeout: 2s}
    - {type: length, weight: 0.5, shaping: {ref: 1.5, scale: 2}}
`)
	r := c.Reward
	if r.Combine != "min" || r.Timeout != 5*time.Second || r.Shaping == nil || !r.Shaping.Ref.GroupMean || r.Shaping.Scale != 1 {
		t.Errorf("section %+v (shaping %+v)", r, r.Shaping)
	}
	f, l := r.Functions[0], r.Functions[1]
	if f.Fallback != "0" || f.Timeout != 2*time.Second || f.Shaping != nil || *f.Weight != 1 {
		t.Errorf("functions.0 %+v", f)
	}
	if *l.Weight != 0.5 || l.Shaping == nil || l.Shaping.Ref.Value != 1.5 || l.Shaping.Scale != 2 || l.Shaping.Type != "sigmoid" {
		t.Errorf("functions.1 %+v (shaping %+v)", l, l.Shaping)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// Printed and parsed back, the section is the same.
	y, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if back := mustParse(t, string(y)); !equalConfigs(back, c) {
		t.Errorf("round trip changed the config:\n%s", y)
	}
	// A config printed before the section was typed keeps every key of an
	// entry with empty values: they read as the defaults.
	old := mustParse(t, minimal+`reward:
  - name: ""
    type: math_answer
    weight: 1.0
    params: {}
    fallback: exclude
    timeout: ""
    shaping: {}
`)
	if o := old.Reward.Functions[0]; o.Timeout != 0 || o.Shaping != nil || o.Params != nil || o.Fallback != "exclude" {
		t.Errorf("old form %+v", o)
	}
	if h, b := Diff(old, mustParse(t, minimal+"reward:\n  - type: math_answer\n")); len(h)+len(b) != 0 {
		t.Errorf("old and new forms differ: %v %v", h, b)
	}
	// --set reaches into an unset shaping, and reward.N is reward.functions.N.
	if err := old.Set("reward.0.shaping.scale=3"); err != nil {
		t.Fatal(err)
	}
	if sh := old.Reward.Functions[0].Shaping; sh == nil || sh.Scale != 3 || sh.Type != "sigmoid" {
		t.Errorf("--set shaping: %+v", sh)
	}
	for src, want := range map[string]string{
		"reward:\n  functions: [{type: a, wieght: 1}]\n": `x.yaml:2: unknown key "reward.functions.0.wieght" (did you mean "reward.functions.0.weight"?)`,
		"reward:\n  - {type: a, weight: heavy}\n":        `x.yaml:2: reward.functions.0.weight: want a number, got "heavy"`,
		"reward:\n  combin: sum\n":                       `x.yaml:2: unknown key "reward.combin" (did you mean "reward.combine"?)`,
	} {
		if _, err := Parse([]byte(src), "x.yaml"); err == nil || err.Error() != want {
			t.Errorf("%q: error %v, want %s", src, err, want)
		}
	}
	bad := mustParse(t, minimal+"reward:\n  combine: avg\n  functions:\n    - {type: a, fallback: skip}\n")
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `x.yaml:4: reward.combine: must be one of sum, min, got "avg"`) ||
		!strings.Contains(err.Error(), `x.yaml:6: reward.functions.0.fallback: want exclude or a finite number, got "skip"`) {
		t.Errorf("validation: %v", err)
	}
}
