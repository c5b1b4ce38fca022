package reward

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode"
)

// BLEU follows sacrebleu's definitions and defaults: 13a tokenisation,
// n-grams up to 4, counts clipped by the maximum over references, the
// closest reference length for the brevity penalty (shorter on ties),
// smoothing "exp" (the mteval-v13a method), effective order for sentence
// BLEU and not for corpus BLEU. Scores are on sacrebleu's 0–100 scale;
// the reward divides by 100.

// BLEUOptions selects BLEU variants; the zero value is sacrebleu's default.
type BLEUOptions struct {
	Smooth      string   // "exp" (default), "none", "floor", "add-k"
	SmoothValue *float64 // floor: default 0.1; add-k: default 1
	Tokenize    string   // "13a" (default) or "none" (split on spaces)
	Lowercase   bool
	MaxOrder    int // default 4
}

func (o BLEUOptions) validate() error {
	switch o.Smooth {
	case "", "exp", "none", "floor", "add-k":
	default:
		return fmt.Errorf("unknown smoothing %q (want exp, none, floor or add-k)", o.Smooth)
	}
	switch o.Tokenize {
	case "", "13a", "none":
	default:
		return fmt.Errorf("unknown tokenizer %q (want 13a or none)", o.Tokenize)
	}
	if o.MaxOrder < 0 || o.MaxOrder > 10 {
		return fmt.Errorf("max order must be in [1, 10], got %d", o.MaxOrder)
	}
	return nil
}

// BLEUStats are the sufficient statistics of BLEU; corpus BLEU sums them.
type BLEUStats struct {
	Correct []float64 // matched n-grams per order
	Total   []float64 // hypothesis n-grams per order
	SysLen  float64
	RefLen  float64
}

var (
	tok13aPunct    = regexp.MustCompile("([\\{-\\~\\[-\\x60 -\\&\\(-\\+\\:-\\@\\/])")
	tok13aDotLeft  = regexp.MustCompile(`([^0-9])([\.,])`)
	tok13aDotRight = regexp.MustCompile(`([\.,])([^0-9])`)
	tok13aDash     = regexp.MustCompile(`([0-9])(-)`)
	tok13aEntities = strings.NewReplacer("&quot;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">")
)

// tokenize13a is the mteval-v13a tokenizer as sacrebleu implements it.
func tokenize13a(line string) []string {
	line = strings.ReplaceAll(line, "<skipped>", "")
	line = strings.ReplaceAll(line, "-\n", "")
	line = strings.ReplaceAll(line, "\n", " ")
	if strings.Contains(line, "&") {
		line = tok13aEntities.Replace(line)
	}
	line = " " + line + " "
	line = tok13aPunct.ReplaceAllString(line, " ${1} ")
	line = tok13aDotLeft.ReplaceAllString(line, "${1} ${2} ")
	line = tok13aDotRight.ReplaceAllString(line, " ${1} ${2}")
	line = tok13aDash.ReplaceAllString(line, "${1} ${2} ")
	return pyFields(line)
}

// pyFields splits like Python's str.split(): its whitespace also includes
// the separators U+001C..U+001F.
func pyFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
	})
}

func (o BLEUOptions) tokens(s string) []string {
	if o.Lowercase {
		s = strings.ToLower(s)
	}
	if o.Tokenize == "none" {
		return pyFields(s)
	}
	return tokenize13a(s)
}

func (o BLEUOptions) order() int {
	if o.MaxOrder == 0 {
		return 4
	}
	return o.MaxOrder
}

func ngramCounts(toks []string, maxOrder int) map[string]int {
	counts := make(map[string]int, len(toks)*maxOrder)
	for n := 1; n <= maxOrder; n++ {
		for i := 0; i+n <= len(toks); i++ {
			counts[strings.Join(toks[i:i+n], " ")]++
		}
	}
	return counts
}

// SentenceStats computes BLEU statistics for one hypothesis.
func (o BLEUOptions) SentenceStats(hyp string, refs []string) BLEUStats {
	N := o.order()
	h := o.tokens(hyp)
	st := BLEUStats{Correct: make([]float64, N), Total: make([]float64, N), SysLen: float64(len(h))}
	maxRef := map[string]int{}
	closest := -1
	for _, r := range refs {
		rt := o.tokens(r)
		d := absInt(len(h) - len(rt))
		if closest < 0 || d < absInt(len(h)-closest) || (d == absInt(len(h)-closest) && len(rt) < closest) {
			closest = len(rt)
		}
		for g, c := range ngramCounts(rt, N) {
			if c > maxRef[g] {
				maxRef[g] = c
			}
		}
	}
	if closest > 0 {
		st.RefLen = float64(closest)
	}
	for g, c := range ngramCounts(h, N) {
		n := strings.Count(g, " ")
		st.Total[n] += float64(c)
		st.Correct[n] += float64(min(c, maxRef[g]))
	}
	return st
}

