// Package train runs rltrain's training loop: an optional supervised
// warm-up, then RL steps (rollouts → rewards → advantages → clipped-ratio or
// DRPO updates), with periodic evaluation, metrics, and checkpoints that
// resume bit for bit on the CPU backend.
package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rltrain/rltrain/data"
	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/model/tokenizer"
	"github.com/rltrain/rltrain/optim"
	"github.com/rltrain/rltrain/reward"
	"github.com/rltrain/rltrain/rollout"
	"github.com/rltrain/rltrain/train/config"
)

// NewBackend returns the compute backend a config selects: cpu, cuda (a
// GPU, through the NVIDIA driver loaded at run time) or cuda-emu (the CUDA kernels
// run on the CPU by the emulator, for testing).
func NewBackend(c config.Backend) (kernels.Backend, error) {
	prec, err := cuda.ParsePrecision(c.Precision)
	if err != nil {
		return nil, fmt.Errorf("backend.precision: %w", err)
	}
	var spec string
	switch c.Type {
	case "", "cpu":
		if prec != cuda.PrecisionFP32 || c.TF32 {
			return nil, fmt.Errorf("backend.precision %s and backend.tf32 %v: the CPU backend computes in fp32 only", prec, c.TF32)
		}
		return cpu.New(c.Threads), nil
	case "cuda":
		spec = strconv.Itoa(c.Device)
	case "cuda-emu":
		spec = "emu"
	default:
		return nil, fmt.Errorf("backend %q is not supported (cpu, cuda or cuda-emu)", c.Type)
	}
	be, err := cuda.Open(spec)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", c.Type, err)
	}
	if err := be.SetPrecision(prec); err != nil {
		be.Close()
		return nil, err
	}
	if c.TF32 {
		if err := be.SetTF32(true); err != nil {
			be.Close()
			return nil, fmt.Errorf("backend.tf32: %w", err)
		}
	}
	return be, nil
}

// Policy is a model with its tokenizer.
type Policy struct {
	Model *model.Model
	Tok   *tokenizer.Tokenizer
	// EOS lists the ids that end a completion.
	EOS []int32
	// The tokenizer's files as loaded and what a saved model carries over
	// from its source (hffiles.go).
	files TokenizerFiles
}

// LoadPolicy loads or builds the policy a config describes. For a
// from-scratch model the tokenizer is the built-in character tokenizer
// over the task's alphabet (or printable ASCII).
func LoadPolicy(c *config.Config, be kernels.Backend, task data.Task) (*Policy, error) {
	var files TokenizerFiles
	var err error
	if c.Model.Path != "" {
		// Checked first: a missing model directory is a model.path error,
		// not a missing tokenizer.
		if _, err := os.Stat(c.Model.Path); err != nil {
			return nil, fmt.Errorf("model.path: %w", err)
		}
	}
	tokKey, tokFile := "model.tokenizer", "the built-in character tokenizer"
	switch {
	case c.Model.Tokenizer != "":
		tokFile = tokenizerFile(c.Model.Tokenizer)
		files, err = ReadTokenizerFiles(c.Model.Tokenizer)
	case c.Model.Path != "":
		tokKey, tokFile = "model.path", tokenizerFile(c.Model.Path)
		files, err = ReadTokenizerFiles(c.Model.Path)
	default:
		files.Tokenizer, files.Config, err = tokenizer.CharTokenizerJSON(charOptions(task))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tokKey, err)
	}
	tok, err := tokenizer.FromJSON(files.Tokenizer, files.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", tokKey, tokFile, err)
	}
	if err := ApplyChatOptions(tok, c.Model.ChatTemplate, c.Model.ChatTemplateKwargs); err != nil {
		return nil, fmt.Errorf("model.chat_template: %w", err)
	}
	var m *model.Model
	if c.Model.Path != "" {
		if err := NotAnAdapter(c.Model.Path); err != nil {
			return nil, fmt.Errorf("model.path: %w", err)
		}
		m, err = model.Load(c.Model.Path, be)
		if err != nil {
			return nil, fmt.Errorf("model.path: %w", err)
		}
		if name, i, v, bad := m.NonFinite(); bad {
			return nil, fmt.Errorf("model.path: %s: tensor %q holds %v at index %d; training needs finite weights", c.Model.Path, name, v, i)
		}
		if m.Cfg.Vocab < tok.VocabSize() {
			return nil, fmt.Errorf("model.path: the model's vocabulary (%d) is smaller than its tokenizer's (%d)", m.Cfg.Vocab, tok.VocabSize())
		}
	} else {
		m, err = initModel(c.Model.Init, tok, be, uint64(c.Train.Seed))
		if err != nil {
			return nil, err
		}
	}
	if err := attachAdapter(c, m); err != nil {
		return nil, err
	}
	if c.Model.Path != "" {
		if files.GenerationConfig, err = readGenerationConfig(c.Model.Path); err != nil {
			return nil, fmt.Errorf("model.path: %w", err)
		}
	}
	p := &Policy{Model: m, Tok: tok, files: files}
	seen := map[int32]bool{}
	for _, id := range append(append([]int(nil), m.Cfg.EOS...), tok.EOS()) {
		if id >= 0 && !seen[int32(id)] {
			seen[int32(id)] = true
			p.EOS = append(p.EOS, int32(id))
		}
	}
	if len(p.EOS) == 0 {
		return nil, errors.New("model: neither the model config nor the tokenizer names an end-of-sequence token")
	}
	return p, nil
}

