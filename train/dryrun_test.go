package train

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/model/tokenizer"
)

// trlFiles writes a TRL conversational prompt file (a prompt that is a
// message list, a solution column) and a TRL "messages" SFT file.
func trlFiles(t *testing.T, dir string) (prompts, sft string) {
	t.Helper()
	var p, s strings.Builder
	for i := range 12 {
		a, b := i%5+1, i%3+2
		fmt.Fprintf(&p, `{"prompt": [{"role": "user", "content": "%d+%d="}], "solution": "%d"}`+"\n", a, b, a+b)
		fmt.Fprintf(&s, `{"messages": [{"role": "user", "content": "%d+%d="}, {"role": "assistant", "content": "%d"}]}`+"\n", a, b, a+b)
	}
	// One much longer prompt, with a system turn.
	fmt.Fprintf(&p, `{"prompt": [{"role": "system", "content": "Add."}, {"role": "user", "content": "what is 40+2="}], "solution": "42", "id": "long"}`+"\n")
	prompts, sft = filepath.Join(dir, "prompts.jsonl"), filepath.Join(dir, "sft.jsonl")
	for path, body := range map[string]string{prompts: p.String(), sft: s.String()} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return prompts, sft
}

func trlYAML(out, prompts, sft string) string {
	return fmt.Sprintf(`
model:
  init: {hidden: 32, layers: 1, heads: 2, kv_heads: 1, ffn: 64, max_seq: 64}
data: {train: %q, answer_field: solution, eval_size: 4}
reward: [{type: math_answer}]
rollout: {batch_size: 2, group_size: 2, max_new_tokens: 4}
optim: {lr: 1e-3}
sft: {steps: 2, lr: 1e-3, batch_size: 4, data: %q}
train: {steps: 1, seed: 3, out_dir: %q}
checkpoint: {every: 0}
log: {every: 1, progress: false}
`, prompts, sft, out)
}

// Message-list prompts (TRL's conversational format) go through the
// tokenizer's own chat template with no chat option set; --dry-run renders
// and tokenizes every one and reports the counts and the longest prompt.
func TestDryRunAndConversationalPrompts(t *testing.T) {
	dir := t.TempDir()
	prompts, sft := trlFiles(t, dir)
	c := parseConfig(t, trlYAML(filepath.Join(dir, "out"), prompts, sft))
	var log bytes.Buffer
	tr, err := New(c, Options{Console: &log})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := tr.DryRun()
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()
	if rep.TrainExamples != 9 || rep.EvalExamples != 4 || rep.Skipped != 0 || rep.SFTExamples != 12 {
		t.Fatalf("report %+v", rep)
	}
	// The longest prompt, rendered in ChatML: 3 markers per turn.
	want := "<|im_start|>system\nAdd.<|im_end|>\n<|im_start|>user\nwhat is 40+2=<|im_end|>\n<|im_start|>assistant\n"
	n := len(tr.pol.Tok.Encode(want, false))
	if rep.Longest != n || rep.LongestID != "long" {
		t.Fatalf("longest %d tokens (%s %s), want %d (long)", rep.Longest, rep.LongestIn, rep.LongestID, n)
	}
	var out bytes.Buffer
	rep.Print(&out, 64, 4)
	if !strings.Contains(out.String(), "train examples: 9, eval examples: 4, skipped: 0") || !strings.Contains(out.String(), fmt.Sprintf("longest prompt: %d tokens", n)) {
		t.Fatalf("printed %q", out.String())
	}
	// It trains: the warm-up on the final assistant turns, then RL.
	runConfig(t, c, Options{})
}

// A chat dataset with a tokenizer that has no chat template fails the dry
// run with what to set.
func TestDryRunChatWithoutTemplate(t *testing.T) {
	dir := t.TempDir()
	prompts, sft := trlFiles(t, dir)
	opts := tokenizer.DefaultCharOptions()
	opts.ChatTemplate = ""
	tokDir := filepath.Join(dir, "tok")
	if _, err := tokenizer.WriteCharTokenizer(tokDir, opts); err != nil {
		t.Fatal(err)
	}
	c := parseConfig(t, trlYAML(filepath.Join(dir, "out"), prompts, sft), "model.tokenizer="+tokDir)
	tr, err := New(c, Options{Console: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.DryRun(); err == nil || !strings.Contains(err.Error(), "train: example 3: a chat prompt (a list of messages) needs a chat template") || !strings.Contains(err.Error(), "model.chat_template") {
		t.Fatalf("dry run: %v", err)
	}
}
