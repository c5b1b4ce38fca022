package rollout

import (
	"math"
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

// TestTreeBranchAtEntropy: with tree_branch_at: entropy, level l forks at
// the first token after tree_depths[l-1] whose distribution has at least
// tree_entropy_threshold nats, at tree_depths[l] at the latest. A
// threshold nothing reaches gives exactly the completions of fixed depths,
// one everything reaches forks at the first token of each window, and at
// the median entropy every fork is where the trainer's recomputed entropies
// say it should be.
func TestTreeBranchAtEntropy(t *testing.T) {
	m := newModel(t, tinyConfig(), 2, 5)
	ids := randomPrompts(6, 3, 12, m.Cfg.Vocab, 31)
	cfg := DefaultConfig()
	cfg.GroupSize, cfg.MaxNewTokens, cfg.Temperature, cfg.Seed = 8, 12, 1.3, 4
	cfg.BatchInvariant = true
	cfg.TreeDepths, cfg.TreeBranch = []int{3, 7}, 2
	depth, dst := generate(t, m, cfg, Prompts(ids), nil)

	cfg.TreeBranchAt, cfg.TreeEntropyMin = "entropy", 1e9
	late, lst := generate(t, m, cfg, Prompts(ids), nil)
	for i := range depth {
		a, b := depth[i], late[i]
		if !slices.Equal(a.IDs, b.IDs) || !slices.Equal(a.Logprobs, b.Logprobs) || a.Shared != b.Shared || a.Branch != b.Branch {
			t.Fatalf("completion %d: branching at entropy ≥ 1e9 gave %v (shared %d, branch %d), fixed depths %v (%d, %d)",
				i, b.IDs, b.Shared, b.Branch, a.IDs, a.Shared, a.Branch)
		}
	}
	if lst.Forks != dst.Forks || lst.GeneratedTokens != dst.GeneratedTokens {
		t.Errorf("forks %d vs %d, generated tokens %d vs %d", lst.Forks, dst.Forks, lst.GeneratedTokens, dst.GeneratedTokens)
	}

	cfg.TreeEntropyMin = 1e-9
	early, est := generate(t, m, cfg, Prompts(ids), nil)
	for i, c := range early {
		want := len(c.IDs) // ended before its last fork: copies
		if len(c.IDs) > 4 {
			want = 4 // the second window's first token
		}
		if c.Shared != want {
			t.Errorf("completion %d (%d tokens) shares %d tokens, want %d at threshold 1e-9", i, len(c.IDs), c.Shared, want)
		}
	}
	if est.Forks == 0 || est.ForkDepths >= dst.ForkDepths {
		t.Errorf("early forks: %d at %d shared tokens in all, fixed depths %d at %d", est.Forks, est.ForkDepths, dst.Forks, dst.ForkDepths)
	}

	// The median entropy of the depth run's tokens as the threshold.
	invT := float32(cfg.InvTemp())
	_, depthEnts := trainerOutputs(t, m, ids, depth, invT)
	var all []float32
	for _, e := range depthEnts {
		all = append(all, e...)
	}
	slices.Sort(all)
	thr := float64(all[len(all)/2])
	cfg.TreeEntropyMin = thr
	mid, mst := generate(t, m, cfg, Prompts(ids), nil)
	_, ents := trainerOutputs(t, m, ids, mid, invT)
	checked, earlyForks := 0, 0
	for i, c := range mid {
		e := ents[i]
		near := false
		fork := func(from, deadline int) int {
			for k := from; k < deadline && k < len(e); k++ {
				if math.Abs(float64(e[k])-thr) < 1e-4 {
					near = true
				}
				if float64(e[k]) >= thr {
					return k
				}
			}
			return deadline
		}
		f0 := fork(1, 3)
		f1 := fork(f0+1, 7)
		if f1 <= 3 {
			f1 = fork(4, 7)
		}
		if near {
			continue
		}
		checked++
		want := len(c.IDs)
		if len(c.IDs) > f1 {
			want = f1
		}
		if c.Shared != want {
			t.Errorf("completion %d (%d tokens, entropies %v): shares %d tokens, want %d (threshold %.4f)", i, len(c.IDs), e, c.Shared, want, thr)
		}
		// Its level-0 sibling subtree shares its first f0 tokens.
		if len(c.IDs) > f0 {
			s := c.Sample
			sib := mid[i-s+(s+2)%4+s-s%4]
			if n := min(f0, len(sib.IDs)); !slices.Equal(sib.IDs[:n], c.IDs[:n]) {
				t.Errorf("completion %d and its sibling subtree's %d differ before the first fork at %d: %v, %v", i, sib.Sample, f0, c.IDs, sib.IDs)
			}
			if f0 < 3 {
				earlyForks++
			}
		}
	}
	t.Logf("median threshold %.4f nats: %d forks at %.2f shared tokens on average (fixed depths: %.2f); %d completions checked, %d with an early first fork",
		thr, mst.Forks, float64(mst.ForkDepths)/float64(mst.Forks), float64(dst.ForkDepths)/float64(dst.Forks), checked, earlyForks)
	if checked < len(mid)/2 || earlyForks == 0 {
		t.Errorf("only %d of %d completions checked, %d early forks", checked, len(mid), earlyForks)
	}
}

// twoWay is the entropy of the two-way distribution with logits 0 and z.
func twoWay(z float64) float64 {
	p := 1 / (1 + math.Exp(-z))
	return -p*math.Log(p) - (1-p)*math.Log(1-p)
}

// TestRowEntropy checks the entropy against hand-computed cases.
func TestRowEntropy(t *testing.T) {
	for _, tc := range []struct {
		logits []float32
		invT   float64
		want   float64
	}{
		{[]float32{0, 0, 0, 0}, 1, math.Log(4)},
		{[]float32{5, 5, -1e30}, 1, math.Log(2)},
		{[]float32{0, float32(math.Log(3))}, 1, twoWay(float64(float32(math.Log(3))))}, // p ≈ (1/4, 3/4)
		{[]float32{0, float32(2 * math.Log(3))}, 0.5, twoWay(float64(float32(2*math.Log(3))) / 2)},
		{[]float32{100, 0}, 1, 100 * math.Exp(-100)},
	} {
		if got := rowEntropy(tc.logits, tc.invT); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("rowEntropy(%v, %g) = %.15g, want %.15g", tc.logits, tc.invT, got, tc.want)
		}
	}
}
