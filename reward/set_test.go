package reward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Test-only reward types. "test_field" returns the sample field named by
// param key as its score; the others misbehave on purpose.
type testFieldParams struct {
	Key string `json:"key"`
}

type testField struct{ key string }

func (f testField) Score(ctx context.Context, samples []Sample) (Scores, error) {
	return PerSample(func(ctx context.Context, s *Sample) (float64, error) {
		v, ok := fieldFloat(s.Fields, f.key)
		if !ok {
			if s.Fields[f.key] == "panic" {
				panic("boom on " + s.Prompt)
			}
			return 0, fmt.Errorf("no %s", f.key)
		}
		return v, nil
	}).Score(ctx, samples)
}

type testMisbehaveParams struct {
	Mode  string   `json:"mode"` // panic, error, short, sleep
	Sleep Duration `json:"sleep"`
}

type testMisbehave struct{ p testMisbehaveParams }

func (m testMisbehave) Score(ctx context.Context, samples []Sample) (Scores, error) {
	switch m.p.Mode {
	case "panic":
		panic("whole batch")
	case "error":
		return Scores{}, errors.New("backend down")
	case "short":
		return Scores{Values: make([]float64, len(samples)-1)}, nil
	case "sleep":
		time.Sleep(time.Duration(m.p.Sleep)) // ignores ctx on purpose
	}
	return Scores{Values: make([]float64, len(samples))}, nil
}

func init() {
	Register("test_field", "test: score from a sample field", func() any { return &testFieldParams{Key: "r"} },
		func(p any) (Reward, error) { return testField{key: p.(*testFieldParams).Key}, nil })
	Register("test_misbehave", "test: misbehaving reward", func() any { return &testMisbehaveParams{} },
		func(p any) (Reward, error) { return testMisbehave{p: *p.(*testMisbehaveParams)}, nil })
}

// newSet builds the reward set of cfg.
func newSet(t *testing.T, cfg Config, opts ...Option) *Set {
	t.Helper()
	set, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// mustScore scores samples with set.
func mustScore(t *testing.T, set *Set, samples []Sample) *Result {
	t.Helper()
	res, err := set.Score(context.Background(), samples)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func f64(v float64) *float64 { return &v }

func TestNewValidation(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"unknown type", Config{Functions: []Spec{{Type: "format"}, {Name: "fmt", Type: "foramt"}}}, `reward.functions.1.type: unknown reward type "foramt"`},
		{"unknown param", Config{Functions: []Spec{{Name: "fmt", Type: "format", Params: map[string]any{"partail": true}}}}, `reward.functions.0.params.partail: unknown param "partail" of reward type format (did you mean "partial"?)`},
		{"param type", Config{Functions: []Spec{{Name: "acc", Type: "math_answer", Params: map[string]any{"tolerance": "small"}}}}, `reward.functions.0.params: param "tolerance": cannot use a string`},
		{"invalid param value", Config{Functions: []Spec{{Name: "len", Type: "length", Params: map[string]any{"mode": "overlong"}}}}, `reward[0] "len": params "max_length", "buffer"`},
		{"duplicate name", Config{Functions: []Spec{{Type: "format"}, {Type: "format"}}}, `reward.functions.1.name: "format" is already the name of reward.functions.0`},
		{"combine", Config{Combine: "avg", Functions: []Spec{{Type: "format"}}}, `reward.combine: must be one of sum, min, got "avg"`},
		{"empty", Config{}, "no reward functions"},
		{"nan weight", Config{Functions: []Spec{{Type: "format", Weight: f64(math.NaN())}}}, "reward.functions.0.weight: must be finite"},
		{"typed params ok", Config{Functions: []Spec{{Type: "length", Params: LengthParams{Mode: "overlong", Unit: "chars", MaxLength: 10, Buffer: 5}}}}, ""},
		{"typed params pointer ok", Config{Functions: []Spec{{Type: "format", Params: &FormatParams{Mode: "regex", Pattern: "a+"}}}}, ""},
		{"wrong typed params", Config{Functions: []Spec{{Type: "format", Params: LengthParams{}}}}, "want a mapping or reward.FormatParams"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.cfg)
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, c.wantErr)
			}
		})
	}
}

type logSink struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logSink) log(m string) { l.mu.Lock(); l.msgs = append(l.msgs, m); l.mu.Unlock() }

