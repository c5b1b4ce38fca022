package model

import (
	"fmt"
	"os"
	"path/filepath"

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
	p := safetensors.NewPicker(source, tensors)
	p.Ignore("model.layers.*.self_attn.rotary_emb.inv_freq")
	if m.Cfg.TieEmbeddings {
		// Some tied checkpoints store a copy of the embedding as lm_head.
		p.Ignore("lm_head.weight")
	}
	host := make([]float32, m.lay.size)
	for _, t := range m.lay.tensors {
		if src := p.Take(t.Name, t.Shape...); src != nil {
			copy(host[t.Offset:t.Offset+t.Size()], src.Data)
		}
	}
	if err := p.Err(); err != nil {
		return fmt.Errorf("load weights: %w", err)
	}
	m.be.Upload(m.Params, host)
	return nil
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
