package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/model/safetensors"
	"github.com/rltrain/rltrain/model/tokenizer"
	"github.com/rltrain/rltrain/train"
)

func init() {
	parent := &cobra.Command{Use: "model", Short: "Create and inspect model checkpoints"}

	var cfgPath, out, dtype, tokPath string
	var seed uint64
	var std float64
	var initDev, infoDev deviceFlags
	initCmd := &cobra.Command{
		Use:   "init --config config.json --out DIR",
		Short: "Write a randomly initialised model for a Hugging Face config.json",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := os.ReadFile(cfgPath)
			if err != nil {
				return fmt.Errorf("read config: %w", err)
			}
			cfg, err := model.ParseConfig(raw)
			if err != nil {
				return fmt.Errorf("%s: %w", cfgPath, err)
			}
			be, err := initDev.open(0)
			if err != nil {
				return err
			}
			m, err := model.New(cfg, be)
			if err != nil {
				return err
			}
			var files train.TokenizerFiles
			if tokPath != "" {
				// Checked before anything is written.
				if files, err = train.ReadTokenizerFiles(tokPath); err != nil {
					return fmt.Errorf("--tokenizer: %w", err)
				}
				tok, err := tokenizer.FromJSON(files.Tokenizer, files.Config)
				if err != nil {
					return fmt.Errorf("--tokenizer %s: %w", tokPath, err)
				}
				if tok.VocabSize() > cfg.Vocab {
					return fmt.Errorf("--tokenizer %s has %d tokens, more than the config's vocab_size %d", tokPath, tok.VocabSize(), cfg.Vocab)
				}
			}
			m.InitRandom(seed, std)
			if err := m.Save(out, safetensors.DType(dtype)); err != nil {
				return err
			}
			if tokPath != "" {
				if err := files.WriteTo(out); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "copied the tokenizer from %s\n", tokPath)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d parameters)\n", filepath.Join(out, safetensors.SingleFile), m.NumParams())
			return nil
		},
	}
	initCmd.Flags().StringVar(&cfgPath, "config", "", "Hugging Face config.json describing the architecture")
	initCmd.Flags().StringVar(&out, "out", "", "output directory")
	initCmd.Flags().Uint64Var(&seed, "seed", 0, "random seed")
	initCmd.Flags().Float64Var(&std, "std", 0.02, "standard deviation of the weight matrices")
	initCmd.Flags().StringVar(&dtype, "dtype", "F32", "stored dtype: F32 or BF16")
	initCmd.Flags().StringVar(&tokPath, "tokenizer", "", "model directory or tokenizer.json whose tokenizer (with tokenizer_config.json and special_tokens_map.json) the new model gets")
	initDev.add(initCmd.Flags())
	initCmd.MarkFlagRequired("config")
	initCmd.MarkFlagRequired("out")

	var dir string
	infoCmd := &cobra.Command{
		Use:   "info --model DIR",
		Short: "Load a checkpoint and print its architecture and tensors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			be, err := infoDev.open(0)
			if err != nil {
				return err
			}
			m, err := model.Load(dir, be)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			c := m.Cfg
			fmt.Fprintf(w, "%s (%s): %d parameters\n", c.Architecture, c.ModelType, m.NumParams())
			fmt.Fprintf(w, "hidden %d, layers %d, heads %d/%d kv, head_dim %d, ffn %d, vocab %d, tied %v, qkv bias %v, qk norm %v\n",
				c.Hidden, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.FFN, c.Vocab, c.TieEmbeddings, c.AttnBias, c.QKNorm)
			for _, t := range m.Tensors() {
				fmt.Fprintf(w, "  %-50s %v\n", t.Name, t.Shape)
			}
			return nil
		},
	}
	infoCmd.Flags().StringVar(&dir, "model", "", "model directory")
	infoDev.add(infoCmd.Flags())
	infoCmd.MarkFlagRequired("model")

	parent.AddCommand(initCmd, infoCmd, newMergeCmd())
	rootCmd.AddCommand(parent)
}
