package model

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/model/safetensors"
)

// loraCases are the adapters checked against the PyTorch reference: every
// projection type of Llama, Qwen2 (q/k/v bias) and Qwen3 (q/k norm), with
// ranks that divide neither the hidden size (64) nor the other widths,
// rsLoRA, and a partial adapter (some projections of one layer, so the
// fused q/k/v and gate/up groups have gaps).
func loraCases() map[string]struct {
	arch string
	lc   LoRAConfig
} {
	return map[string]struct {
		arch string
		lc   LoRAConfig
	}{
		"llama":         {"llama", LoRAConfig{R: 5, Alpha: 7, Targets: AllLinear}},
		"qwen2_rslora":  {"qwen2", LoRAConfig{R: 5, Alpha: 4, RSLoRA: true, Targets: AllLinear}},
		"qwen3":         {"qwen3", LoRAConfig{R: 7, Alpha: 12, Targets: Targets{List: []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}}}},
		"llama_partial": {"llama", LoRAConfig{R: 3, Alpha: 5, Targets: Targets{List: []string{"q_proj", "v_proj", "up_proj", "down_proj"}}, Layers: []int{1}}},
	}
}

// randomAdapter builds an adapter for m with A and B both drawn from
// N(0, 0.1²) (a fresh adapter has B = 0, under which A gets no gradient).
func randomAdapter(t testing.TB, m *Model, lc LoRAConfig, seed uint64) *Adapter {
	t.Helper()
	a, err := NewAdapter(m.Cfg, lc, m.be)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 17))
	host := make([]float32, a.NumParams())
	for i := range host {
		host[i] = float32(r.NormFloat64() * 0.1)
	}
	a.be.Upload(a.Params, host)
	return a
}

// refBatch is a right-padded batch of random ids.
func refBatch(vocab int, seed uint64) (Batch, [][]int32) {
	r := rand.New(rand.NewPCG(seed, 2))
	batch := Batch{B: 3, T: 11, Lens: []int{11, 7, 4}}
	ids := make([][]int32, batch.B)
	for i := range ids {
		ids[i] = make([]int32, batch.T)
		for j := range ids[i] {
			if j < batch.Lens[i] {
				ids[i][j] = int32(r.IntN(vocab))
			}
		}
		batch.IDs = append(batch.IDs, ids[i]...)
	}
	return batch, ids
}

