package tokenizer

import (
	"os"
	"strings"
	"testing"
)

// The throughput benchmarks encode the same 1 MB of mixed text that
// TestMegabyteMatchesReference checks; scripts/tokenizer/bench.sh runs them
// next to the JavaScript reference. Skipped when the real tokenizer files
// are not installed.

func benchTokenizer(b *testing.B, name string) *Tokenizer {
	b.Helper()
	dir := realTokenizerDir(name)
	if _, err := os.Stat(dir); err != nil {
		b.Skipf("%s not installed: run make setup", dir)
	}
	tok, err := LoadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

func benchmarkEncode(b *testing.B, name string, parallel bool) {
	tok := benchTokenizer(b, name)
	text := mixedText(1 << 20)
	lines := strings.SplitAfter(text, "\n")
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if parallel {
			tok.EncodeBatch(lines, false)
		} else {
			tok.Encode(text, false)
		}
	}
}

func BenchmarkEncodeQwen3(b *testing.B)          { benchmarkEncode(b, "qwen3", false) }
func BenchmarkEncodeQwen3Parallel(b *testing.B)  { benchmarkEncode(b, "qwen3", true) }
func BenchmarkEncodeLlama3(b *testing.B)         { benchmarkEncode(b, "llama3", false) }
func BenchmarkEncodeLlama3Parallel(b *testing.B) { benchmarkEncode(b, "llama3", true) }
func BenchmarkEncodeLlama2(b *testing.B)         { benchmarkEncode(b, "llama2", false) }
func BenchmarkEncodeLlama2Parallel(b *testing.B) { benchmarkEncode(b, "llama2", true) }
