package main

import (
	"fmt"
	"io"
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
	parent.AddCommand(newModelInitCmd(), newModelInfoCmd(), newMergeCmd())
	rootCmd.AddCommand(parent)
}

// modelInitFlags are rltrain model init's options.
type modelInitFlags struct {
	cfgPath, out, dtype, tokPath string
	seed                         uint64
	std                          float64
	dev                          deviceFlags
}

// newModelInitCmd is `rltrain model init`: a random model for a config.
func newModelInitCmd() *cobra.Command {
	var f modelInitFlags
	cmd := &cobra.Command{
		Use:   "init --config config.json --out DIR",
		Short: "Write a randomly initialised model for a Hugging Face config.json",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runModelInit(cmd.OutOrStdout(), f)
		},
	}
	cmd.Flags().StringVar(&f.cfgPath, "config", "", "Hugging Face config.json describing the architecture")
	cmd.Flags().StringVar(&f.out, "out", "", "output directory")
	cmd.Flags().Uint64Var(&f.seed, "seed", 0, "random seed")
	cmd.Flags().Float64Var(&f.std, "std", 0.02, "standard deviation of the weight matrices")
	cmd.Flags().StringVar(&f.dtype, "dtype", "F32", "stored dtype: F32 or BF16")
	cmd.Flags().StringVar(&f.tokPath, "tokenizer", "", "model directory or tokenizer.json whose tokenizer (with tokenizer_config.json and special_tokens_map.json) the new model gets")
	f.dev.add(cmd.Flags())
	cmd.MarkFlagRequired("config")
	cmd.MarkFlagRequired("out")
	return cmd
}

func runModelInit(w io.Writer, f modelInitFlags) error {
	raw, err := os.ReadFile(f.cfgPath)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	cfg, err := model.ParseConfig(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", f.cfgPath, err)
	}
	be, err := f.dev.open(0)
	if err != nil {
		return err
	}
	m, err := model.New(cfg, be)
	if err != nil {
		return err
	}
	var files train.TokenizerFiles
	if f.tokPath != "" {
		// Checked before anything is written.
		if files, err = train.ReadTokenizerFiles(f.tokPath); err != nil {
			return fmt.Errorf("--tokenizer: %w", err)
		}
		tok, err := tokenizer.FromJSON(files.Tokenizer, files.Config)
		if err != nil {
			return fmt.Errorf("--tokenizer %s: %w", f.tokPath, err)
		}
		if tok.VocabSize() > cfg.Vocab {
			return fmt.Errorf("--tokenizer %s has %d tokens, more than the config's vocab_size %d", f.tokPath, tok.VocabSize(), cfg.Vocab)
		}
	}
	m.InitRandom(f.seed, f.std)
	if err := m.Save(f.out, safetensors.DType(f.dtype)); err != nil {
		return err
	}
	if f.tokPath != "" {
		if err := files.WriteTo(f.out); err != nil {
			return err
		}
		fmt.Fprintf(w, "copied the tokenizer from %s\n", f.tokPath)
	}
	fmt.Fprintf(w, "wrote %s (%d parameters)\n", filepath.Join(f.out, safetensors.SingleFile), m.NumParams())
	return nil
}

// newModelInfoCmd is `rltrain model info`: a checkpoint's architecture and
// tensors.
func newModelInfoCmd() *cobra.Command {
	var dir string
	var dev deviceFlags
	cmd := &cobra.Command{
		Use:   "info --model DIR",
		Short: "Load a checkpoint and print its architecture and tensors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			be, err := dev.open(0)
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
	cmd.Flags().StringVar(&dir, "model", "", "model directory")
	dev.add(cmd.Flags())
	cmd.MarkFlagRequired("model")
	return cmd
}
