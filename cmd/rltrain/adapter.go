package main

import (
	"fmt"
	"io"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/train"
)

// loadModel loads the model directory and, when adapterDir is not empty,
// the PEFT LoRA adapter in it, attached (computed unmerged, as training
// does). A LoRA adapter given as the model is refused with a hint.
func loadModel(stderr io.Writer, modelDir, adapterDir string, be kernels.Backend) (*model.Model, error) {
	if err := train.NotAnAdapter(modelDir); err != nil {
		return nil, fmt.Errorf("--model: %w", err)
	}
	m, err := model.Load(modelDir, be)
	if err != nil {
		return nil, err
	}
	warnNonFinite(stderr, modelDir, m)
	if adapterDir == "" {
		return m, nil
	}
	a, err := model.LoadAdapter(adapterDir, m)
	if err != nil {
		return nil, fmt.Errorf("--adapter: %w", err)
	}
	if err := m.Attach(a); err != nil {
		return nil, fmt.Errorf("--adapter: %w", err)
	}
	return m, nil
}
