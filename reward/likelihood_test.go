package reward

import (
	"context"
	"math"
	"strings"
	"testing"
)

// bytePolicy encodes text byte by byte and gives the k-th token of every
// continuation the log-prob −0.5·(k+1); it records what it was asked.
type bytePolicy struct{ pairs []TokenPair }

func (p *bytePolicy) Encode(text string) []int32 {
	out := make([]int32, len(text))
	for i := range text {
		out[i] = int32(text[i])
	}
	return out
}

func (p *bytePolicy) ContinuationLogProbs(_ context.Context, pairs []TokenPair) ([][]float32, error) {
	p.pairs = append(p.pairs, pairs...)
	out := make([][]float32, len(pairs))
	for i, pr := range pairs {
		for k := range pr.Continuation {
			out[i] = append(out[i], float32(-0.5*float64(k+1)))
		}
	}
	return out, nil
}

// TestLikelihoodHand: the reference "19" after marker ";" is 3 tokens
// (";19") scored −0.5, −1, −1.5: logprob −3, mean_logprob −1, prob e^−3.
// The context is the prompt ids then the reasoning before the marker's last
// occurrence ("7;12"); a completion without the marker is all reasoning.
func TestLikelihoodHand(t *testing.T) {
	samples := []Sample{
		{Prompt: "3+4+5=", PromptIDs: []int32{100, 101}, Completion: "7;12;99", Fields: map[string]any{"answer": "19"}},
		{Prompt: "1+1=", Completion: "2", Fields: map[string]any{"answer": 2.0}},
		{Prompt: "x", Completion: "y", Fields: map[string]any{}},
	}
	for _, tc := range []struct {
		mode string
		want [2]float64
	}{
		{"logprob", [2]float64{-3, -3}},
		{"mean_logprob", [2]float64{-1, -1.5}},
		{"prob", [2]float64{math.Exp(-3), math.Exp(-3)}},
	} {
		pol := &bytePolicy{}
		s, err := New(Config{Functions: []Spec{{Type: "likelihood", Params: map[string]any{"mode": tc.mode, "marker": ";"}}}}, WithPolicy(pol))
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Score(context.Background(), samples)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		// Sample 1: ";2" is 2 tokens, −0.5 −1.
		want1 := map[string]float64{"logprob": -1.5, "mean_logprob": -0.75, "prob": math.Exp(-1.5)}[tc.mode]
		if got := res.Components[0]; math.Abs(got[0]-tc.want[0]) > 1e-12 || math.Abs(got[1]-want1) > 1e-12 {
			t.Errorf("%s: scores %v, want %v and %v", tc.mode, got[:2], tc.want[0], want1)
		}
		if !res.Excluded[2] {
			t.Errorf("%s: a sample without a reference was scored", tc.mode)
		}
		if len(pol.pairs) != 2 {
			t.Fatalf("%s: %d pairs sent to the policy in one batch, want 2", tc.mode, len(pol.pairs))
		}
		p := pol.pairs[0]
		if string(bytesOf(p.Context[2:])) != "7;12" || p.Context[0] != 100 || p.Context[1] != 101 || string(bytesOf(p.Continuation)) != ";19" {
			t.Errorf("%s: pair %v / %q", tc.mode, p.Context, bytesOf(p.Continuation))
		}
		if q := pol.pairs[1]; string(bytesOf(q.Context)) != "1+1=2" || string(bytesOf(q.Continuation)) != ";2" {
			t.Errorf("%s: without PromptIDs or marker: %q / %q", tc.mode, bytesOf(q.Context), bytesOf(q.Continuation))
		}
	}
}

func bytesOf(ids []int32) []byte {
	out := make([]byte, len(ids))
	for i, id := range ids {
		out[i] = byte(id)
	}
	return out
}

// TestLikelihoodWithoutPolicy: outside training the reward fails (every
// sample excluded) with a message saying why.
func TestLikelihoodWithoutPolicy(t *testing.T) {
	sink := &logSink{}
	s, err := New(Config{Functions: []Spec{{Type: "likelihood"}}}, WithLogger(sink.log))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Score(context.Background(), []Sample{{Prompt: "a", Completion: "b", Fields: map[string]any{"answer": "c"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Excluded[0] || !strings.Contains(strings.Join(sink.msgs, "\n"), "needs the policy") {
		t.Errorf("excluded %v, log %q", res.Excluded[0], sink.msgs)
	}
	if _, err := New(Config{Functions: []Spec{{Type: "likelihood", Params: map[string]any{"mode": "odds"}}}}); err == nil {
		t.Error("mode odds accepted")
	}
}
