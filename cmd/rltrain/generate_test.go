package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/model/tokenizer"
	"github.com/rltrain/rltrain/rollout"
)

func runGenerateLines(t *testing.T, f generateFlags) []generateOut {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := runGenerate(&out, &errOut, f); err != nil {
		t.Fatal(err)
	}
	var lines []generateOut
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var l generateOut
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("bad output line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

func baseGenerateFlags(dir string) generateFlags {
	f := generateFlags{modelDir: dir, cfg: rollout.DefaultConfig(), jsonOut: true, quiet: true, threads: 2}
	f.cfg.GroupSize, f.cfg.MaxNewTokens, f.cfg.Seed = 3, 12, 5
	return f
}

// idPromptsFlags are generate's flags for the tiny model on a JSONL file
// of prompts.
func idPromptsFlags(t *testing.T, jsonl string) generateFlags {
	t.Helper()
	f := baseGenerateFlags(tinyModelDir(t, "LlamaForCausalLM"))
	f.input = writeFile(t, t.TempDir(), "in.jsonl", jsonl)
	return f
}

// TestGenerateJSONIDs runs id prompts from a file and checks the JSON
// lines, and that --max-batch and --threads do not change them.
func TestGenerateJSONIDs(t *testing.T) {
	f := idPromptsFlags(t, "{\"ids\": [1, 5, 7]}\n\n{\"ids\": [9, 10, 11, 12, 13]}\n")
	lines := runGenerateLines(t, f)
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 2 prompts × 3", len(lines))
	}
	for i, l := range lines {
		if l.Prompt != i/3 || l.Sample != i%3 || len(l.IDs) == 0 || len(l.Logprobs) != len(l.IDs) {
			t.Fatalf("line %d: %+v", i, l)
		}
		// vLLM's names: an EOS token is "stop" too.
		if !(l.Finish == "stop" && l.Stop == "eos") && !(l.Finish == "length" && l.Stop == "") {
			t.Fatalf("line %d: finish %q, stop %q", i, l.Finish, l.Stop)
		}
		for _, lp := range l.Logprobs {
			if !(lp <= 0) {
				t.Fatalf("line %d: log-prob %g", i, lp)
			}
		}
	}
	f.cfg.MaxBatch, f.threads = 1, 1
	again := runGenerateLines(t, f)
	for i := range lines {
		if !slices.Equal(again[i].IDs, lines[i].IDs) || again[i].Finish != lines[i].Finish {
			t.Fatalf("line %d changed with --max-batch 1 --threads 1: %v vs %v", i, again[i].IDs, lines[i].IDs)
		}
	}
}

// TestGenerateText uses a character tokenizer: text and chat prompts,
// stop strings, and text equal to the decoded ids.
func TestGenerateText(t *testing.T) {
	dir := tinyModelDir(t, "LlamaForCausalLM")
	opts := tokenizer.CharOptions{Chars: "abcdefghijklmnopqrstuvwxyz \n", Special: []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"},
		EOS: "<|endoftext|>", PAD: "<|endoftext|>", ChatTemplate: tokenizer.ChatML}
	tok := writeCharTokenizer(t, dir, opts)
	f := baseGenerateFlags(dir)
	f.prompt, f.cfg.MaxNewTokens, f.cfg.GroupSize, f.cfg.Temperature = "hello world", 40, 6, 2
	free := runGenerateLines(t, f)
	ids := func(l generateOut) []int {
		out := make([]int, len(l.IDs))
		for i, id := range l.IDs {
			out[i] = int(id)
		}
		return out
	}
	var stop string
	for _, l := range free {
		if want := tokenizer.ValidUTF8(tok.Decode(ids(l), true)); l.Text != want {
			t.Fatalf("text %q, decoded ids %q", l.Text, want)
		}
		if len(l.Text) > 6 && stop == "" {
			stop = l.Text[4:6]
		}
	}
	if stop == "" {
		t.Skip("no completion long enough for a stop string")
	}
	f.cfg.Stop = []string{stop}
	stopped := runGenerateLines(t, f)
	n := 0
	for i, l := range stopped {
		if l.Finish == "stop" && l.Stop == "stop_string" {
			n++
			if strings.Contains(l.Text, stop) || !strings.HasPrefix(free[i].Text, l.Text+stop) {
				t.Fatalf("stopped text %q (stop %q), free text %q", l.Text, stop, free[i].Text)
			}
		}
	}
	if n == 0 {
		t.Fatalf("no completion stopped at %q", stop)
	}
	f.cfg.Stop, f.chat = nil, true
	if chat := runGenerateLines(t, f); len(chat) != 6 {
		t.Fatalf("--chat: %d lines", len(chat))
	}
}

func TestGenerateErrors(t *testing.T) {
	dir := tinyModelDir(t, "LlamaForCausalLM")
	in := writeFile(t, t.TempDir(), "in.jsonl", "{\"text\": \"hi\"}\n")
	cases := []struct {
		name string
		mut  func(*generateFlags)
		want string
	}{
		{"neither", func(f *generateFlags) {}, "exactly one"},
		{"both", func(f *generateFlags) { f.prompt, f.input = "x", in }, "exactly one"},
		{"no tokenizer", func(f *generateFlags) { f.input = in }, "tokenizer.json"},
		{"bad top-p", func(f *generateFlags) { f.prompt, f.cfg.TopP = "x", 2 }, "top_p"},
	}
	for _, tc := range cases {
		f := baseGenerateFlags(dir)
		tc.mut(&f)
		err := runGenerate(&bytes.Buffer{}, &bytes.Buffer{}, f)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
