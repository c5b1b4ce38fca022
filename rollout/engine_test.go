package rollout

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/model"
)

// logprobTol bounds |rollout log-prob − trainer recomputation| relative to
// max(1, |log-prob|).
const logprobTol = 1e-5

func generate(t *testing.T, m *model.Model, cfg Config, prompts []Prompt, detok Detokenizer) ([]Completion, Stats) {
	t.Helper()
	e, err := New(m, cfg, detok)
	if err != nil {
		t.Fatal(err)
	}
	comps, st, err := e.Generate(prompts)
	if err != nil {
		t.Fatal(err)
	}
	if free := e.Cache().FreeBlocks(); free != e.Cache().NumBlocks {
		t.Fatalf("%d of %d cache blocks still in use after Generate", e.Cache().NumBlocks-free, e.Cache().NumBlocks)
	}
	return comps, st
}

// TestLogprobsMatchTrainerRecompute checks that every returned log-prob
// equals the trainer's full-forward recomputation at the same inverse
// temperature (≤ 1e-5 relative to max(1, |log-prob|)), with filters, with
// the penalty, greedy, with late joiners and in batch-invariant mode.
func TestLogprobsMatchTrainerRecompute(t *testing.T) {
	m := newModel(t, tinyConfig(), 2, 1)
	ids := randomPrompts(5, 3, 21, m.Cfg.Vocab, 1)
	cases := []struct {
		name string
		mut  func(*Config)
	}{
		{"temperature 0.7", func(c *Config) { c.Temperature = 0.7 }},
		{"temperature 1 top_p min_p", func(c *Config) { c.TopP, c.MinP = 0.9, 0.05 }},
		{"top_k penalty", func(c *Config) { c.Temperature, c.TopK, c.RepetitionPenalty = 1.3, 20, 1.2 }},
		{"greedy", func(c *Config) { c.Temperature = 0 }},
		// Completions join a running batch as others finish.
		{"max_batch 4", func(c *Config) { c.MaxBatch, c.StopTokenIDs = 4, []int{7, 8, 9} }},
		{"batch_invariant", func(c *Config) { c.MaxBatch, c.BatchInvariant = 5, true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.GroupSize, cfg.MaxNewTokens, cfg.BlockSize, cfg.KVCacheMB = 3, 40, 4, 1
			tc.mut(&cfg)
			comps, _ := generate(t, m, cfg, Prompts(ids), nil)
			want := recompute(t, m, ids, comps, float32(cfg.Sampling.InvTemp()))
			worst := 0.0
			for i, c := range comps {
				if len(c.Logprobs) != len(c.IDs) || len(c.IDs) == 0 {
					t.Fatalf("completion %d: %d ids, %d log-probs", i, len(c.IDs), len(c.Logprobs))
				}
				worst = max(worst, maxAbsDiff(c.Logprobs, want[i]))
			}
			t.Logf("max |Δ log-prob| / max(1, |log-prob|) = %.2g over %d completions", worst, len(comps))
			if worst > logprobTol {
				t.Fatalf("log-probs differ from the recomputation by %.3g > %g", worst, logprobTol)
			}
		})
	}
}

func sameCompletions(t *testing.T, label string, got, want []Completion) {
	t.Helper()
	sameCompletionsTol(t, label, got, want, logprobTol)
}

// sameCompletionsTol requires equal ids and finish reasons, and log-probs
// within tol (relative to max(1, |log-prob|)); it returns the largest
// log-prob difference.
func sameCompletionsTol(t *testing.T, label string, got, want []Completion, tol float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d completions, want %d", label, len(got), len(want))
	}
	worst := 0.0
	for i := range want {
		g, w := got[i], want[i]
		if g.Prompt != w.Prompt || g.Sample != w.Sample || g.Finish != w.Finish || !slices.Equal(g.IDs, w.IDs) {
			t.Fatalf("%s: completion %d (prompt %d sample %d) differs:\n got %v %s\nwant %v %s", label, i, w.Prompt, w.Sample, g.IDs, g.Finish, w.IDs, w.Finish)
		}
		d := maxAbsDiff(g.Logprobs, w.Logprobs)
		if d > tol {
			t.Fatalf("%s: completion %d log-probs differ by %.3g", label, i, d)
		}
		worst = max(worst, d)
	}
	return worst
}

