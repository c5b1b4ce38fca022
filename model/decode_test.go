package model

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
)

// decodeTol bounds the relative difference between KV-cached decoding and a
// full forward pass over the same sequence.
const decodeTol = 1e-5

// TestDecodeMatchesFullForward decodes 110 steps for several sequences —
// different prompt lengths, two completions forked from one prompt (shared
// blocks, copy on write) and a sequence that joins late — and checks every
// step's logits against a full forward pass over the final sequences.
func TestDecodeMatchesFullForward(t *testing.T) {
	for name, cfg := range testConfigs() {
		t.Run(name, func(t *testing.T) {
			m := randomModel(t, cfg, 11)
			r := rand.New(rand.NewPCG(5, 6))
			tok := func() int32 { return int32(r.IntN(cfg.Vocab)) }
			cache, err := m.NewKVCache(1<<22, 4)
			if err != nil {
				t.Fatal(err)
			}
			type track struct {
				seq    *Seq
				ids    []int32
				logits [][]float32 // logits[k] predicts ids[start+k]
				start  int
			}
			prompt := func(n int) []int32 {
				p := make([]int32, n)
				for i := range p {
					p[i] = tok()
				}
				return p
			}
			ws := m.NewWorkspace()
			prefill := func(ps ...[]int32) []*track {
				seqs := make([]*Seq, len(ps))
				for i := range seqs {
					seqs[i] = &Seq{}
				}
				logits, err := m.Prefill(ws, cache, seqs, ps)
				if err != nil {
					t.Fatal(err)
				}
				out := make([]*track, len(ps))
				for i := range ps {
					out[i] = &track{seq: seqs[i], ids: append([]int32(nil), ps[i]...), start: len(ps[i]),
						logits: [][]float32{logits[i*cfg.Vocab : (i+1)*cfg.Vocab]}}
				}
				return out
			}
			tracks := prefill(prompt(5), prompt(9))
			fork := &track{seq: cache.Fork(tracks[0].seq), ids: append([]int32(nil), tracks[0].ids...), start: 5,
				logits: [][]float32{tracks[0].logits[0]}}
			tracks = append(tracks, fork)
			for step := 0; step < 110; step++ {
				if step == 50 {
					tracks = append(tracks, prefill(prompt(3))...)
				}
				seqs := make([]*Seq, len(tracks))
				toks := make([]int32, len(tracks))
				for i, tr := range tracks {
					seqs[i], toks[i] = tr.seq, tok()
					tr.ids = append(tr.ids, toks[i])
				}
				logits, err := m.Decode(cache, seqs, toks)
				if err != nil {
					t.Fatal(err)
				}
				for i, tr := range tracks {
					tr.logits = append(tr.logits, logits[i*cfg.Vocab:(i+1)*cfg.Vocab])
				}
			}
			// Full forward over every final sequence in one padded batch.
			T := 0
			for _, tr := range tracks {
				T = max(T, len(tr.ids))
			}
			b := Batch{B: len(tracks), T: T, IDs: make([]int32, len(tracks)*T), Lens: make([]int, len(tracks))}
			for i, tr := range tracks {
				copy(b.IDs[i*T:], tr.ids)
				b.Lens[i] = len(tr.ids)
			}
			ws2 := m.NewWorkspace()
			if _, err := m.Forward(ws2, b); err != nil {
				t.Fatal(err)
			}
			full := logits(m, ws2)
			worst := 0.0
			for i, tr := range tracks {
				for k, got := range tr.logits {
					pos := tr.start - 1 + k // position whose output predicts the next token
					want := full[(i*T+pos)*cfg.Vocab : (i*T+pos+1)*cfg.Vocab]
					worst = max(worst, maxRel(got, want))
				}
				if tr.seq.Len != len(tr.ids) {
					t.Errorf("sequence %d caches %d positions, has %d tokens", i, tr.seq.Len, len(tr.ids))
				}
			}
			if worst > decodeTol {
				t.Errorf("decode logits differ from the full forward: relative error %.3g > %g", worst, decodeTol)
			}
			for _, tr := range tracks {
				cache.Release(tr.seq)
			}
			if cache.FreeBlocks() != cache.NumBlocks {
				t.Errorf("%d of %d blocks free after releasing everything", cache.FreeBlocks(), cache.NumBlocks)
			}
		})
	}
}

