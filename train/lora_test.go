package train

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/internal/dist"
	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/model/safetensors"
	"github.com/rltrain/rltrain/optim"
	"github.com/rltrain/rltrain/train/config"
)

// loraBase is a small pretrained base model: tinyYAML's warm-up alone,
// saved as a checkpoint (a Hugging Face model directory).
func loraBase(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	runConfig(t, parseConfig(t, tinyYAML(dir), "sft.steps=20"), Options{SFTOnly: true})
	return filepath.Join(dir, "checkpoints", "sft-20")
}

// loraSets turns tinyYAML into a LoRA run on the base model, with a KL
// penalty to the reference (the base itself).
func loraSets(base string) []string {
	return []string{"model.path=" + base, "model.lora.r=4", "model.lora.lora_alpha=8", "sft.steps=0",
		"optim.lr=1e-2", "algorithm.beta=0.04"}
}

// TestLoRAResumeIsBitExact: a LoRA run of 8 steps, and the same run
// SIGKILLed after its step-4 checkpoint and resumed, end with byte-identical
// adapters and identical metrics; the checkpoints hold the adapter as PEFT
// writes it (no model.safetensors, no reference copy), the optimizer state
// covers the adapter alone, and the base model's file is untouched.
func TestLoRAResumeIsBitExact(t *testing.T) {
	base := loraBase(t)
	baseBytes, err := os.ReadFile(filepath.Join(base, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(t.TempDir(), "full")
	a := parseConfig(t, tinyYAML(full), loraSets(base)...)
	var log bytes.Buffer
	tr, err := New(a, Options{Console: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	ad := tr.Policy().Model.Adapter()
	if ad == nil || ad.NumParams() == 0 {
		t.Fatal("the policy has no adapter")
	}
	nMoments := 0
	for _, p := range tr.opt.Params() {
		nMoments += p.Value.Len()
		if !strings.Contains(p.Name, ".lora_") {
			t.Errorf("the optimizer trains %s", p.Name)
		}
	}
	if nMoments != ad.NumParams() {
		t.Errorf("the optimizer holds moments for %d floats, the adapter has %d", nMoments, ad.NumParams())
	}
	if tr.ref == nil || tr.ref.Adapter() != nil {
		t.Fatal("no reference, or the reference has the adapter")
	}
	if _, err := tr.Run(t.Context()); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if tr.Policy().Model.Grads != nil {
		t.Error("the frozen base got a gradient buffer")
	}
	tr.Close()

	part := filepath.Join(t.TempDir(), "part")
	b := parseConfig(t, tinyYAML(part), loraSets(base)...)
	killAfter(t, b, 4)
	if _, err := os.Stat(filepath.Join(part, "checkpoints", "step-8")); err == nil {
		t.Fatal("the killed run had already finished")
	}
	log.Reset()
	runConfig(t, b, Options{Resume: "latest", Console: &log})
	if !strings.Contains(log.String(), "step-4 (rl step 4)") {
		t.Fatalf("resume did not start at step 4:\n%s", log.String())
	}

	ck := filepath.Join(full, "checkpoints", "step-8")
	wa, err := os.ReadFile(filepath.Join(ck, model.AdapterWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	wb, err := os.ReadFile(filepath.Join(part, "checkpoints", "step-8", model.AdapterWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wa, wb) {
		t.Error("final adapters differ between the uninterrupted and the resumed run")
	}
	ma := comparableMetrics(t, filepath.Join(full, "metrics.jsonl"))
	mb := comparableMetrics(t, filepath.Join(part, "metrics.jsonl"))
	if len(ma) != len(mb) || len(ma) < 8 {
		t.Fatalf("metrics lines: %d and %d, want the 8 steps", len(ma), len(mb))
	}
	for i := range ma {
		if !mapsEqual(ma[i], mb[i]) {
			t.Errorf("step %d metrics differ:\n full    %v\n resumed %v", i+1, ma[i], mb[i])
		}
	}
	if ma[len(ma)-1]["kl"] == 0 {
		t.Error("the KL to the base model stayed 0: the adapter never moved the policy")
	}

	for _, f := range []string{model.AdapterConfigFile, model.AdapterWeightsFile, "tokenizer.json", optimizerFile, stateFile} {
		if _, err := os.Stat(filepath.Join(ck, f)); err != nil {
			t.Errorf("checkpoint lacks %s", f)
		}
	}
	for _, f := range []string{"model.safetensors", "config.json", referenceFile, masterFile} {
		if _, err := os.Stat(filepath.Join(ck, f)); err == nil {
			t.Errorf("a LoRA checkpoint holds %s", f)
		}
	}
	var cfg map[string]any
	js, _ := os.ReadFile(filepath.Join(ck, model.AdapterConfigFile))
	if err := json.Unmarshal(js, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["peft_type"] != "LORA" || cfg["task_type"] != "CAUSAL_LM" || cfg["r"] != 4.0 || cfg["lora_alpha"] != 8.0 ||
		cfg["base_model_name_or_path"] != base || len(cfg["target_modules"].([]any)) != 7 {
		t.Errorf("adapter_config.json: %s", js)
	}
	ts, _, err := safetensors.ReadFile(filepath.Join(ck, model.AdapterWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	q, ok := ts["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
	if !ok || len(q.Shape) != 2 || q.Shape[0] != 4 || q.Shape[1] != 32 {
		t.Errorf("q_proj's lora_A: %v", q)
	}
	if after, _ := os.ReadFile(filepath.Join(base, "model.safetensors")); !bytes.Equal(after, baseBytes) {
		t.Error("the base model's weights changed")
	}

	// The trained adapter starts another run (model.adapter) and is
	// refused when model.lora disagrees with it.
	next := parseConfig(t, tinyYAML(t.TempDir()), "model.path="+base, "model.adapter="+ck, "sft.steps=0", "train.steps=1")
	var log2 bytes.Buffer
	tr2, err := New(next, Options{Console: &log2})
	if err != nil {
		t.Fatalf("model.adapter: %v", err)
	}
	got := tr2.Policy().Model.Adapter().HostTensors(false)
	for _, g := range got {
		if want := ts[g.Name]; want == nil || !sameFloats(want.Data, g.Data) {
			t.Errorf("model.adapter: %s differs from the file", g.Name)
		}
	}
	tr2.Close()
	bad := parseConfig(t, tinyYAML(t.TempDir()), "model.path="+base, "model.adapter="+ck, "model.lora.r=8", "sft.steps=0")
	if _, err := New(bad, Options{Console: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "model.lora") {
		t.Errorf("model.lora.r 8 with a rank-4 model.adapter: %v", err)
	}
	asModel := parseConfig(t, tinyYAML(t.TempDir()), "model.path="+ck, "sft.steps=0")
	if _, err := New(asModel, Options{Console: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "is a LoRA adapter") {
		t.Errorf("an adapter as model.path: %v", err)
	}
}

func sameFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLoRAConfigErrors: model.lora without a base model, with dropout, or
// with a target that is not a projection is refused naming the option.
func TestLoRAConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string
	}{
		{[]string{"model.lora.r=4"}, "model.lora.r"},
		{[]string{"model.path=x", "model.lora.r=4", "model.lora.lora_dropout=0.05"}, "model.lora.lora_dropout"},
		{[]string{"model.path=x", "model.lora.r=4", "model.lora.target_modules=[q_proj, lm_head]"}, `"lm_head" is not a projection`},
		{[]string{"model.path=x", "model.lora.r=4", "model.lora.target_modules=[all-linear, q_proj]"}, "all-linear stands alone"},
		{[]string{"model.adapter=x"}, "model.adapter"},
	} {
		_, err := loadConfigErr(t, tinyYAML(t.TempDir()), tc.sets...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.sets, err, tc.want)
		}
	}
	c := parseConfig(t, tinyYAML(t.TempDir()), "model.path=x", "model.lora.r=4", "model.lora.target_modules=q_proj")
	if got := c.Model.LoRA.TargetModules; len(got) != 1 || got[0] != "q_proj" {
		t.Errorf("target_modules from a single name: %v", got)
	}
}

func loadConfigErr(t *testing.T, yml string, sets ...string) (*config.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	return config.Load(path, sets)
}

// TestLoRARolloutLogprobs: a LoRA run's sampler, decoding through the
// adapter unmerged, gives the trainer's log-probs: within 1e-5 (the
// rollout tests' tolerance) with the default recomputation, and exactly
// (rollout/logp_diff_max = 0) with algorithm.old_logprobs: rollout, where
// the trainer's forward pass computes every row as decoding does — with
// the adapter's products too.
func TestLoRARolloutLogprobs(t *testing.T) {
	base := loraBase(t)
	invariant := cpu.New(1).SetRowInvariant(false)
	for _, tc := range []struct {
		name  string
		sets  []string
		exact bool
	}{
		{"recompute", []string{"train.mini_batch_size=2"}, false},
		{"rollout", []string{"algorithm.old_logprobs=rollout", "train.mini_batch_size=2", "rollout.temperature=0.7"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.exact && !invariant {
				t.Skip("no row-invariant products on this CPU (no AVX-512)")
			}
			dir := t.TempDir()
			sets := append(loraSets(base), "train.steps=3", "checkpoint.every=0", "rollout.batch_size=4", "rollout.group_size=2")
			runConfig(t, parseConfig(t, tinyYAML(dir), append(sets, tc.sets...)...), Options{})
			steps := stepMetrics(t, dir)
			if len(steps) != 3 {
				t.Fatalf("%d steps logged", len(steps))
			}
			for _, m := range steps {
				d, ok := m["rollout/logp_diff_max"]
				if !ok || d > 1e-5 || (tc.exact && d != 0) {
					t.Errorf("step %v: rollout/logp_diff_max %v (logged %v)", m["step"], d, ok)
				}
			}
		})
	}
}

// TestLoRADataParallel: a LoRA run with two ranks equals one process: the
// same step-1 metrics (1e-6 relative, the data-parallel tests' bound) and
// adapters after 10 steps within weightBound. Only the adapter's gradient
// buffer is summed across ranks.
func TestLoRADataParallel(t *testing.T) {
	if _, err := dist.Mpirun(); err != nil {
		t.Skip(err.Error() + "; the data-parallel tests need it")
	}
	dir := t.TempDir()
	base, one, two := filepath.Join(dir, "base"), filepath.Join(dir, "one"), filepath.Join(dir, "two")
	runConfig(t, dpConfig(t, "grpo", base), Options{SFTOnly: true})
	sets := []string{"model.path=" + filepath.Join(base, "checkpoints", "sft-60"), "model.lora.r=8", "model.lora.lora_alpha=16",
		"sft.steps=0", "optim.lr=1e-3", "algorithm.beta=0.02"}
	runConfig(t, dpConfig(t, "grpo", one, sets...), Options{})
	runRanks(t, 2, dpConfig(t, "grpo", two, sets...), false, "")
	worst, key := compareMetrics(t, "step 1", metricLines(t, one)[1], metricLines(t, two)[1], nil)
	read := func(out string) map[string]*safetensors.Tensor {
		ts, _, err := safetensors.ReadFile(filepath.Join(out, "checkpoints", "step-10", model.AdapterWeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	a, b := read(one), read(two)
	d, moved := 0.0, 0.0
	for name, x := range a {
		y := b[name]
		if y == nil {
			t.Fatalf("%s missing from the two ranks' adapter", name)
		}
		for i := range x.Data {
			d = max(d, math.Abs(float64(x.Data[i]-y.Data[i])))
			if strings.Contains(name, "lora_B") {
				moved = max(moved, math.Abs(float64(x.Data[i])))
			}
		}
	}
	if d > weightBound || moved == 0 {
		t.Errorf("adapters after 10 steps differ by %.3g (bound %g); largest B entry %.3g", d, weightBound, moved)
	}
	t.Logf("step-1 metrics worst %.3g relative (%s); adapters after 10 steps within %.3g", worst, key, d)
}

// TestLoRAWithValueHead: PPO's critic (a value head on the final hidden
// states) trains beside a LoRA adapter: the optimizer holds both, and the
// checkpoint has the value head.
func TestLoRAWithValueHead(t *testing.T) {
	base := loraBase(t)
	dir := t.TempDir()
	sets := append(loraSets(base), "algorithm.advantage=gae", "train.steps=2", "checkpoint.every=0", "train.ppo_epochs=2", "train.mini_batch_size=4")
	c := parseConfig(t, tinyYAML(dir), sets...)
	var log bytes.Buffer
	tr, err := New(c, Options{Console: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	names := map[string]bool{}
	for _, p := range tr.opt.Params() {
		names[p.Name] = true
	}
	if !names[model.ValueWeightName] || len(names) != len(tr.Policy().Model.Adapter().Tensors())+2 {
		t.Errorf("optimizer parameters: %d (value head %v)", len(names), names[model.ValueWeightName])
	}
	if _, err := tr.Run(t.Context()); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoints", "step-2", valueHeadFile)); err != nil {
		t.Error(err)
	}
}

// TestLoRAWeightDecay: the adapter's A and B are matrices, so AdamW decays
// them like any other matrix (PEFT under Hugging Face's Trainer does too):
// with zero gradients one step scales every adapter value by 1 − lr·wd.
func TestLoRAWeightDecay(t *testing.T) {
	cfg := model.Config{Architecture: "LlamaForCausalLM", ModelType: "llama", Vocab: 31, Hidden: 16, Layers: 2,
		Heads: 2, KVHeads: 1, HeadDim: 8, FFN: 24, RMSEps: 1e-5, RopeTheta: 10000, MaxPositions: 64, BOS: 1, EOS: []int{2}}
	be := cpu.New(1)
	m, err := model.New(cfg, be)
	if err != nil {
		t.Fatal(err)
	}
	a, err := model.NewAdapter(cfg, model.LoRAConfig{R: 2, Alpha: 4, Targets: model.AllLinear}, be)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Attach(a); err != nil {
		t.Fatal(err)
	}
	f := modelParams(m)
	host := make([]float32, a.NumParams())
	for i := range host {
		host[i] = float32(i%7) - 3
	}
	be.Upload(a.Params, host)
	for _, p := range f.Params {
		if len(p.Shape) != 2 {
			t.Fatalf("adapter tensor %s has shape %v", p.Name, p.Shape)
		}
	}
	oc := optim.DefaultOptim()
	oc.LR, oc.WeightDecay, oc.MaxGradNorm, oc.WarmupSteps = 0.1, 0.1, 0, 0
	o, err := optim.NewFlatAdamW(be, oc, f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Update(10); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, a.NumParams())
	be.Download(got, a.Params)
	for i, v := range got {
		if want := host[i] * float32(1-0.1*0.1); v != want {
			t.Fatalf("adapter value %d: %v after a step with zero gradients, want %v (decayed)", i, v, want)
		}
	}
}
