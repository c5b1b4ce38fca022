package rollout

import (
	"slices"
	"testing"
)

// TestTreeRollouts: with tree_depths [2, 5] and tree_branch 2 each prompt's
// 8 completions grow from 2 roots. Completions of one subtree share their
// tokens up to each branch depth (and their log-probs), Shared and Branch
// say how far and with whom, completions that ended before a branch are
// copies, and the tree generates fewer tokens and holds fewer KV blocks than
// 8 independent completions. A completion equals the independent
// completion of its subtree's first sample up to its branch point (the
// same random draws).
func TestTreeRollouts(t *testing.T) {
	m := newModel(t, tinyConfig(), 2, 5)
	ids := randomPrompts(6, 3, 12, m.Cfg.Vocab, 31)
	cfg := DefaultConfig()
	cfg.GroupSize, cfg.MaxNewTokens, cfg.Temperature, cfg.Seed = 8, 12, 1, 4
	cfg.BatchInvariant = true // so that shared prefixes give the same logits however rows are batched
	indep, ist := generate(t, m, cfg, Prompts(ids), nil)
	cfg.TreeDepths, cfg.TreeBranch = []int{2, 5}, 2
	tree, tst := generate(t, m, cfg, Prompts(ids), nil)
	if len(tree) != len(indep) {
		t.Fatalf("%d tree completions, %d independent", len(tree), len(indep))
	}
	for i, c := range tree {
		if c.Prompt != i/8 || c.Sample != i%8 {
			t.Fatalf("completion %d is prompt %d sample %d", i, c.Prompt, c.Sample)
		}
		s := c.Sample
		// The first sample of the subtree holding s at each depth.
		root, mid := s-s%4, s-s%2
		rc, mc := tree[i-s+root], tree[i-s+mid]
		upTo := func(n int, a, b Completion) bool {
			n = min(n, len(a.IDs), len(b.IDs))
			return slices.Equal(a.IDs[:n], b.IDs[:n]) && slices.Equal(a.Logprobs[:n], b.Logprobs[:n])
		}
		if !upTo(2, c, rc) || !upTo(5, c, mc) {
			t.Errorf("prompt %d sample %d does not share its subtree's prefix: %v, %v, %v", c.Prompt, s, c.IDs, rc.IDs, mc.IDs)
		}
		if !upTo(2, c, indep[i-s+root]) {
			t.Errorf("prompt %d sample %d: its first 2 tokens differ from independent sample %d's", c.Prompt, s, root)
		}
		switch {
		case len(c.IDs) > 5:
			if c.Shared != 5 || c.Branch != mid {
				t.Errorf("prompt %d sample %d (%d tokens): shared %d branch %d, want 5 and %d", c.Prompt, s, len(c.IDs), c.Shared, c.Branch, mid)
			}
		case len(c.IDs) > 2:
			// Ended between the branch points: a copy of its mid subtree.
			if c.Shared != len(c.IDs) || !upTo(len(c.IDs), c, mc) || len(mc.IDs) != len(c.IDs) {
				t.Errorf("prompt %d sample %d ended at %d: shared %d, not a copy of sample %d", c.Prompt, s, len(c.IDs), c.Shared, mid)
			}
		default:
			if c.Shared != len(c.IDs) || len(rc.IDs) != len(c.IDs) {
				t.Errorf("prompt %d sample %d ended at %d: shared %d, not a copy of sample %d", c.Prompt, s, len(c.IDs), c.Shared, root)
			}
		}
	}
	t.Logf("independent: %d generated tokens, peak %d blocks; tree: %d tokens, peak %d blocks", ist.GeneratedTokens, ist.PeakBlocks, tst.GeneratedTokens, tst.PeakBlocks)
	if tst.GeneratedTokens >= ist.GeneratedTokens {
		t.Errorf("the tree generated %d tokens, independent sampling %d", tst.GeneratedTokens, ist.GeneratedTokens)
	}
	if _, _, err := func() ([]Completion, Stats, error) {
		e, _ := New(m, cfg, nil)
		return e.Generate([]Prompt{{IDs: ids[0], Samples: 6}})
	}(); err == nil {
		t.Error("6 samples accepted for a tree of 4 leaves per root")
	}
}