func TestKVCacheFull(t *testing.T) {
	m := randomModel(t, testConfigs()["llama"], 1)
	bpt := int64(m.Cfg.KVBytesPerToken())
	cache, err := m.NewKVCache(bpt*8, 4) // two blocks
	if err != nil {
		t.Fatal(err)
	}
	s := &Seq{}
	if _, err := m.Prefill(m.NewWorkspace(), cache, []*Seq{s}, [][]int32{{1, 2, 3, 4, 5, 6, 7}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Decode(cache, []*Seq{s}, []int32{8}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Decode(cache, []*Seq{s}, []int32{9}); err != ErrCacheFull {
		t.Fatalf("decode into a full cache: %v, want ErrCacheFull", err)
	}
	if s.Len != 8 {
		t.Errorf("failed decode changed the sequence: len %d", s.Len)
	}
	if _, err := m.NewKVCache(bpt, 4); err == nil {
		t.Error("a budget below one block was accepted")
	}
}

// TestDecodeRowWorkersSameBits decodes batches large enough to be split
// over the backend's row workers (two threads) and checks every logit
// against the same model decoding on one thread, bit for bit: both run
// the same row-wise operations.
func TestDecodeRowWorkersSameBits(t *testing.T) {
	for name, cfg := range testConfigs() {
		t.Run(name, func(t *testing.T) {
			m2 := randomModel(t, cfg, 3)
			if w := m2.be.(interface{ RowWorkers() []kernels.Backend }).RowWorkers(); len(w) != 2 {
				t.Fatalf("%d row workers, want 2", len(w))
			}
			m1, err := New(cfg, cpu.New(1))
			if err != nil {
				t.Fatal(err)
			}
			host := make([]float32, m2.NumParams())
			m2.be.Download(host, m2.Params)
			m1.be.Upload(m1.Params, host)
			r := rand.New(rand.NewPCG(7, 8))
			for _, n := range []int{2 * minRowsPerWorker, 45, 64} {
				prompts := make([][]int32, n)
				for i := range prompts {
					prompts[i] = make([]int32, 3+r.IntN(7))
					for j := range prompts[i] {
						prompts[i][j] = int32(r.IntN(cfg.Vocab))
					}
				}
				type run struct {
					m     *Model
					cache *KVCache
					seqs  []*Seq
				}
				runs := []*run{{m: m1}, {m: m2}}
				for _, ru := range runs {
					if ru.cache, err = ru.m.NewKVCache(1<<24, 4); err != nil {
						t.Fatal(err)
					}
					ru.seqs = make([]*Seq, n)
					for i := range ru.seqs {
						ru.seqs[i] = &Seq{}
					}
					for i := range prompts { // one prompt at a time: prefill rows do not depend on the batch
						if _, err := ru.m.Prefill(ru.m.NewWorkspace(), ru.cache, ru.seqs[i:i+1], prompts[i:i+1]); err != nil {
							t.Fatal(err)
						}
					}
				}
				for step := 0; step < 5; step++ {
					toks := make([]int32, n)
					for i := range toks {
						toks[i] = int32(r.IntN(cfg.Vocab))
					}
					want, err := m1.Decode(runs[0].cache, runs[0].seqs, toks)
					if err != nil {
						t.Fatal(err)
					}
					got, err := m2.Decode(runs[1].cache, runs[1].seqs, toks)
					if err != nil {
						t.Fatal(err)
					}
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%d rows, step %d: logit %d (row %d) is %v on two row workers, %v on one thread", n, step, i, i/cfg.Vocab, got[i], want[i])
						}
					}
				}
			}
		})
	}
}

// TestDecodeLogitsOnBackend: DecodeLogits leaves on the backend the logits
// DecodeTo downloads, bit for bit, step after step.
func TestDecodeLogitsOnBackend(t *testing.T) {
	cfg := testConfigs()["llama"]
	m := randomModel(t, cfg, 4)
	caches := make([]*KVCache, 2)
	seqs := make([][]*Seq, 2)
	prompts := [][]int32{{1, 2, 3}, {4, 5}, {6}}
	for k := range caches {
		var err error
		if caches[k], err = m.NewKVCache(1<<22, 4); err != nil {
			t.Fatal(err)
		}
		seqs[k] = []*Seq{{}, {}, {}}
		if _, err := m.Prefill(m.NewWorkspace(), caches[k], seqs[k], prompts); err != nil {
			t.Fatal(err)
		}
	}
	for step := range 3 {
		toks := []int32{int32(step), 7, 9}
		want, err := m.Decode(caches[0], seqs[0], toks)
		if err != nil {
			t.Fatal(err)
		}
		buf, err := m.DecodeLogits(caches[1], seqs[1], toks)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, buf.Len())
		m.be.Download(got, buf)
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: DecodeLogits differs from Decode", step)
		}
	}
}
