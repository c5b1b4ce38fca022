package train

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/model/safetensors"
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