// tokenizerFile is the tokenizer.json that ReadTokenizerFiles reads for
// path.
func tokenizerFile(path string) string {
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		return path
	}
	return filepath.Join(path, "tokenizer.json")
}

// charOptions is the tokenizer of a from-scratch model: the task's
// characters (or printable ASCII) plus ChatML markers, EOS <|endoftext|>.
func charOptions(task data.Task) tokenizer.CharOptions {
	opts := tokenizer.DefaultCharOptions()
	if task != nil {
		opts.Chars = task.Alphabet()
	}
	return opts
}

func initModel(in config.Init, tok *tokenizer.Tokenizer, be kernels.Backend, seed uint64) (*model.Model, error) {
	if in.Heads <= 0 || in.Hidden%in.Heads != 0 {
		return nil, fmt.Errorf("model.init: hidden (%d) must be a multiple of heads (%d)", in.Hidden, in.Heads)
	}
	cfg := model.Config{
		Architecture: "LlamaForCausalLM", ModelType: "llama",
		Vocab: tok.VocabSize(), Hidden: in.Hidden, Layers: in.Layers, Heads: in.Heads, KVHeads: in.KVHeads,
		HeadDim: in.Hidden / in.Heads, FFN: in.FFN, RMSEps: in.NormEps, RopeTheta: in.RopeTheta,
		MaxPositions: in.MaxSeq, TieEmbeddings: in.TieEmbeddings, BOS: tok.BOS(),
	}
	if eos := tok.EOS(); eos >= 0 {
		cfg.EOS = []int{eos}
	}
	m, err := model.New(cfg, be)
	if err != nil {
		return nil, fmt.Errorf("model.init: %w", err)
	}
	m.InitRandom(seed, in.InitStd)
	return m, nil
}

// optimizer is the optim section with the learning rate and warm-up of
// the phase (RL, or the supervised warm-up's sft.lr and sft.warmup_steps).
func optimizer(o optim.Optim, lr float64, warmup int) optim.Optim {
	o.LR, o.WarmupSteps = lr, warmup
	return o
}

// NotAnAdapter reports a LoRA adapter directory given where a whole model
// is needed, saying what to give instead.
func NotAnAdapter(dir string) error {
	if !model.IsAdapterDir(dir) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		return nil // a model directory that also carries an adapter
	}
	base := ""
	if lc, err := model.ReadLoRAConfig(dir); err == nil && lc.BaseModel != "" {
		base = fmt.Sprintf(" (its base_model_name_or_path is %q)", lc.BaseModel)
	}
	return fmt.Errorf("%s is a LoRA adapter, not a model: give its base model%s as the model and this directory as the adapter (model.adapter, or --adapter)", dir, base)
}

