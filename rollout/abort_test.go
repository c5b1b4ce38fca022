package rollout

import (
	"slices"
	"strings"
	"testing"
)

// TestMarkerGatedAbort: a completion whose text holds no marker after
// abort_horizon tokens is cut there (finish "abort") unless its own draw
// keeps it, in which case it runs to its end marked Continued; every
// other completion is exactly the one sampled without the abort rule (the
// same random streams), and evaluation-style calls (Independent) never
// abort.
func TestMarkerGatedAbort(t *testing.T) {
	m := newModel(t, tinyConfig(), 2, 3)
	ids := randomPrompts(8, 3, 12, m.Cfg.Vocab, 17)
	cfg := DefaultConfig()
	cfg.GroupSize, cfg.MaxNewTokens, cfg.Temperature, cfg.Seed = 8, 14, 1, 9
	cfg.BatchInvariant = true
	plain, _ := generate(t, m, cfg, Prompts(ids), letters{})

	const h = 4
	vowels := []string{"a", "e", "i", "o", "u"}
	marked := func(c Completion) bool {
		text := letters{}.Decode(c.IDs[:min(h, len(c.IDs))], true)
		return slices.ContainsFunc(vowels, func(v string) bool { return strings.Contains(text, v) })
	}
	cfg.AbortHorizon, cfg.AbortMarkers = h, vowels
	for _, keep := range []float64{1e-9, 0.5, 1} {
		cfg.AbortKeepProb = keep
		got, st := generate(t, m, cfg, Prompts(ids), letters{})
		aborted, continued := 0, 0
		for i, c := range got {
			p := plain[i]
			gated := len(p.IDs) > h && !marked(p) // reached the horizon without a marker
			switch {
			case c.Finish == FinishAbort:
				aborted++
				if !gated || len(c.IDs) != h || !slices.Equal(c.IDs, p.IDs[:h]) || c.Continued {
					t.Errorf("keep %g, completion %d: aborted with %v (continued %v), unaborted %v", keep, i, c.IDs, c.Continued, p.IDs)
				}
			default:
				if !slices.Equal(c.IDs, p.IDs) || !slices.Equal(c.Logprobs, p.Logprobs) || c.Finish != p.Finish {
					t.Errorf("keep %g, completion %d: %v (%s), without the abort rule %v (%s)", keep, i, c.IDs, c.Finish, p.IDs, p.Finish)
				}
				if c.Continued != gated {
					t.Errorf("keep %g, completion %d: continued %v, want %v (%q)", keep, i, c.Continued, gated, letters{}.Decode(p.IDs, true))
				}
				if c.Continued {
					continued++
				}
			}
		}
		t.Logf("keep %g: %d aborted, %d continued of %d", keep, aborted, continued, len(got))
		if st.Aborted != aborted || st.Continued != continued {
			t.Errorf("keep %g: stats say %d aborted and %d continued, the completions %d and %d", keep, st.Aborted, st.Continued, aborted, continued)
		}
		switch keep {
		case 1e-9:
			if aborted == 0 || continued != 0 {
				t.Errorf("keep 1e-9: %d aborted, %d continued", aborted, continued)
			}
		case 0.5:
			if aborted == 0 || continued == 0 {
				t.Errorf("keep 0.5: %d aborted, %d continued", aborted, continued)
			}
		case 1:
			if aborted != 0 {
				t.Errorf("keep 1: %d aborted", aborted)
			}
		}
	}

	// Evaluation samples to the end.
	e, err := New(m, cfg, letters{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.AbortKeepProb = 1e-9
	e.Cfg = cfg
	indep, _, err := e.GenerateWith(Prompts(ids), Options{Independent: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range indep {
		if c.Finish == FinishAbort || c.Continued || !slices.Equal(c.IDs, plain[i].IDs) {
			t.Fatalf("independent completion %d: %v (%s, continued %v), want %v", i, c.IDs, c.Finish, c.Continued, plain[i].IDs)
		}
	}
	noText, err := New(m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := noText.Generate(Prompts(ids[:1])); err == nil || !strings.Contains(err.Error(), "detokenizer") {
		t.Errorf("abort markers without a detokenizer: %v", err)
	}
}
