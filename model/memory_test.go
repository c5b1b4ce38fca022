package model

import (
	"testing"

	"github.com/rltrain/rltrain/kernels/cuda"
)

// emuModel is a small model on the emulated CUDA backend, whose driver
// counts live device allocations. live returns that count after closing
// the backend, which frees its own pooled temporaries and scratch (it
// allocates them again when next needed), so that only buffers the caller
// owns remain.
func emuModel(t *testing.T) (m *Model, live func() int) {
	t.Helper()
	emu := cuda.NewEmu()
	be := cuda.New(emu)
	t.Cleanup(func() { be.Close() })
	cfg := testConfigs()["qwen3"]
	cfg.Layers = 1
	m, err := New(cfg, be)
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(3, 0.1)
	return m, func() int {
		if err := be.Close(); err != nil {
			t.Fatal(err)
		}
		return emu.Live()
	}
}

// TestWorkspaceFreesOnGrowth runs forwards (and a backward, which adds the
// gradient buffer and backward scratch) over batches of growing length: a
// workspace that grows frees what it outgrew, so the live allocations stay
// those of one workspace, and Free gives every one back.
func TestWorkspaceFreesOnGrowth(t *testing.T) {
	m, live := emuModel(t)
	m.EnableGrads()
	base := live()
	ws := m.NewWorkspace()
	run := func(T int) {
		b := Batch{B: 2, T: T, IDs: make([]int32, 2*T)}
		for i := range b.IDs {
			b.IDs[i] = int32(i % m.Cfg.Vocab)
		}
		if _, err := m.Forward(ws, b); err != nil {
			t.Fatal(err)
		}
		targets := NextTokenTargets(b)
		dlogp := make([]float32, len(targets))
		for i := range dlogp {
			dlogp[i] = 0.01
		}
		g, err := m.LossGrad(ws, Output{Targets: targets, InvTemp: 1}, m.KnownGrad(dlogp, nil))
		if err != nil {
			t.Fatal(err)
		}
		m.Backward(ws, g.DFinal)
	}
	run(3)
	one := live() - base
	for T := 4; T <= 8; T++ {
		run(T)
	}
	if got := live() - base; got != one {
		t.Errorf("after six forwards of growing length the workspace holds %d allocations, one forward %d", got, one)
	}
	ws.Free()
	if got := live() - base; got != 0 {
		t.Errorf("%d allocations left after Free", got)
	}
	run(5) // a freed workspace is still usable
	ws.Free()
}

// TestKVCacheFreesOnGrowth decodes steps of a growing number of rows: the
// decoding activations are replaced, not added to, and Close frees the
// cache's pools and activations.
func TestKVCacheFreesOnGrowth(t *testing.T) {
	m, live := emuModel(t)
	base := live()
	c, err := m.NewKVCache(1<<20, 4)
	if err != nil {
		t.Fatal(err)
	}
	ws := m.NewWorkspace()
	var seqs []*Seq
	step := func() {
		s := &Seq{}
		if _, err := m.Prefill(ws, c, []*Seq{s}, [][]int32{{1, 2, 3}}); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
		tokens := make([]int32, len(seqs))
		if _, err := m.Decode(c, seqs, tokens); err != nil {
			t.Fatal(err)
		}
	}
	step()
	one := live()
	for range 5 {
		step()
	}
	if got := live(); got != one {
		t.Errorf("after decoding steps of 2..6 rows %d live allocations, after 1 row %d", got-base, one-base)
	}
	ws.Free()
	c.Close()
	if got := live() - base; got != 0 {
		t.Errorf("%d allocations left after Close and Free", got)
	}
}
