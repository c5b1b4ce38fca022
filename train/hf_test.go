package train

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/model/safetensors"
	"github.com/rltrain/rltrain/model/tokenizer"
)

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// A checkpoint is a complete Hugging Face model: bf16 weights with
// checkpoint.dtype bf16 (and the fp32 master weights beside them, which
// resume uses: a resumed run ends with the uninterrupted run's weights),
// tokenizer_config.json whose chat_template is a Jinja string,
// generation_config.json.
func TestCheckpointIsCompleteHFModel(t *testing.T) {
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "checkpoint.dtype=bf16", "sft.steps=0", "train.steps=4", "checkpoint.every=2")
	runConfig(t, c, Options{})
	step2 := filepath.Join(out, "checkpoints", "step-2")
	h, err := safetensors.ReadHeaderFile(filepath.Join(step2, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range h.Tensors {
		if ti.DType != safetensors.BF16 {
			t.Fatalf("model.safetensors tensor %s is %s, want BF16", ti.Name, ti.DType)
		}
	}
	if cfg := readJSON(t, filepath.Join(step2, "config.json")); cfg["torch_dtype"] != "bfloat16" {
		t.Errorf("config.json torch_dtype %v", cfg["torch_dtype"])
	}
	mh, err := safetensors.ReadHeaderFile(filepath.Join(step2, masterFile))
	if err != nil || mh.Tensors[0].DType != safetensors.F32 {
		t.Fatalf("master weights: %v", err)
	}
	tc := readJSON(t, filepath.Join(step2, "tokenizer_config.json"))
	if src, _ := tc["chat_template"].(string); src != tokenizer.BuiltinChatJinja(tokenizer.ChatML) {
		t.Errorf("tokenizer_config.json chat_template %q is not the ChatML Jinja template", src)
	}
	gen := readJSON(t, filepath.Join(step2, "generation_config.json"))
	if gen["eos_token_id"] == nil || gen["do_sample"] != true || gen["temperature"] != 1.0 {
		t.Errorf("generation_config.json %v", gen)
	}
	// The saved model loads as a model (from the bf16 weights).
	if _, err := LoadPolicy(parseConfig(t, tinyYAML(t.TempDir()), "model.path="+step2), cpu.New(1), nil); err != nil {
		t.Fatalf("load the checkpoint as a model: %v", err)
	}

	out2 := t.TempDir()
	copyDir(t, filepath.Join(out, "checkpoints"), filepath.Join(out2, "checkpoints"))
	os.RemoveAll(filepath.Join(out2, "checkpoints", "step-4"))
	metricsRaw, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out2, "metrics.jsonl"), metricsRaw, 0o644); err != nil {
		t.Fatal(err)
	}
	c2 := parseConfig(t, tinyYAML(out2), "checkpoint.dtype=bf16", "sft.steps=0", "train.steps=4", "checkpoint.every=2")
	runConfig(t, c2, Options{Resume: "latest"})
	a, _ := os.ReadFile(filepath.Join(out, "checkpoints", "step-4", masterFile))
	b, _ := os.ReadFile(filepath.Join(out2, "checkpoints", "step-4", masterFile))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatal("resuming from a bf16 checkpoint did not reproduce the uninterrupted run's weights")
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Training from a model directory carries its special_tokens_map.json and
// generation_config.json over unchanged; a model.chat_template Jinja file
// renders the prompts and is the saved chat_template.
func TestCheckpointCarriesSourceFilesAndTemplate(t *testing.T) {
	first := t.TempDir()
	runConfig(t, parseConfig(t, tinyYAML(first), "sft.steps=0", "train.steps=1", "checkpoint.every=1", "model.init.max_seq=64"), Options{})
	src := filepath.Join(first, "checkpoints", "step-1")
	special := []byte(`{"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}` + "\n")
	gen := []byte(`{"eos_token_id": 0, "do_sample": true, "temperature": 0.7, "top_p": 0.8}` + "\n")
	for name, b := range map[string][]byte{"special_tokens_map.json": special, "generation_config.json": gen} {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := filepath.Join(t.TempDir(), "terse.jinja")
	jinja := "{%- for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{%- endfor %}" +
		"{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\nAnswer: ' }}{%- endif %}"
	if err := os.WriteFile(tmpl, []byte(jinja), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	c := parseConfig(t, tinyYAML(out), "model.path="+src, "model.chat_template="+tmpl, "sft.steps=0", "train.steps=1", "checkpoint.every=1")
	tr, err := New(c, Options{Console: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	ex := tr.src.Eval[0]
	text, err := tr.pol.promptText(ex, tr.chat)
	if err != nil {
		t.Fatal(err)
	}
	if want := "<|im_start|>user\n" + ex.Prompt + "<|im_end|>\n<|im_start|>assistant\nAnswer: "; text != want {
		t.Fatalf("prompt %q, want %q", text, want)
	}
	if _, err := tr.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	dst := filepath.Join(out, "checkpoints", "step-1")
	for name, want := range map[string][]byte{"special_tokens_map.json": special, "generation_config.json": gen} {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %q (%v), want the source's %q", name, got, err, want)
		}
	}
	if tc := readJSON(t, filepath.Join(dst, "tokenizer_config.json")); tc["chat_template"] != jinja {
		t.Errorf("saved chat_template %q, want the file's", tc["chat_template"])
	}

	// A template that is neither a built-in name nor a file.
	c = parseConfig(t, tinyYAML(t.TempDir()), "model.chat_template=/no/such.jinja")
	if _, err := New(c, Options{Console: &bytes.Buffer{}}); err == nil || !strings.Contains(err.Error(), "model.chat_template") || !strings.Contains(err.Error(), "neither a built-in format") {
		t.Fatalf("missing template file: %v", err)
	}
}