func TestIsolation(t *testing.T) {
	samples := []Sample{
		{Prompt: "p0", Fields: map[string]any{"r": 1.0}},
		{Prompt: "p1", Fields: map[string]any{"r": math.NaN()}},
		{Prompt: "p2", Fields: map[string]any{"r": math.Inf(1)}},
		{Prompt: "p3", Fields: map[string]any{"r": "panic"}},
		{Prompt: "p4", Fields: map[string]any{}},
		{Prompt: "p5", Fields: map[string]any{}},
		{Prompt: "p6", Fields: map[string]any{"r": 0.5}},
	}
	sink := &logSink{}
	set := newSet(t, Config{Functions: []Spec{
		{Name: "good", Type: "test_field", Weight: f64(2)},
		{Name: "fb", Type: "test_field", Fallback: "-1"},
	}}, WithLogger(sink.log))
	res := mustScore(t, set, samples)
	wantFailed := []bool{false, true, true, true, true, true, false}
	for i, w := range wantFailed {
		if res.Failed[0][i] != w || res.Excluded[i] != w {
			t.Errorf("sample %d: failed %v excluded %v, want %v", i, res.Failed[0][i], res.Excluded[i], w)
		}
		if w && (!math.IsNaN(res.Total[i]) || !math.IsNaN(res.Components[0][i]) || res.Components[1][i] != -1) {
			t.Errorf("sample %d: total %v comps %v %v, want NaN, NaN, fallback -1", i, res.Total[i], res.Components[0][i], res.Components[1][i])
		}
	}
	if res.Total[0] != 3 || res.Total[6] != 1.5 {
		t.Errorf("totals %v, want 2*1+1 and 2*0.5+0.5", res.Total)
	}
	if got := res.Metrics["reward/errors/good"]; got != 5 {
		t.Errorf("reward/errors/good = %v, want 5", got)
	}
	if got := res.Metrics["reward/excluded"]; got != 5 {
		t.Errorf("reward/excluded = %v, want 5", got)
	}
	if got := res.Metrics["reward"]; got != 2.25 {
		t.Errorf("reward = %v, want 2.25 (mean over valid samples)", got)
	}
	// Distinct messages: NaN, +Inf, panic, "no r" for each of the 2 rewards;
	// samples 4 and 5 share one message.
	if len(sink.msgs) != 8 {
		t.Errorf("logged %d messages, want 8 distinct ones:\n%s", len(sink.msgs), strings.Join(sink.msgs, "\n"))
	}
	// A second batch with the same failures logs nothing new.
	if _, err := set.Score(context.Background(), samples); err != nil {
		t.Fatal(err)
	}
	if len(sink.msgs) != 8 {
		t.Errorf("second batch logged again: %d messages", len(sink.msgs))
	}
}

