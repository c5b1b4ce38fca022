package reward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Policy is the model being trained, for rewards that score text with it
// (likelihood). The trainer provides one (WithPolicy); the reward package
// never touches model weights itself.
type Policy interface {
	// Encode returns the token ids of text, without special tokens.
	Encode(text string) []int32
	// ContinuationLogProbs returns, for each pair, the log-probability of
	// every Continuation token following Context and the tokens before it,
	// under the policy at temperature 1, computed in batches with the
	// policy's forward pass and fused log-prob kernel.
	ContinuationLogProbs(ctx context.Context, pairs []TokenPair) ([][]float32, error)
}

// TokenPair is a context and the continuation to score after it.
type TokenPair struct {
	Context, Continuation []int32
}

// PolicyUser is implemented by rewards that need the policy; a Set built
// WithPolicy hands it to them.
type PolicyUser interface {
	UsePolicy(p Policy)
}

// WithPolicy gives the rewards that score text with the model being
// trained (likelihood) access to it.
func WithPolicy(p Policy) Option { return func(s *Set) { s.policy = p } }

// LikelihoodParams configures likelihood.
type LikelihoodParams struct {
	// Mode: "logprob" (Σ log p of the reference's tokens, default),
	// "mean_logprob" (their mean) or "prob" (exp of the sum).
	Mode string `json:"mode"`
	// Marker separates a completion's reasoning from its answer: the
	// reasoning is the text before the marker's last occurrence (the whole
	// completion when it does not occur), and the scored continuation is
	// the marker followed by the reference. Empty: the reference follows
	// the whole completion directly.
	Marker string `json:"marker"`
	// Field holds the reference answer (default "answer"); a list scores
	// its first element.
	Field string `json:"field"`
}

// DefaultLikelihoodParams returns likelihood's defaults.
func DefaultLikelihoodParams() LikelihoodParams {
	return LikelihoodParams{Mode: "logprob", Field: "answer"}
}

// Likelihood scores a completion by how likely the policy finds the
// reference answer after the completion's reasoning: log π(marker +
// answer | prompt, reasoning), teacher-forced (the likelihood-of-reference
// reward found the most robust across setups in "Likelihood-Based Rewards
// for Chain-of-Thought Reasoning"). It needs no verifier, only a reference
// answer, and the policy (WithPolicy). Range: (−∞, 0] for logprob and
// mean_logprob, [0, 1] for prob.
type Likelihood struct {
	p      LikelihoodParams
	policy Policy
}

// NewLikelihood validates params and builds the reward.
func NewLikelihood(p LikelihoodParams) (*Likelihood, error) {
	switch p.Mode {
	case "logprob", "mean_logprob", "prob":
	default:
		return nil, fmt.Errorf("param \"mode\": unknown %q (want logprob, mean_logprob or prob)", p.Mode)
	}
	if p.Field == "" {
		return nil, fmt.Errorf("param \"field\": must not be empty")
	}
	return &Likelihood{p: p}, nil
}

// UsePolicy implements PolicyUser.
func (l *Likelihood) UsePolicy(p Policy) { l.policy = p }

// Range implements Ranged.
func (l *Likelihood) Range() (float64, float64) {
	if l.p.Mode == "prob" {
		return 0, 1
	}
	return math.Inf(-1), 0
}

// Pair returns the context and continuation a sample is scored on: the
// prompt's ids (the sample's PromptIDs, or the encoded prompt text) and
// the reasoning's, then the marker and the reference.
func (l *Likelihood) Pair(s *Sample) (TokenPair, error) {
	refs, err := fieldStrings(s.Fields, l.p.Field)
	if err != nil {
		return TokenPair{}, err
	}
	if len(refs) == 0 || refs[0] == "" {
		return TokenPair{}, fmt.Errorf("field %q: empty reference", l.p.Field)
	}
	reasoning := s.Completion
	if l.p.Marker != "" {
		if i := strings.LastIndex(reasoning, l.p.Marker); i >= 0 {
			reasoning = reasoning[:i]
		}
	}
	ctx := s.PromptIDs
	if ctx == nil {
		ctx = l.policy.Encode(s.Prompt)
	}
	ctx = append(append([]int32(nil), ctx...), l.policy.Encode(reasoning)...)
	cont := l.policy.Encode(l.p.Marker + refs[0])
	if len(cont) == 0 {
		return TokenPair{}, fmt.Errorf("the reference %q encodes to no tokens", refs[0])
	}
	if len(ctx) == 0 {
		return TokenPair{}, errors.New("empty prompt and reasoning: nothing to condition on")
	}
	return TokenPair{Context: ctx, Continuation: cont}, nil
}

// Score implements Reward: one batched policy call for every sample.
func (l *Likelihood) Score(ctx context.Context, samples []Sample) (Scores, error) {
	if l.policy == nil {
		return Scores{}, errors.New("likelihood needs the policy being trained (it is available in rltrain run and rltrain eval)")
	}
	out := Scores{Values: make([]float64, len(samples)), Errs: make([]error, len(samples))}
	var pairs []TokenPair
	var idx []int
	for i := range samples {
		p, err := l.Pair(&samples[i])
		if err != nil {
			out.Errs[i] = err
			continue
		}
		pairs = append(pairs, p)
		idx = append(idx, i)
	}
	if len(pairs) == 0 {
		return out, nil
	}
	lps, err := l.policy.ContinuationLogProbs(ctx, pairs)
	if err != nil {
		return Scores{}, err
	}
	var tokens float64
	for j, i := range idx {
		var sum float64
		for _, lp := range lps[j] {
			sum += float64(lp)
		}
		tokens += float64(len(lps[j]))
		switch l.p.Mode {
		case "mean_logprob":
			out.Values[i] = sum / float64(len(lps[j]))
		case "prob":
			out.Values[i] = math.Exp(sum)
		default:
			out.Values[i] = sum
		}
	}
	out.Metrics = map[string]float64{"reference_tokens": tokens / float64(len(pairs))}
	return out, nil
}

func init() {
	Register("likelihood", "log-probability of the reference answer under the policy, teacher-forced after the completion's reasoning (needs no verifier)",
		func() any { p := DefaultLikelihoodParams(); return &p },
		func(p any) (Reward, error) { return NewLikelihood(*p.(*LikelihoodParams)) })
}
