package reward

import (
	"context"
	"math"
	"reflect"
	"testing"
)

// Expected values are the ones published in sacrebleu's own test suite
// (test_bleu.py, test_sentence_bleu.py) and README.
var (
	readmeRefs = [][]string{
		{"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
		{"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."},
	}
	readmeHyps = []string{"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."}
)

// perHyp turns sacrebleu's reference streams into per-hypothesis lists.
func perHyp(streams [][]string) [][]string {
	out := make([][]string, len(streams[0]))
	for _, st := range streams {
		for i, r := range st {
			out[i] = append(out[i], r)
		}
	}
	return out
}

func TestCorpusBLEUPublished(t *testing.T) {
	const tol = 1e-6
	cases := []struct {
		name string
		opt  BLEUOptions
		hyps []string
		want float64
	}{
		{"default", BLEUOptions{}, readmeHyps, 48.530827},
		{"13a", BLEUOptions{Tokenize: "13a"}, readmeHyps, 48.530827},
		{"tokenize none", BLEUOptions{Tokenize: "none"}, readmeHyps, 49.1919566},
		{"smooth none", BLEUOptions{Smooth: "none"}, readmeHyps, 48.530827},
		{"empty hypotheses", BLEUOptions{}, []string{"", "", ""}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.opt.CorpusBLEU(c.hyps, perHyp(readmeRefs))
			if math.Abs(got-c.want) > tol {
				t.Errorf("corpus BLEU = %.7f, want %.7f", got, c.want)
			}
		})
	}
}

func TestSentenceBLEUPublished(t *testing.T) {
	const ref = "producţia de zahăr brut se exprimă în zahăr alb;"
	const sys = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;"
	const tol = 1e-3 // sacrebleu's own tolerance for these
	cases := []struct {
		smooth string
		value  *float64
		tok    string
		want   float64
	}{
		{"exp", nil, "13a", 8.493},
		{"none", nil, "13a", 0},
		{"floor", nil, "13a", 4.51688},
		{"floor", f64(0.1), "13a", 4.51688},
		{"floor", f64(0.5), "13a", 10.10},
		{"add-k", nil, "13a", 14.882},
		{"add-k", f64(1), "13a", 14.882},
		{"add-k", f64(2), "13a", 21.389},
		{"exp", nil, "none", 7.347},
	}
	for _, c := range cases {
		opt := BLEUOptions{Smooth: c.smooth, SmoothValue: c.value, Tokenize: c.tok}
		if got := opt.SentenceBLEU(sys, []string{ref}); math.Abs(got-c.want) > tol {
			t.Errorf("%s/%v/%s: sentence BLEU = %.5f, want %.5f", c.smooth, c.value, c.tok, got, c.want)
		}
		if got := opt.SentenceBLEU("this is a cat", []string{"okay thanks"}); got != 0 {
			t.Errorf("%s: no-match sentence BLEU = %v, want 0", c.smooth, got)
		}
	}
}

func TestBLEUStatsAndScoring(t *testing.T) {
	// raw_corpus_bleu: tokenize none, floor smoothing 0.01, effective order.
	raw := BLEUOptions{Tokenize: "none", Smooth: "floor", SmoothValue: f64(0.01)}
	st := raw.SentenceStats("am I am a character sequence", []string{"I am a symbol string sequence a a"})
	if !reflect.DeepEqual(st.Correct, []float64{4, 2, 1, 0}) || !reflect.DeepEqual(st.Total, []float64{6, 5, 4, 3}) {
		t.Errorf("stats %v / %v, want [4 2 1 0] / [6 5 4 3]", st.Correct, st.Total)
	}
	floor01 := BLEUOptions{Tokenize: "none", Smooth: "floor"}
	if got := floor01.Score(st, true) / 100; math.Abs(got-0.1555722182) > 1e-8 {
		t.Errorf("offset case = %.10f, want 0.1555722182", got)
	}
	scored := BLEUOptions{}.Score(BLEUStats{Correct: []float64{9, 7, 5, 3}, Total: []float64{10, 8, 6, 4}, SysLen: 11, RefLen: 11}, false) / 100
	if math.Abs(scored-0.8375922397) > 1e-8 {
		t.Errorf("compute_bleu = %.10f, want 0.8375922397", scored)
	}
	cases := []struct {
		hyp, ref string
		want     float64
	}{
		{"test", "a test", 0.3678794411714425},
		{"a test", "a test", 1.0},
		{"a little test", "a test", 0.03218297948685433},
		{"this is a test", "this is a test", 1.0},
		{"this is a fest", "this is a test", 0.223606797749979},
	}
	for _, c := range cases {
		if got := raw.Score(raw.SentenceStats(c.hyp, []string{c.ref}), true) / 100; math.Abs(got-c.want) > 1e-8 {
			t.Errorf("raw BLEU(%q, %q) = %.12f, want %.12f", c.hyp, c.ref, got, c.want)
		}
	}
	rawCorpus := raw.CorpusBLEU([]string{"this is a test", "another test"}, [][]string{{"ref1"}, {"ref2"}}) / 100
	_ = rawCorpus // sacrebleu >= 1.4.7 returns 0 when nothing matches (#141)
	if rawCorpus != 0 {
		t.Errorf("no matches: %v, want 0", rawCorpus)
	}
}

func TestTokenize13a(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"Hello, world.", []string{"Hello", ",", "world", "."}},
		{"It costs 1,000.50 dollars", []string{"It", "costs", "1,000.50", "dollars"}},
		{"state-of-the-art 3-4", []string{"state-of-the-art", "3", "-", "4"}},
		{"a&amp;b &lt;tag&gt;", []string{"a", "&", "b", "<", "tag", ">"}},
		{"It wasn't", []string{"It", "wasn't"}},
		{"end.", []string{"end", "."}},
	}
	for _, c := range cases {
		if got := tokenize13a(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("tokenize13a(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestBLEUReward(t *testing.T) {
	b, err := NewBLEU(DefaultBLEUParams())
	if err != nil {
		t.Fatal(err)
	}
	samples := []Sample{
		{Completion: "<think>draft</think><answer>The dog bit the man.</answer>", Fields: map[string]any{"references": []any{"The dog bit the man.", "The dog had bit the man."}}},
		{Completion: "It wasn't surprising.", Fields: map[string]any{"references": []string{"It was not unexpected.", "No one was surprised."}}},
		{Completion: "", Fields: map[string]any{"references": "anything"}},
		{Completion: "x", Fields: map[string]any{}},
	}
	out, err := b.Score(context.Background(), samples)
	if err != nil {
		t.Fatal(err)
	}
	if out.Values[0] != 1 {
		t.Errorf("identical: %v, want 1", out.Values[0])
	}
	want := BLEUOptions{}.SentenceBLEU("It wasn't surprising.", []string{"It was not unexpected.", "No one was surprised."}) / 100
	if math.Abs(out.Values[1]-want) > 1e-12 || out.Values[1] <= 0 || out.Values[1] >= 1 {
		t.Errorf("partial: %v, want %v in (0, 1)", out.Values[1], want)
	}
	if out.Values[2] != 0 {
		t.Errorf("empty completion: %v, want 0", out.Values[2])
	}
	if out.Errs == nil || out.Errs[3] == nil {
		t.Error("missing references: want an error")
	}
	if _, ok := out.Metrics["corpus_bleu"]; !ok {
		t.Error("no corpus_bleu metric")
	}
	if _, err := NewBLEU(BLEUParams{Smooth: "laplace", Tokenize: "13a", Extract: []string{"full"}}); err == nil {
		t.Error("unknown smoothing accepted")
	}
}