// runReference runs scripts/torch_ref.py forward --grads on a saved model
// (and adapter, when not empty).
func runReference(t *testing.T, dir, modelDir, adapterDir string, batch Batch, ids [][]int32) map[string]*safetensors.Tensor {
	t.Helper()
	in, _ := json.Marshal(map[string]any{"ids": ids, "lens": batch.Lens})
	inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.safetensors")
	if err := os.WriteFile(inPath, in, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(repoRoot(t), "scripts", "torch_ref.py"), "forward",
		"--model", modelDir, "--input", inPath, "--out", outPath, "--grads"}
	if adapterDir != "" {
		args = append(args, "--adapter", adapterDir)
	}
	cmd := exec.Command(python, args...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference: %v\n%s", err, out)
	}
	ref, _, err := safetensors.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// meanNLL returns the mean next-token loss of the last Forward on ws and
// the dL/dℓ of each row.
func meanNLL(t *testing.T, m *Model, ws *Workspace, batch Batch) (float64, Output, []float32) {
	t.Helper()
	targets := NextTokenTargets(batch)
	out := Output{Targets: targets, InvTemp: 1}
	logp, _, err := m.LogProbs(ws, out)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, tg := range targets {
		if tg >= 0 {
			count++
		}
	}
	var loss float64
	dlogp := make([]float32, len(logp))
	for i, tg := range targets {
		if tg >= 0 {
			loss -= float64(logp[i])
			dlogp[i] = -1 / float32(count)
		}
	}
	return loss / float64(count), out, dlogp
}

// TestLoRAMatchesPyTorch: with an adapter attached, the logits, the loss
// and the gradient of every A and B match scripts/torch_ref.py's
// nn.Linear + scaling·lora_B(lora_A(x)) within refTol (1e-4 relative, fp32);
// the base weights get no gradient buffer at all.
func TestLoRAMatchesPyTorch(t *testing.T) {
	needTorch(t)
	for name, tc := range loraCases() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			m := randomModel(t, testConfigs()[tc.arch], 7)
			if err := m.Save(filepath.Join(dir, "m"), safetensors.F32); err != nil {
				t.Fatal(err)
			}
			a := randomAdapter(t, m, tc.lc, 3)
			if err := a.Save(filepath.Join(dir, "a")); err != nil {
				t.Fatal(err)
			}
			if err := m.Attach(a); err != nil {
				t.Fatal(err)
			}
			batch, ids := refBatch(m.Cfg.Vocab, 1)
			ref := runReference(t, dir, filepath.Join(dir, "m"), filepath.Join(dir, "a"), batch, ids)

			ws := m.NewWorkspace()
			if _, err := m.Forward(ws, batch); err != nil {
				t.Fatal(err)
			}
			all := logits(m, ws)
			for b := 0; b < batch.B; b++ {
				for j := batch.Lens[b]; j < batch.T; j++ {
					row := (b*batch.T + j) * m.Cfg.Vocab
					clear(all[row : row+m.Cfg.Vocab])
					clear(ref["logits"].Data[row : row+m.Cfg.Vocab])
				}
			}
			if e := maxRel(all, ref["logits"].Data); e > refTol {
				t.Errorf("logits: relative error %.3g > %g", e, refTol)
			}
			loss, out, dlogp := meanNLL(t, m, ws, batch)
			if want := float64(ref["loss"].Data[0]); math.Abs(loss-want) > refTol*math.Abs(want) {
				t.Errorf("loss %.7g, reference %.7g", loss, want)
			}
			lossGrad(t, m, ws, out, dlogp)
			if m.Grads != nil {
				t.Errorf("the frozen base model got a gradient buffer")
			}
			n := 0
			for _, g := range a.HostTensors(true) {
				want, ok := ref["grad."+g.Name]
				if !ok {
					t.Errorf("reference has no gradient for %s", g.Name)
					continue
				}
				n++
				if e := maxRel(g.Data, want.Data); e > refTol {
					t.Errorf("grad %s: relative error %.3g > %g", g.Name, e, refTol)
				}
			}
			refGrads := 0
			for k := range ref {
				if len(k) > 5 && k[:5] == "grad." {
					refGrads++
				}
			}
			if n != refGrads || n == 0 {
				t.Errorf("compared %d adapter gradients; the reference has %d", n, refGrads)
			}
		})
	}
}

