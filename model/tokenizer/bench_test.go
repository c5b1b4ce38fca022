package tokenizer

import (
	"flag"
	"os"
	"strings"
	"testing"
)

// The throughput benchmarks encode the same 1 MB of mixed text that
// TestMegabyteMatchesReference checks, three ways: the whole text in one
// call, line by line in one goroutine, and line by line with EncodeBatch
// (one goroutine per CPU). scripts/tokenizer/bench.sh runs them next to the
// JavaScript reference.

var writeMixed = flag.String("tokenizer.write-mixed", "", "write the 1 MB benchmark text to this file (for scripts/tokenizer/bench.sh)")

func TestWriteMixedText(t *testing.T) {
	if *writeMixed == "" {
		t.Skip("only with -tokenizer.write-mixed FILE")
	}
	if err := os.WriteFile(*writeMixed, []byte(mixedText(1<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkEncode(b *testing.B) {
	text := mixedText(1 << 20)
	lines := strings.SplitAfter(text, "\n")
	for _, name := range realTokenizers {
		tok, err := loadRealNoNode(name)
		if err != nil {
			b.Skipf("%s not installed (make setup): %v", name, err)
		}
		b.Run(name+"/whole", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for i := 0; i < b.N; i++ {
				tok.Encode(text, false)
			}
		})
		b.Run(name+"/lines", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for i := 0; i < b.N; i++ {
				for _, l := range lines {
					tok.Encode(l, false)
				}
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for i := 0; i < b.N; i++ {
				tok.EncodeBatch(lines, false)
			}
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	for _, name := range realTokenizers {
		dir := realTokenizerDir(name)
		if _, err := os.Stat(dir); err != nil {
			b.Skipf("%s not installed (make setup)", name)
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := LoadDir(dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
