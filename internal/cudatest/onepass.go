package cudatest

import (
	"fmt"
	"math"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/optim"
)

// OnePass compares the one-pass output layer (TokenLogProbsGrad with
// PolicyLoss over each chunk's token range) on the device with the CPU
// backend, for chunk sizes that split sequences, with and without an
// entropy term: log-probs, entropies, dL/dℓ, dHidden, dW and every
// statistic.
func OnePass(t *testing.T, newDriver func() (cuda.Driver, error)) {
	drv, err := newDriver()
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	p := newPair(t, drv)
	offsets := []int{0, 5, 5, 17, 18, 30, 41}
	n, d, vocab := offsets[len(offsets)-1], 24, 333
	mask := make([]float32, n)
	targets := make([]int32, n)
	for i := range mask {
		if p.r.IntN(5) != 0 {
			mask[i] = 1
		}
		targets[i] = int32(p.r.IntN(vocab))
	}
	targets[3] = -1
	mask[3] = 0
	hidden, w := p.rand(n*d, 1), p.rand(vocab*d, 0.5)
	old, adv, ref := p.rand(n, 0.2), p.rand(n, 1), p.rand(n, 0.2)
	for i := range old {
		old[i] -= 2.5 // near the log-probs of a 333-word vocabulary
		ref[i] -= 2.5
	}
	for ci, prm := range []kernels.PolicyLossParams{
		{EpsLow: 0.2, EpsHigh: 0.28, ClipRatioC: 3, Agg: kernels.AggTokenMean},
		{EpsLow: 0.2, EpsHigh: 0.2, Beta: 0.1, KL: kernels.KLK3, Agg: kernels.AggSeqMeanTokenMean, EntropyCoef: 0.05},
	} {
		prm.Norm = kernels.Normalizers{Tokens: 30, Seqs: 5, MaxLen: 12}
		for _, rows := range []int{4, 7, 0} {
			type run struct {
				lg *kernels.LogProbsGradArgs
				st kernels.PolicyLossStats
			}
			do := func(be kernels.Backend) run {
				buf := func(v []float32) kernels.Buf { b := be.Alloc(len(v)); be.Upload(b, v); return b }
				lg := &kernels.LogProbsGradArgs{
					Logp: be.Alloc(n), LSE: be.Alloc(n), Entropy: be.Alloc(n), DLogp: be.Alloc(n), DEntropy: be.Alloc(n),
					Hidden: buf(hidden), W: buf(w), DHidden: be.Alloc(n * d), DW: be.Alloc(vocab * d),
					Targets: targets, N: n, D: d, Vocab: vocab, InvTemp: 1 / 0.9, ChunkRows: rows,
				}
				pl := &kernels.PolicyLossArgs{
					Logp: lg.Logp, OldLogp: buf(old), RefLogp: buf(ref), Adv: buf(adv), Mask: buf(mask),
					Entropy: lg.Entropy, DLogp: lg.DLogp, DEntropy: lg.DEntropy, Offsets: offsets, P: prm,
				}
				loss := optim.NewPolicyLoss(be, *pl)
				lg.Grad = func(r0, r1 int) bool { return loss.TokenGrad(lg.Logp, lg.Entropy, lg.DLogp, lg.DEntropy, r0, r1) }
				be.TokenLogProbsGrad(lg)
				return run{lg, loss.Stats()}
			}
			want, got := do(p.ref), do(p.dev)
			name := fmt.Sprintf("one pass case %d rows %d", ci, rows)
			p.same("logp "+name, want.lg.Logp, got.lg.Logp, fp32Tol)
			p.same("entropy "+name, want.lg.Entropy, got.lg.Entropy, fp32Tol)
			p.same("dlogp "+name, want.lg.DLogp, got.lg.DLogp, fp32Tol)
			p.same("dhidden "+name, want.lg.DHidden, got.lg.DHidden, fp32Tol)
			p.same("dW "+name, want.lg.DW, got.lg.DW, fp32Tol)
			if got.st.Seqs != want.st.Seqs || got.st.Tokens != want.st.Tokens || want.st.Seqs != 5 {
				t.Errorf("%s: %d sequences, %v tokens; CPU %d, %v (5 sequences have loss tokens)", name, got.st.Seqs, got.st.Tokens, want.st.Seqs, want.st.Tokens)
			}
			if math.Abs(got.st.Loss-want.st.Loss) > 1e-5*max(1, math.Abs(want.st.Loss)) {
				t.Errorf("%s: loss %v, CPU %v", name, got.st.Loss, want.st.Loss)
			}
		}
	}
}