// Score computes BLEU (0–100) from statistics.
func (o BLEUOptions) Score(st BLEUStats, effectiveOrder bool) float64 {
	N := len(st.Correct)
	correct := append([]float64(nil), st.Correct...)
	total := append([]float64(nil), st.Total...)
	sv := 0.0
	switch o.Smooth {
	case "floor":
		sv = 0.1
	case "add-k":
		sv = 1
	}
	if o.SmoothValue != nil {
		sv = *o.SmoothValue
	}
	bp := 1.0
	if st.SysLen < st.RefLen {
		bp = 0
		if st.SysLen > 0 {
			bp = math.Exp(1 - st.RefLen/st.SysLen)
		}
	}
	any := false
	for _, c := range correct {
		any = any || c > 0
	}
	if !any {
		return 0
	}
	prec := make([]float64, N)
	smoothMteval := 1.0
	effOrder := N
	for n := 1; n <= N; n++ {
		if o.Smooth == "add-k" && n > 1 {
			correct[n-1] += sv
			total[n-1] += sv
		}
		if total[n-1] == 0 {
			break
		}
		if effectiveOrder {
			effOrder = n
		}
		switch {
		case correct[n-1] > 0:
			prec[n-1] = 100 * correct[n-1] / total[n-1]
		case o.Smooth == "" || o.Smooth == "exp":
			smoothMteval *= 2
			prec[n-1] = 100 / (smoothMteval * total[n-1])
		case o.Smooth == "floor":
			prec[n-1] = 100 * sv / total[n-1]
		}
	}
	sum := 0.0
	for _, p := range prec[:effOrder] {
		if p == 0 {
			sum += -9999999999 // sacrebleu's log(0)
		} else {
			sum += math.Log(p)
		}
	}
	return bp * math.Exp(sum/float64(effOrder))
}

// SentenceBLEU is sacrebleu.sentence_bleu: effective order on.
func (o BLEUOptions) SentenceBLEU(hyp string, refs []string) float64 {
	return o.Score(o.SentenceStats(hyp, refs), true)
}

// CorpusBLEU is sacrebleu.corpus_bleu; refs[i] are hypothesis i's
// references.
func (o BLEUOptions) CorpusBLEU(hyps []string, refs [][]string) float64 {
	N := o.order()
	sum := BLEUStats{Correct: make([]float64, N), Total: make([]float64, N)}
	for i, h := range hyps {
		st := o.SentenceStats(h, refs[i])
		sum.add(st)
	}
	return o.Score(sum, false)
}

func (s *BLEUStats) add(o BLEUStats) {
	for n := range s.Correct {
		s.Correct[n] += o.Correct[n]
		s.Total[n] += o.Total[n]
	}
	s.SysLen += o.SysLen
	s.RefLen += o.RefLen
}

// BLEUParams configures bleu.
type BLEUParams struct {
	// Field holds the reference(s): a string or a list. Default
	// "references".
	Field string `json:"field"`
	// Extract locates the hypothesis: default [answer_tag, full] after
	// dropping the <think> section.
	Extract     []string `json:"extract"`
	IgnoreThink bool     `json:"ignore_think"`
	// sacrebleu options; defaults as sacrebleu.
	Smooth      string   `json:"smooth_method"`
	SmoothValue *float64 `json:"smooth_value"`
	Tokenize    string   `json:"tokenize"`
	Lowercase   bool     `json:"lowercase"`
}

// DefaultBLEUParams returns bleu's defaults.
func DefaultBLEUParams() BLEUParams {
	return BLEUParams{Field: "references", Extract: []string{ExtractAnswerTag, ExtractFull}, IgnoreThink: true, Smooth: "exp", Tokenize: "13a"}
}

// BLEU scores sentence BLEU/100 against the references. Range [0, 1].
// The batch's corpus BLEU/100 is reported as metric corpus_bleu.
type BLEU struct {
	p   BLEUParams
	opt BLEUOptions
}

// NewBLEU validates params and builds the reward.
func NewBLEU(p BLEUParams) (*BLEU, error) {
	opt := BLEUOptions{Smooth: p.Smooth, SmoothValue: p.SmoothValue, Tokenize: p.Tokenize, Lowercase: p.Lowercase}
	if err := opt.validate(); err != nil {
		return nil, err
	}
	if err := checkExtract(p.Extract, ExtractAnswerTag, ExtractBoxed, ExtractFirstLine, ExtractLastLine, ExtractFull); err != nil {
		return nil, err
	}
	return &BLEU{p: p, opt: opt}, nil
}

// Range implements Ranged.
func (b *BLEU) Range() (float64, float64) { return 0, 1 }

// Score implements Reward.
func (b *BLEU) Score(ctx context.Context, samples []Sample) (Scores, error) {
	stats := make([]BLEUStats, len(samples))
	ok := make([]bool, len(samples))
	out := runEach(ctx, len(samples), func(i int) (float64, error) {
		s := &samples[i]
		refs, err := fieldStrings(s.Fields, b.p.Field)
		if err != nil {
			return 0, err
		}
		text := validUTF8(s.Completion)
		if b.p.IgnoreThink {
			text = stripThink(text)
		}
		hyp, _ := extractAnswer(text, b.p.Extract, PickLast)
		stats[i] = b.opt.SentenceStats(hyp, refs)
		ok[i] = true
		// exp(mean log 100) can exceed 100 by an ulp.
		return min(b.opt.Score(stats[i], true)/100, 1), nil
	})
	N := b.opt.order()
	sum := BLEUStats{Correct: make([]float64, N), Total: make([]float64, N)}
	for i := range stats {
		// Skip failed samples without reading their entries, which an
		// abandoned (timed-out) evaluation may still be writing.
		if !out.failed(i) && ok[i] {
			sum.add(stats[i])
		}
	}
	out.Metrics = map[string]float64{"corpus_bleu": b.opt.Score(sum, false) / 100}
	return out, nil
}

func init() {
	Register("bleu", "sentence BLEU against reference answers (sacrebleu defaults), scaled to [0, 1]",
		func() any { p := DefaultBLEUParams(); return &p },
		func(p any) (Reward, error) { return NewBLEU(*p.(*BLEUParams)) })
}
