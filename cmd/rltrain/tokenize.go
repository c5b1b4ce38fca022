package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/model/tokenizer"
)

type tokenizeFlags struct {
	tokenizer, text, input string
	special, tokens, lines bool
	decode                 bool
}

func init() {
	var f tokenizeFlags
	cmd := &cobra.Command{
		Use:   "tokenize --tokenizer PATH (--text S | --input FILE)",
		Short: "Print the token ids of a text",
		Long: `Encode text with a model's tokenizer and print the ids, space-separated.

--tokenizer is a model directory (tokenizer.json, and tokenizer_config.json
when present) or a tokenizer.json file. The text comes from --text or from
--input ("-": standard input), read whole; with --lines each input line is
encoded on its own (in parallel) and printed on its own line. --special adds
the template's special tokens (Llama 2's <s>, for example); special-token
text such as "<|im_start|>" is recognised either way. --tokens prints one
token per line instead: id, then the token as tokenizer.json spells it.
--decode prints the decoded text after the ids.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTokenize(cmd.OutOrStdout(), cmd.InOrStdin(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.tokenizer, "tokenizer", "", "model directory or tokenizer.json")
	fl.StringVar(&f.text, "text", "", "text to encode")
	fl.StringVar(&f.input, "input", "", "file to encode (\"-\": standard input)")
	fl.BoolVar(&f.special, "special", false, "add the post-processor's special tokens (BOS/EOS)")
	fl.BoolVar(&f.tokens, "tokens", false, "print id and token, one per line")
	fl.BoolVar(&f.lines, "lines", false, "encode each input line separately")
	fl.BoolVar(&f.decode, "decode", false, "also print the decoded text")
	rootCmd.AddCommand(cmd)

	// rltrain logprobs reads {"text": ...} lines through this hook: the
	// model directory's tokenizer, with the special tokens its template
	// adds (Llama 2's <s>), as Hugging Face tokenizers do by default.
	newTextEncoder = func(modelDir string) (func(string) ([]int32, error), error) {
		tok, err := tokenizer.LoadDir(modelDir)
		if err != nil {
			return nil, err
		}
		return func(text string) ([]int32, error) {
			ids := tok.Encode(text, true)
			out := make([]int32, len(ids))
			for i, id := range ids {
				out[i] = int32(id)
			}
			return out, nil
		}, nil
	}
}

func runTokenize(out io.Writer, stdin io.Reader, f tokenizeFlags) error {
	if f.tokenizer == "" {
		return errors.New("tokenize: --tokenizer is required")
	}
	if (f.text == "") == (f.input == "") {
		return errors.New("tokenize: give exactly one of --text and --input")
	}
	tok, err := loadTokenizer(f.tokenizer)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	text := f.text
	if f.input != "" {
		var data []byte
		if f.input == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f.input)
		}
		if err != nil {
			return fmt.Errorf("tokenize: read input: %w", err)
		}
		text = string(data)
	}
	texts := []string{text}
	if f.lines {
		texts = strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	}
	w := bufio.NewWriter(out)
	for i, ids := range tok.EncodeBatch(texts, f.special) {
		if f.tokens {
			if i > 0 {
				fmt.Fprintln(w)
			}
			for _, id := range ids {
				fmt.Fprintf(w, "%d\t%s\n", id, strconv.Quote(tok.Token(id)))
			}
		} else {
			for k, id := range ids {
				if k > 0 {
					w.WriteByte(' ')
				}
				w.WriteString(strconv.Itoa(id))
			}
			w.WriteByte('\n')
		}
		if f.decode {
			fmt.Fprintf(w, "%s\n", strconv.Quote(tokenizer.ValidUTF8(tok.Decode(ids, false))))
		}
	}
	return w.Flush()
}

// loadTokenizer accepts a model directory or a tokenizer.json path.
func loadTokenizer(path string) (*tokenizer.Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if st.IsDir() {
		return tokenizer.LoadDir(path)
	}
	return tokenizer.Load(path)
}
