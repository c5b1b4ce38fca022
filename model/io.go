package model

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/model/safetensors"
)

// Load reads a Hugging Face model directory (config.json and
// model.safetensors or a sharded index) onto the backend.
func Load(dir string, be kernels.Backend) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	// Check the config against the weights' headers before allocating
	// anything: the sizes in config.json decide how much memory New takes.
	shapes, err := safetensors.ReadModelShapes(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	if err := cfg.CheckShapes(dir, shapes); err != nil {
		return nil, err
	}
	m, err := New(cfg, be)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	tensors, _, err := safetensors.ReadModel(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	if err := m.SetTensors(dir, tensors); err != nil {
		return nil, err
	}
	return m, nil
}

// SetTensors copies named Hugging Face tensors into the model, checking
// that every parameter is present with the shape the config implies and
// that nothing is left over. source names the origin in errors.
func (m *Model) SetTensors(source string, tensors map[string]*safetensors.Tensor) error {
	// Checked first, so that a bad set of tensors changes nothing; then
	// each tensor goes straight into its slice of the parameters (no
	// whole-model staging copy: loading a 0.5B model peaked at three
	// copies of its weights).
	if err := pick(m.Cfg, m.lay, source, tensors, func(Tensor, *safetensors.Tensor) {}); err != nil {
		return err
	}
	return pick(m.Cfg, m.lay, source, tensors, func(t Tensor, src *safetensors.Tensor) {
		m.be.Upload(m.be.View(m.Params, t.Offset, t.Size()), src.Data)
	})
}

// CheckShapes checks, without allocating the model, that tensors (from
// safetensors.ReadModelShapes: shapes only) are exactly the parameters the
// config implies. source names their origin in errors.
func (c Config) CheckShapes(source string, tensors map[string]*safetensors.Tensor) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("model config: %w", err)
	}
	// A layer count that disagrees with the weights would otherwise be
	// reported as thousands of missing (or unused) tensors.
	layers := map[int]bool{}
	for name := range tensors {
		if rest, ok := strings.CutPrefix(name, "model.layers."); ok {
			if i := strings.IndexByte(rest, '.'); i > 0 {
				if n, err := strconv.Atoi(rest[:i]); err == nil && n >= 0 {
					layers[n] = true
				}
			}
		}
	}
	if len(layers) > 0 && len(layers) != c.Layers {
		return fmt.Errorf("load weights: %s: config.json says num_hidden_layers %d, the weights hold %d layers", source, c.Layers, len(layers))
	}
	return pick(c, c.layout(), source, tensors, func(Tensor, *safetensors.Tensor) {})
}

// pick hands every parameter of layout lay found in tensors to use, and
// reports missing, misshapen and unused tensors.
func pick(c Config, lay layout, source string, tensors map[string]*safetensors.Tensor, use func(Tensor, *safetensors.Tensor)) error {
	p := safetensors.NewPicker(source, tensors)
	p.Ignore("model.layers.*.self_attn.rotary_emb.inv_freq")
	if c.TieEmbeddings {
		// Some tied checkpoints store a copy of the embedding as lm_head.
		p.Ignore("lm_head.weight")
	}
	for _, t := range lay.tensors {
		if src := p.Take(t.Name, t.Shape...); src != nil {
			use(t, src)
		}
	}
	if err := p.Err(); err != nil {
		return fmt.Errorf("load weights: %w", err)
	}
	return nil
}

// NonFinite finds the first parameter value that is NaN or infinite, in
// buffer order: the tensor's name, the index inside it and the value. A
// checkpoint written by a diverged run (or corrupted) is caught on load
// instead of turning every output into NaN.
func (m *Model) NonFinite() (tensor string, index int, value float32, found bool) {
	host := make([]float32, m.lay.size)
	m.be.Download(host, m.Params)
	for _, t := range m.lay.tensors {
		for i, v := range host[t.Offset : t.Offset+t.Size()] {
			if v != v || v > math.MaxFloat32 || v < -math.MaxFloat32 {
				return t.Name, i, v, true
			}
		}
	}
	return "", 0, 0, false
}

// HostTensors downloads the parameters (or, with grads, the gradients) as
// named Hugging Face tensors in buffer order.
func (m *Model) HostTensors(grads bool) []*safetensors.Tensor {
	src := m.Params
	if grads {
		src = m.Grads
	}
	host := make([]float32, m.lay.size)
	m.be.Download(host, src)
	out := make([]*safetensors.Tensor, 0, len(m.lay.tensors))
	for _, t := range m.lay.tensors {
		out = append(out, &safetensors.Tensor{Name: t.Name, Shape: append([]int(nil), t.Shape...), Data: host[t.Offset : t.Offset+t.Size()]})
	}
	return out
}

// Save writes config.json and model.safetensors (dtype F32 or BF16) into
// dir, creating it. Files are written atomically (temporary file, fsync,
// rename).
func (m *Model) Save(dir string, dtype safetensors.DType) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	cfg := m.Cfg
	if dtype == safetensors.BF16 {
		cfg.DType = "bfloat16"
	} else {
		cfg.DType = "float32"
	}
	js, err := cfg.JSON()
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "config.json"), js); err != nil {
		return err
	}
	path := filepath.Join(dir, safetensors.SingleFile)
	if err := safetensors.WriteFile(path, m.HostTensors(false), map[string]string{"format": "pt"}, dtype); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