// TestReproducibleAcrossBatchingAndThreads generates the same 16 prompts
// × 4 samples with max_batch 1, 7 and 64, with 1 and 2 threads, one
// prompt per call, and under a KV budget that admits only a few
// completions at a time: every completion must be identical.
func TestReproducibleAcrossBatchingAndThreads(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GroupSize, cfg.MaxNewTokens, cfg.Temperature, cfg.TopP, cfg.Seed = 4, 30, 1.1, 0.95, 7
	cfg.StopTokenIDs = []int{5} // make lengths vary
	ids := randomPrompts(16, 2, 40, tinyConfig().Vocab, 2)
	var ref []Completion
	for _, threads := range []int{2, 1} {
		m := newModel(t, tinyConfig(), threads, 3)
		for _, maxBatch := range []int{64, 7, 1} {
			c := cfg
			c.MaxBatch = maxBatch
			comps, st := generate(t, m, c, Prompts(ids), nil)
			label := fmt.Sprintf("threads %d max_batch %d", threads, maxBatch)
			if ref == nil {
				ref = comps
				lengths := map[FinishReason]int{}
				for _, c := range comps {
					lengths[c.Finish]++
				}
				t.Logf("%s: %d steps, max %d running, finish reasons %v", label, st.Steps, st.MaxRunning, lengths)
				if lengths[FinishEOS] == 0 || lengths[FinishLength] == 0 {
					t.Fatalf("want a mix of finish reasons, got %v", lengths)
				}
				continue
			}
			if st.MaxRunning > maxBatch {
				t.Fatalf("%s: %d running at once", label, st.MaxRunning)
			}
			sameCompletions(t, label, comps, ref)
		}
	}
	m := newModel(t, tinyConfig(), 2, 3)
	// One prompt per call: Index keeps each prompt's random streams.
	for i := range ids {
		comps, _ := generate(t, m, cfg, []Prompt{{IDs: ids[i], Index: uint64(i)}}, nil)
		for j := range comps {
			comps[j].Prompt = i
		}
		sameCompletions(t, fmt.Sprintf("prompt %d alone", i), comps, ref[i*cfg.GroupSize:(i+1)*cfg.GroupSize])
	}
	// A tight budget: 1 MiB holds 2048 positions of this model; long
	// completions of long prompts force the scheduler to admit fewer.
	long := randomPrompts(12, 150, 200, tinyConfig().Vocab, 4)
	c := cfg
	c.MaxNewTokens, c.StopTokenIDs = 120, nil
	want, wantSt := generate(t, m, c, Prompts(long), nil)
	c.KVCacheMB = 1
	got, st := generate(t, m, c, Prompts(long), nil)
	t.Logf("1 MiB cache: max %d running (%d with 256 MiB), peak %d blocks", st.MaxRunning, wantSt.MaxRunning, st.PeakBlocks)
	if st.MaxRunning >= wantSt.MaxRunning {
		t.Fatalf("a 1 MiB cache still ran %d completions at once", st.MaxRunning)
	}
	sameCompletions(t, "1 MiB cache", got, want)
}

// TestPrefixSharedAcrossGroup checks that the group shares one prefill:
// prefill tokens equal the prompt lengths, not G times them.
func TestPrefixSharedAcrossGroup(t *testing.T) {
	m := newModel(t, tinyConfig(), 2, 1)
	ids := randomPrompts(3, 10, 30, m.Cfg.Vocab, 5)
	cfg := DefaultConfig()
	cfg.GroupSize, cfg.MaxNewTokens = 8, 5
	_, st := generate(t, m, cfg, Prompts(ids), nil)
	total := 0
	for _, p := range ids {
		total += len(p)
	}
	if st.PrefillTokens != total || st.GeneratedTokens > 3*8*5 || st.MaxRunning != 24 {
		t.Fatalf("prefill tokens %d (want %d), generated %d, max running %d", st.PrefillTokens, total, st.GeneratedTokens, st.MaxRunning)
	}
}

// letters is a detokenizer that writes token id i as one byte 'a'+i%26
// and treats id 2 (EOS) as special.
type letters struct{}

func (letters) Decode(ids []int32, skipSpecial bool) string {
	var b strings.Builder
	for _, id := range ids {
		if id == 2 && skipSpecial {
			continue
		}
		b.WriteByte(byte('a' + id%26))
	}
	return b.String()
}