// attachAdapter gives the policy the LoRA adapter the config asks for: the
// one in model.adapter, or a new one (PEFT's initialisation, seeded by
// train.seed) of model.lora's shape. The base weights are frozen from then
// on.
func attachAdapter(c *config.Config, m *model.Model) error {
	lc := c.Model.LoRA
	var a *model.Adapter
	var err error
	switch {
	case c.Model.Adapter != "":
		if a, err = model.LoadAdapter(c.Model.Adapter, m); err != nil {
			return fmt.Errorf("model.adapter: %w", err)
		}
		got := a.Cfg
		if lc.R > 0 && (lc.R != got.R || lc.Alpha != got.Alpha || lc.UseRSLoRA != got.RSLoRA) {
			return fmt.Errorf("model.lora (r %d, lora_alpha %g, use_rslora %v) disagrees with model.adapter %s (r %d, lora_alpha %g, use_rslora %v): set model.lora.r to 0 to train the adapter as it is",
				lc.R, lc.Alpha, lc.UseRSLoRA, c.Model.Adapter, got.R, got.Alpha, got.RSLoRA)
		}
	case lc.R > 0:
		if a, err = model.NewAdapter(m.Cfg, lc.Spec(c.Model.Path), m.Backend()); err != nil {
			return fmt.Errorf("model.lora: %w", err)
		}
		a.InitPEFT(uint64(c.Train.Seed))
	default:
		return nil
	}
	a.Cfg.BaseModel = c.Model.Path
	return m.Attach(a)
}

// modelParams lists a model's trainable tensors as optimizer parameters,
// stored back to back in one parameter and one gradient buffer: every
// weight, or only the attached LoRA adapter's A and B matrices.
func modelParams(m *model.Model) optim.Flat {
	if a := m.Adapter(); a != nil {
		a.EnableGrads()
		f := optim.Flat{Values: a.Params, Grads: a.Grads}
		for _, t := range a.Tensors() {
			f.Params = append(f.Params, optim.Param{Name: t.Name, Shape: t.Shape, Value: a.Backend().View(a.Params, t.Offset, t.Size()), Grad: a.Backend().View(a.Grads, t.Offset, t.Size())})
		}
		return f
	}
	m.EnableGrads()
	be := m.Backend()
	f := optim.Flat{Values: m.Params, Grads: m.Grads}
	for _, t := range m.Tensors() {
		f.Params = append(f.Params, optim.Param{Name: t.Name, Shape: t.Shape, Value: be.View(m.Params, t.Offset, t.Size()), Grad: be.View(m.Grads, t.Offset, t.Size())})
	}
	return f
}

// rewardSet builds the reward functions; with none configured, a built-in
// task's own verifier is the reward.
func rewardSet(c *config.Config, task data.Task, logf func(string), opts ...reward.Option) (*reward.Set, error) {
	rc := c.Reward
	if len(rc.Functions) == 0 {
		if task == nil {
			return nil, errors.New("reward: no reward functions configured (a JSONL dataset needs at least one)")
		}
		// The task's own verifier, the function its eval accuracy uses.
		typ, params := task.Reward()
		spec := reward.Spec{Name: task.Name(), Type: typ}
		if params != nil {
			spec.Params = params
		}
		rc.Functions = []reward.Spec{spec}
	}
	return reward.New(rc, append([]reward.Option{reward.WithLogger(logf)}, opts...)...)
}

// rolloutConfig is the engine's configuration: the rollout section, seeded
// by train.seed, ending completions at the policy's EOS ids.
func rolloutConfig(c *config.Config, eos []int32) rollout.Config {
	r := c.Rollout.Config
	r.Seed = uint64(c.Train.Seed)
	r.StopTokenIDs = toInt(eos)
	return r
}

func outDirs(c *config.Config) (out, ckpt string) {
	out = c.Train.OutDir
	ckpt = c.Checkpoint.Dir
	if ckpt == "" {
		ckpt = filepath.Join(out, "checkpoints")
	}
	return out, ckpt
}

func seconds(d time.Duration) float64 { return d.Seconds() }