// TestLoRAStartsAtBase: a PEFT-initialised adapter (B = 0) leaves the
// model's outputs bit-identical to the base's, its A is Kaiming-uniform
// within ±1/√in, and the base's own forward, backward and gradients are
// bit-identical with and without an adapter ever having been attached.
func TestLoRAStartsAtBase(t *testing.T) {
	m := randomModel(t, testConfigs()["qwen3"], 4)
	batch, _ := refBatch(m.Cfg.Vocab, 9)
	base := func() ([]float32, []float32) {
		ws := m.NewWorkspace()
		if _, err := m.Forward(ws, batch); err != nil {
			t.Fatal(err)
		}
		lg := logits(m, ws)
		_, out, dlogp := meanNLL(t, m, ws, batch)
		m.ZeroGrads()
		lossGrad(t, m, ws, out, dlogp)
		return lg, download(m.be, m.Grads)
	}
	lg0, g0 := base()

	a, err := NewAdapter(m.Cfg, LoRAConfig{R: 4, Alpha: 8, Targets: AllLinear}, m.be)
	if err != nil {
		t.Fatal(err)
	}
	a.InitPEFT(11)
	for _, ts := range a.HostTensors(false) {
		bound := float32(1 / math.Sqrt(float64(ts.Shape[len(ts.Shape)-1])))
		isA := filepath.Ext(filepath.Base(ts.Name[:len(ts.Name)-len(".weight")])) == ".lora_A"
		var maxAbs float32
		for _, v := range ts.Data {
			maxAbs = max(maxAbs, float32(math.Abs(float64(v))))
		}
		if isA && (maxAbs > bound || maxAbs < bound/2) {
			t.Errorf("%s: max |A| %g, want within the Kaiming-uniform bound %g", ts.Name, maxAbs, bound)
		}
		if !isA && maxAbs != 0 {
			t.Errorf("%s: B is not zero", ts.Name)
		}
	}
	mv := *m // a second handle on the same weights, with the adapter
	mv.Grads, mv.dw = nil, weights{}
	if err := mv.Attach(a); err != nil {
		t.Fatal(err)
	}
	ws := mv.NewWorkspace()
	if _, err := mv.Forward(ws, batch); err != nil {
		t.Fatal(err)
	}
	if lg := logits(&mv, ws); !sameBits(lg, lg0) {
		t.Errorf("B = 0: the adapted logits differ from the base's (max rel %.3g)", maxRel(lg, lg0))
	}
	lg1, g1 := base()
	if !sameBits(lg1, lg0) || !sameBits(g1, g0) {
		t.Errorf("the base model's logits or gradients changed after an adapter was used on its weights")
	}
	if b := mv.Base(); b.Adapter() != nil || !b.frozenBase() {
		t.Errorf("Base() keeps the adapter or is not frozen")
	}
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestLoRAMerge: MergeInto (W + s·B·A on each adapted projection) gives a
// plain model whose log-probs equal the adapted model's within 1e-5
// relative, and the adapter round-trips through Save and LoadAdapter bit
// for bit.
func TestLoRAMerge(t *testing.T) {
	for name, tc := range loraCases() {
		t.Run(name, func(t *testing.T) {
			m := randomModel(t, testConfigs()[tc.arch], 5)
			a := randomAdapter(t, m, tc.lc, 8)
			dir := t.TempDir()
			if err := a.Save(dir); err != nil {
				t.Fatal(err)
			}
			back, err := LoadAdapter(dir, m)
			if err != nil {
				t.Fatal(err)
			}
			if !sameBits(download(m.be, back.Params), download(m.be, a.Params)) {
				t.Fatal("the adapter changed through Save and LoadAdapter")
			}
			batch, _ := refBatch(m.Cfg.Vocab, 3)
			logp := func(m *Model) []float32 {
				ws := m.NewWorkspace()
				if _, err := m.Forward(ws, batch); err != nil {
					t.Fatal(err)
				}
				lp, _, err := m.LogProbs(ws, Output{Targets: NextTokenTargets(batch), InvTemp: 1})
				if err != nil {
					t.Fatal(err)
				}
				return lp
			}
			merged, err := New(m.Cfg, m.be)
			if err != nil {
				t.Fatal(err)
			}
			m.be.Copy(merged.Params, m.Params)
			if err := back.MergeInto(merged); err != nil {
				t.Fatal(err)
			}
			if err := m.Attach(back); err != nil {
				t.Fatal(err)
			}
			want, got := logp(m), logp(merged)
			if e := maxRel(got, want); e > 1e-5 {
				t.Errorf("merged log-probs: relative error %.3g > 1e-5", e)
			}
			if base := logp(m.Base()); maxRel(base, want) < 1e-3 {
				t.Errorf("the adapter hardly changes the log-probs (%.3g): the test would not see a missing merge", maxRel(base, want))
			}
		})
	}
}

// TestLoRABadAdapters: adapters rltrain cannot honour are refused with an
// error that names the option, module, tensor or shape at fault.
func TestLoRABadAdapters(t *testing.T) {
	m := randomModel(t, testConfigs()["qwen2"], 1)
	good := map[string]any{"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8,
		"target_modules": []string{"q_proj", "v_proj"}, "bias": "none", "use_dora": false, "modules_to_save": nil,
		"rank_pattern": map[string]any{}, "alpha_pattern": map[string]any{}, "init_lora_weights": "gaussian", "loftq_config": map[string]any{}}
	src := randomAdapter(t, m, LoRAConfig{R: 4, Alpha: 8, Targets: Targets{List: []string{"q_proj", "v_proj"}}}, 2)
	write := func(t *testing.T, cfg map[string]any, tensors []*safetensors.Tensor) string {
		dir := t.TempDir()
		js, _ := json.Marshal(cfg)
		if err := os.WriteFile(filepath.Join(dir, AdapterConfigFile), js, 0o644); err != nil {
			t.Fatal(err)
		}
		if tensors != nil {
			if err := safetensors.WriteFile(filepath.Join(dir, AdapterWeightsFile), tensors, nil, safetensors.F32); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	if _, err := LoadAdapter(write(t, good, src.HostTensors(false)), m); err != nil {
		t.Fatalf("a good adapter: %v", err)
	}
	wide := src.HostTensors(false)
	wide[0] = &safetensors.Tensor{Name: wide[0].Name, Shape: []int{4, 80}, Data: make([]float32, 320)}
	extra := append(src.HostTensors(false), &safetensors.Tensor{Name: "base_model.model.lm_head.weight", Shape: []int{2}, Data: []float32{1, 2}})
	nan := src.HostTensors(false)
	nan[1].Data[3] = float32(math.NaN())
	for name, tc := range map[string]struct {
		cfg     map[string]any
		tensors []*safetensors.Tensor
		want    []string
	}{
		"dora":            {with("use_dora", true), nil, []string{"use_dora", "DoRA"}},
		"bias":            {with("bias", "lora_only"), nil, []string{"bias", "lora_only"}},
		"modules_to_save": {with("modules_to_save", []string{"lm_head"}), nil, []string{"modules_to_save"}},
		"rank_pattern":    {with("rank_pattern", map[string]int{"q_proj": 8}), nil, []string{"rank_pattern"}},
		"prefix tuning":   {with("peft_type", "PREFIX_TUNING"), nil, []string{"peft_type", "PREFIX_TUNING"}},
		"seq cls":         {with("task_type", "SEQ_CLS"), nil, []string{"task_type", "SEQ_CLS"}},
		"no rank":         {with("r", nil), nil, []string{"r "}},
		"zero rank":       {with("r", 0), nil, []string{"r is 0"}},
		"absent module":   {with("target_modules", []string{"q_proj", "c_attn"}), src.HostTensors(false), []string{`"c_attn"`, "not a module"}},
		"lm_head":         {with("target_modules", []string{"q_proj", "lm_head"}), src.HostTensors(false), []string{"lm_head", "only the attention and MLP projections"}},
		"norm regex":      {with("target_modules", `.*layernorm`), src.HostTensors(false), []string{"input_layernorm", "not a linear layer"}},
		"bad regex":       {with("target_modules", `(?<=x)q_proj`), src.HostTensors(false), []string{"target_modules", "regular expression"}},
		"layer range":     {with("layers_to_transform", []int{5}), src.HostTensors(false), []string{"layers_to_transform", "layer 5"}},
		"shape":           {good, wide, []string{"lora_A.weight", "[4 80]", "[4 64]", "do not fit"}},
		"unused":          {good, extra, []string{"lm_head.weight", "not used"}},
		"missing weights": {good, nil, []string{AdapterWeightsFile}},
		"nan":             {good, nan, []string{"NaN", nan[1].Name}},
		"lower rank":      {with("r", 2), src.HostTensors(false), []string{"lora_A.weight", "[4 64]", "[2 64]"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadAdapter(write(t, tc.cfg, tc.tensors), m)
			if err == nil {
				t.Fatal("accepted")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