func TestStopConditions(t *testing.T) {
	m := newModel(t, tinyConfig(), 2, 1)
	ids := randomPrompts(6, 3, 12, m.Cfg.Vocab, 6)
	base := DefaultConfig()
	base.GroupSize, base.MaxNewTokens, base.Temperature = 4, 60, 1.5
	free, _ := generate(t, m, base, Prompts(ids), letters{})
	// Pick a two-letter string that occurs in some completions' text.
	var stop string
	for _, c := range free {
		if len(c.Text) > 10 {
			stop = c.Text[6:8]
			break
		}
	}
	if stop == "" {
		t.Fatal("no completion long enough to pick a stop string")
	}
	for _, include := range []bool{false, true} {
		cfg := base
		cfg.Stop, cfg.IncludeStopStr = []string{"zzzz", stop}, include
		comps, _ := generate(t, m, cfg, Prompts(ids), letters{})
		stopped := 0
		for i, c := range comps {
			f := free[i]
			full := letters{}.Decode(c.IDs, true)
			// The completion is the free one cut at the first stop.
			at := strings.Index(letters{}.Decode(f.IDs, true), stop)
			switch {
			case c.Finish == FinishStop:
				stopped++
				wantText := full[:at]
				if include {
					wantText = full[:at+len(stop)]
				}
				if c.Text != wantText || !strings.HasSuffix(full, stop) || strings.Index(full, stop) != len(full)-len(stop) {
					t.Fatalf("completion %d: text %q from %q, stop %q (include %v)", i, c.Text, full, stop, include)
				}
				if !slices.Equal(c.IDs, f.IDs[:len(c.IDs)]) {
					t.Fatalf("completion %d: ids are not a prefix of the unstopped ones", i)
				}
			case at >= 0:
				t.Fatalf("completion %d ends with %s although %q occurs in its text", i, c.Finish, stop)
			default:
				sameCompletions(t, "unstopped", []Completion{c}, []Completion{f})
			}
		}
		if stopped == 0 {
			t.Fatal("no completion stopped")
		}
	}
	for i, c := range free {
		last := c.IDs[len(c.IDs)-1]
		switch c.Finish {
		case FinishEOS:
			if last != 2 || slices.Contains(c.IDs[:len(c.IDs)-1], 2) {
				t.Fatalf("completion %d ends with eos but ids %v", i, c.IDs)
			}
		case FinishLength:
			if len(c.IDs) != base.MaxNewTokens || slices.Contains(c.IDs, 2) {
				t.Fatalf("completion %d: length finish with %d ids", i, len(c.IDs))
			}
		default:
			t.Fatalf("completion %d: finish %q without stop strings", i, c.Finish)
		}
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	m := newModel(t, tinyConfig(), 2, 1)
	e, err := New(m, DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		prompts []Prompt
		want    string
	}{
		{"empty", []Prompt{{IDs: nil}}, "empty"},
		{"vocab", []Prompt{{IDs: []int32{1, 97}}}, "outside the vocabulary"},
		{"positions", []Prompt{{IDs: make([]int32, 600)}}, "at most 512 positions"},
		{"samples", []Prompt{{IDs: []int32{1}, Samples: -1}}, "asks for -1 samples"},
	}
	for _, tc := range cases {
		if _, _, err := e.Generate(tc.prompts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	e.Cfg.Stop = []string{"x"}
	if _, _, err := e.Generate(Prompts([][]int32{{3}})); err == nil {
		t.Error("stop strings without a detokenizer accepted")
	}
	cfg := DefaultConfig()
	cfg.KVCacheMB, cfg.MaxNewTokens = 1, 2000
	m2 := newModel(t, tinyConfig(), 2, 1)
	m2.Cfg.MaxPositions = 0
	e2, err := New(m2, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e2.Generate(Prompts([][]int32{make([]int32, 100)})); err == nil || !strings.Contains(err.Error(), "kv_cache_mb") {
		t.Errorf("a completion larger than the cache: got %v", err)
	}
}

// TestPerPromptSamples: a prompt may ask for its own number of
// completions; they come in prompt order, and sample s of a prompt is the
// same as with any other count, alone or beside other prompts, with or
// without per-call options.
func TestPerPromptSamples(t *testing.T) {
	m := newModel(t, tinyConfig(), 2, 3)
	cfg := DefaultConfig()
	cfg.GroupSize, cfg.MaxNewTokens, cfg.Seed, cfg.MaxBatch = 4, 20, 11, 3
	cfg.StopTokenIDs = []int{5}
	ids := randomPrompts(3, 3, 12, tinyConfig().Vocab, 8)
	ref, _ := generate(t, m, cfg, Prompts(ids), nil)
	prompts := Prompts(ids)
	prompts[0].Samples, prompts[2].Samples = 1, 3 // prompt 1: the group size
	got, st := generate(t, m, cfg, prompts, nil)
	if st.Completions != 8 || len(got) != 8 {
		t.Fatalf("%d completions (stats %d), want 1+4+3", len(got), st.Completions)
	}
	var want []Completion
	for i, n := range []int{1, 4, 3} {
		want = append(want, ref[i*4:i*4+n]...)
	}
	sameCompletions(t, "per-prompt counts", got, want)

	e, err := New(m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	sp := cfg.Sampling
	got2, _, err := e.GenerateWith(prompts[1:2], Options{GroupSize: 2, Sampling: &sp})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got2 {
		got2[i].Prompt = 1
	}
	sameCompletions(t, "group size 2 by option", got2, ref[4:6])
	if e.Cfg.GroupSize != 4 {
		t.Errorf("the call's options changed the engine's config: group size %d", e.Cfg.GroupSize)
	}
}
