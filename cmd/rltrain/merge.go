package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/model/safetensors"
)

// newMergeCmd is `rltrain model merge`: base + LoRA adapter -> one model.
func newMergeCmd() *cobra.Command {
	var base, adapter, out, dtype string
	var dev deviceFlags
	cmd := &cobra.Command{
		Use:   "merge --model BASE --adapter DIR --out OUT",
		Short: "Merge a PEFT LoRA adapter into its base model and write a full Hugging Face model",
		Long: `Add s·B·A (s = lora_alpha/r, or lora_alpha/√r with use_rslora) to each
projection the adapter targets, as PEFT's merge_and_unload does, and write
config.json and model.safetensors into OUT, with the base model's tokenizer
and generation files. The result loads with transformers (and rltrain) with
no adapter and computes what the base with the adapter computed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if abs(out) == abs(base) {
				return errors.New("--out must not be the base model's directory")
			}
			be, err := dev.open(0)
			if err != nil {
				return err
			}
			m, err := loadModel(cmd.ErrOrStderr(), base, "", be)
			if err != nil {
				return err
			}
			a, err := model.LoadAdapter(adapter, m)
			if err != nil {
				return fmt.Errorf("--adapter: %w", err)
			}
			if err := a.MergeInto(m); err != nil {
				return err
			}
			if name, i, v, bad := m.NonFinite(); bad {
				return fmt.Errorf("the merged tensor %q holds %v at index %d; nothing written", name, v, i)
			}
			if err := m.Save(out, safetensors.DType(dtype)); err != nil {
				return err
			}
			for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"} {
				b, err := os.ReadFile(filepath.Join(base, f))
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				if err == nil {
					err = os.WriteFile(filepath.Join(out, f), b, 0o644)
				}
				if err != nil {
					return fmt.Errorf("copy %s: %w", f, err)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "merged %s into %s: wrote %s\n", a.Describe(), base, filepath.Join(out, safetensors.SingleFile))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&base, "model", "", "base model directory (config.json, model.safetensors)")
	fl.StringVar(&adapter, "adapter", "", "PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors)")
	fl.StringVar(&out, "out", "", "output directory")
	fl.StringVar(&dtype, "dtype", "F32", "stored dtype: F32 or BF16")
	dev.add(fl)
	for _, f := range []string{"model", "adapter", "out"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}