func TestBatchFailures(t *testing.T) {
	samples := []Sample{{Fields: map[string]any{"r": 1.0}}, {Fields: map[string]any{"r": 2.0}}}
	for _, mode := range []string{"panic", "error", "short"} {
		t.Run(mode, func(t *testing.T) {
			sink := &logSink{}
			set := newSet(t, Config{Functions: []Spec{
				{Name: "ok", Type: "test_field"},
				{Name: "bad", Type: "test_misbehave", Params: map[string]any{"mode": mode}, Fallback: "0"},
			}}, WithLogger(sink.log))
			res := mustScore(t, set, samples)
			if res.Metrics["reward/errors/bad"] != 2 || res.Excluded[0] || res.Total[1] != 2 {
				t.Errorf("metrics %v total %v excluded %v", res.Metrics, res.Total, res.Excluded)
			}
			if len(sink.msgs) != 1 {
				t.Errorf("want one log line, got %q", sink.msgs)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	samples := []Sample{{Fields: map[string]any{"r": 1.0}}}
	set := newSet(t, Config{Functions: []Spec{
		{Name: "ok", Type: "test_field"},
		{Name: "slow", Type: "test_misbehave", Timeout: 50 * time.Millisecond,
			Params: map[string]any{"mode": "sleep", "sleep": "1h"}},
	}}, WithLogger(func(string) {}))
	var res *Result
	within(t, hangLimit, "Score with a 50ms timeout on a reward sleeping 1h", func() { res = mustScore(t, set, samples) })
	if !res.Failed[1][0] || !res.Excluded[0] || res.Metrics["reward/errors/slow"] != 1 {
		t.Errorf("want the slow reward's sample failed and excluded: %+v", res)
	}
	// The abandoned call is still running: the next batch skips the reward
	// instead of running it twice at once.
	if res = mustScore(t, set, samples); !res.Failed[1][0] {
		t.Errorf("second call should be skipped while the first still runs")
	}
}

func TestCancelledContext(t *testing.T) {
	set := newSet(t, Config{Functions: []Spec{{Type: "test_field"}}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := set.Score(ctx, []Sample{{}}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// Property: the combined total is linear in the weights, and Components do
// not depend on them.
func TestCombinationLinearInWeights(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const n = 50
	samples := make([]Sample, n)
	for i := range samples {
		samples[i] = Sample{Group: i / 5, Fields: map[string]any{"a": rng.Float64()*4 - 2, "b": rng.Float64(), "c": rng.NormFloat64()}}
	}
	score := func(w [3]float64, mode string) *Result {
		set := newSet(t, Config{Combine: mode, Functions: []Spec{
			{Name: "a", Type: "test_field", Weight: &w[0], Params: map[string]any{"key": "a"}},
			{Name: "b", Type: "test_field", Weight: &w[1], Params: map[string]any{"key": "b"}},
			{Name: "c", Type: "test_field", Weight: &w[2], Params: map[string]any{"key": "c"}},
		}})
		res := mustScore(t, set, samples)
		return res
	}
	const tol = 1e-12
	for trial := 0; trial < 20; trial++ {
		var w1, w2 [3]float64
		for k := range w1 {
			w1[k], w2[k] = rng.NormFloat64(), rng.NormFloat64()
		}
		alpha, beta := rng.NormFloat64(), rng.NormFloat64()
		var wc [3]float64
		for k := range wc {
			wc[k] = alpha*w1[k] + beta*w2[k]
		}
		r1, r2, rc := score(w1, ""), score(w2, ""), score(wc, "")
		for i := 0; i < n; i++ {
			want := alpha*r1.Total[i] + beta*r2.Total[i]
			if math.Abs(rc.Total[i]-want) > tol*(1+math.Abs(want)) {
				t.Fatalf("trial %d sample %d: total %v, want %v", trial, i, rc.Total[i], want)
			}
			direct := 0.0
			for k := range wc {
				direct += wc[k] * rc.Components[k][i]
				if rc.Components[k][i] != r1.Components[k][i] {
					t.Fatalf("components depend on weights")
				}
			}
			if math.Abs(rc.Total[i]-direct) > tol*(1+math.Abs(direct)) {
				t.Fatalf("total %v != Σ w r = %v", rc.Total[i], direct)
			}
		}
	}
	// Ensemble minimum.
	w := [3]float64{1, 1, 1}
	rm := score(w, CombineMin)
	for i := 0; i < n; i++ {
		want := math.Min(rm.Components[0][i], math.Min(rm.Components[1][i], rm.Components[2][i]))
		if rm.Total[i] != want {
			t.Fatalf("min: sample %d: %v, want %v", i, rm.Total[i], want)
		}
	}
}

func TestShaping(t *testing.T) {
	samples := []Sample{
		{Group: 0, Fields: map[string]any{"r": 1.0, "ref": 1.0}},
		{Group: 0, Fields: map[string]any{"r": 3.0, "ref": 0.0}},
		{Group: 1, Fields: map[string]any{"r": 100.0, "ref": 0.0}},
	}
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	cases := []struct {
		name string
		sh   Shaping
		want []float64
	}{
		{"constant", Shaping{Ref: Ref{Value: 1}}, []float64{0.5, sig(2), sig(99)}},
		{"scale", Shaping{Ref: Ref{Value: 1}, Scale: 2}, []float64{0.5, sig(1), sig(49.5)}},
		{"field", Shaping{RefField: "ref"}, []float64{0.5, sig(3), sig(100)}},
		{"group mean", Shaping{Ref: Ref{GroupMean: true}}, []float64{sig(-1), sig(1), 0.5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sh := c.sh
			set := newSet(t, Config{Functions: []Spec{{Type: "test_field", Weight: f64(2), Shaping: &sh}}})
			res := mustScore(t, set, samples)
			for i, w := range c.want {
				if math.Abs(res.Components[0][i]-w) > 1e-12 || math.Abs(res.Total[i]-2*w) > 1e-12 {
					t.Errorf("sample %d: component %v total %v, want %v and %v", i, res.Components[0][i], res.Total[i], w, 2*w)
				}
				if res.Components[0][i] <= 0 || res.Components[0][i] > 1 {
					t.Errorf("shaped value %v outside (0, 1]", res.Components[0][i])
				}
			}
		})
	}
	// Shaping on the total.
	set := newSet(t, Config{Shaping: &Shaping{Ref: Ref{Value: 1}}, Functions: []Spec{{Type: "test_field"}}})
	res, _ := set.Score(context.Background(), samples[:1])
	if res.Total[0] != 0.5 {
		t.Errorf("total shaping: %v, want 0.5", res.Total[0])
	}
}

// hangRelease holds a channel that TestPerSampleHang closes at its end to
// free the goroutine it leaves blocked.
var hangRelease atomic.Pointer[chan struct{}]

func init() {
	Register("test_hang", "test: blocks on samples with field hang", func() any { return &struct{}{} },
		func(any) (Reward, error) {
			return PerSample(func(ctx context.Context, s *Sample) (float64, error) {
				if _, ok := s.Fields["hang"]; ok {
					<-*hangRelease.Load() // ignores ctx on purpose
				}
				return 1, nil
			}), nil
		})
}

// A sample that hangs costs only itself: the other samples keep their
// scores when the reward's deadline passes.
func TestPerSampleHang(t *testing.T) {
	release := make(chan struct{})
	hangRelease.Store(&release)
	defer close(release)
	samples := make([]Sample, 200)
	for i := range samples {
		samples[i].Fields = map[string]any{}
	}
	samples[3].Fields["hang"] = true
	set := newSet(t, Config{Functions: []Spec{{Name: "h", Type: "test_hang", Timeout: 100 * time.Millisecond}}}, WithLogger(func(string) {}))
	var res *Result
	within(t, hangLimit, "Score with a 100ms timeout on a hanging sample", func() { res = mustScore(t, set, samples) })
	for i := range samples {
		if res.Failed[0][i] != (i == 3) {
			t.Errorf("sample %d: failed=%v", i, res.Failed[0][i])
		}
	}
	if res.Metrics["reward/errors/h"] != 1 {
		t.Errorf("errors = %v, want 1", res.Metrics["reward/errors/h"])
	}
}

func TestSetState(t *testing.T) {
	cfg := Config{Functions: []Spec{{Name: "pc", Type: "partial_credit"}, {Name: "fmt", Type: "format"}}}
	tests := []any{map[string]any{"type": "contains", "value": "a"}, map[string]any{"type": "contains", "value": "b"}}
	samples := []Sample{
		{Prompt: "q", Completion: "a", Fields: map[string]any{"tests": tests}},
		{Prompt: "q", Completion: "a b", Fields: map[string]any{"tests": tests}},
	}
	s1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Score(context.Background(), samples); err != nil {
		t.Fatal(err)
	}
	state, err := s1.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := state["pc"]; !ok || len(state) != 1 {
		t.Fatalf("state keys %v, want only pc", state)
	}
	s2, _ := New(cfg)
	if err := s2.UnmarshalState(state); err != nil {
		t.Fatal(err)
	}
	r1, _ := s1.Score(context.Background(), samples)
	r2, _ := s2.Score(context.Background(), samples)
	for i := range samples {
		if r1.Total[i] != r2.Total[i] {
			t.Errorf("sample %d: restored %v, original %v", i, r2.Total[i], r1.Total[i])
		}
	}
	if err := s2.UnmarshalState(map[string][]byte{"gone": nil}); err == nil {
		t.Error("state for an unknown reward accepted")
	}
	if err := s2.UnmarshalState(map[string][]byte{"fmt": nil}); err == nil {
		t.Error("state for a stateless reward accepted")
	}
}

func TestTypesListed(t *testing.T) {
	want := []string{"arithmetic", "bleu", "checklist", "countdown", "exact_match", "external", "format", "length", "math_answer", "partial_credit"}
	have := map[string]bool{}
	for _, tp := range Types() {
		have[tp[0]] = tp[1] != ""
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("type %q not registered with a doc line", w)
		}
	}
}

// Back-to-back batches must never see the previous, finished call as still
// running (regression: the busy flag was cleared after the result was
// handed over).
func TestBackToBackBatches(t *testing.T) {
	sink := &logSink{}
	set := newSet(t, Config{Functions: []Spec{{Type: "format"}, {Type: "test_field"}, {Name: "f2", Type: "format"}, {Name: "t2", Type: "test_field"}}}, WithLogger(sink.log))
	samples := []Sample{{Completion: "<think>a</think><answer>1</answer>", Fields: map[string]any{"r": 1.0}}}
	for i := 0; i < 20000; i++ {
		res := mustScore(t, set, samples)
		if res.Excluded[0] {
			t.Fatalf("batch %d failed: %q", i, sink.msgs)
		}
	}
}
