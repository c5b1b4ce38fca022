package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/model/tokenizer"
	"github.com/rltrain/rltrain/train"
)

type tokenizeFlags struct {
	tokenizer, text, input string
	special, tokens, lines bool
	decode                 bool
	chat                   bool
	chatTemplate           string
	chatKwargs             string
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
--decode prints the decoded text after the ids.

--chat renders the text through the chat template first, as training
renders a prompt: text that is a JSON list of {role, content} messages is
the conversation, other text one user message; the generation prompt is
added. The rendered text is printed (quoted) before its ids.
--chat-template overrides the tokenizer's template (a built-in format or a
Jinja file) and --chat-kwargs passes template variables as JSON, e.g.
'{"enable_thinking": false}'.`,
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
	fl.BoolVar(&f.chat, "chat", false, "render the text (a user message, or a JSON message list) through the chat template")
	fl.StringVar(&f.chatTemplate, "chat-template", "", "with --chat: a built-in format (chatml, qwen3, llama3, llama2, plain) or a Jinja file")
	fl.StringVar(&f.chatKwargs, "chat-kwargs", "", `with --chat: template variables as a JSON object, e.g. '{"enable_thinking": false}'`)
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
	special := f.special
	if f.chat {
		if texts, err = renderChats(tok, texts, f); err != nil {
			return fmt.Errorf("tokenize: %w", err)
		}
		special = false // the template writes the special tokens it wants
	} else if f.chatTemplate != "" || f.chatKwargs != "" {
		return errors.New("tokenize: --chat-template and --chat-kwargs need --chat")
	}
	w := bufio.NewWriter(out)
	for i, ids := range tok.EncodeBatch(texts, special) {
		if f.chat {
			fmt.Fprintln(w, strconv.Quote(texts[i]))
		}
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

// renderChats renders each text as a chat prompt with the generation
// prompt: a JSON message list as it is, other text as one user message.
func renderChats(tok *tokenizer.Tokenizer, texts []string, f tokenizeFlags) ([]string, error) {
	var kwargs map[string]any
	if f.chatKwargs != "" {
		if err := json.Unmarshal([]byte(f.chatKwargs), &kwargs); err != nil {
			return nil, fmt.Errorf("--chat-kwargs: want a JSON object: %w", err)
		}
	}
	if err := train.ApplyChatOptions(tok, f.chatTemplate, kwargs); err != nil {
		return nil, fmt.Errorf("--chat-template: %w", err)
	}
	out := make([]string, len(texts))
	for i, text := range texts {
		msgs := []tokenizer.Message{{Role: "user", Content: text}}
		if t := strings.TrimSpace(text); strings.HasPrefix(t, "[") {
			if err := json.Unmarshal([]byte(t), &msgs); err != nil {
				return nil, fmt.Errorf("text %d: a message list must be JSON [{role, content}]: %w", i+1, err)
			}
		}
		s, err := tok.ApplyChatTemplate(msgs, true)
		if err != nil {
			return nil, fmt.Errorf("text %d: %w", i+1, err)
		}
		out[i] = s
	}
	return out, nil
}
