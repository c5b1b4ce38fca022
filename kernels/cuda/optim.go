package cuda

import (
	"github.com/rltrain/rltrain/kernels"
)

// Number of statistics policy_loss writes per sequence (ST_COUNT in
// optim.cu), in that order.
const (
	stPG = iota
	stKLLoss
	stEntLoss
	stTokens
	stSeq
	stClipLow
	stClipHigh
	stDual
	stKL
	stPPOKL
	stEntropy
	stRatio
	stTIS
	stCount
)

// PolicyLoss implements kernels.Optim.
func (b *Backend) PolicyLoss(a *kernels.PolicyLossArgs) kernels.PolicyLossStats {
	nseq := len(a.Offsets) - 1
	rlo, rhi := a.Range()
	if a.Hi > 0 {
		b.Zero(b.View(a.DLogp, rlo, rhi-rlo))
		if a.DEntropy != nil {
			b.Zero(b.View(a.DEntropy, rlo, rhi-rlo))
		}
	} else {
		b.Zero(a.DLogp)
		if a.DEntropy != nil {
			b.Zero(a.DEntropy)
		}
	}
	if nseq <= 0 || rhi <= rlo {
		return kernels.PolicyLossStats{}
	}
	p := &a.P
	offs := b.uploadInts(toInt32(a.Offsets))
	var trunc DevPtr
	if p.MaskTruncated && a.Truncated != nil {
		t := make([]int32, nseq)
		for i := range t {
			if a.Truncated[i] {
				t[i] = 1
			}
		}
		trunc = b.uploadInts(t)
	}
	stats := b.temp(8 * stCount * nseq)
	defer b.release(offs, trunc, stats)
	roll := a.RolloutLogp
	if p.TISCap <= 0 {
		roll = nil
	}
	b.launch("policy_loss", D1(nseq), D1(rowThreads), 0, ArgPtr(stats), ArgPtr(dev(a.DLogp)), ArgPtr(dev(a.DEntropy)),
		ArgPtr(dev(a.Logp)), ArgPtr(dev(a.OldLogp)), ArgPtr(dev(roll)), ArgPtr(dev(a.RefLogp)), ArgPtr(dev(a.Adv)), ArgPtr(dev(a.Mask)),
		ArgPtr(dev(a.Entropy)), ArgPtr(dev(a.SeqLogRatio)), ArgInt(int(p.IS)),
		ArgPtr(offs), ArgPtr(trunc),
		ArgF32(p.EpsLow), ArgF32(p.EpsHigh), ArgF32(p.ClipRatioC), ArgF32(p.Beta), ArgInt(int(p.KL)), ArgF32(p.EntropyCoef),
		ArgF32(p.TISCap), ArgInt(int(p.Agg)), ArgF64(p.Norm.Tokens), ArgInt(p.Norm.Seqs), ArgInt(p.Norm.MaxLen), ArgInt(rlo), ArgInt(rhi))
	host := make([]float64, stCount*nseq)
	b.must("download", b.drv.CopyDtoH(bytesOf(host), stats))
	var st kernels.PolicyLossStats
	for i := 0; i < nseq; i++ {
		r := host[i*stCount : (i+1)*stCount]
		st.PGLoss += r[stPG]
		st.KLLoss += r[stKLLoss]
		st.EntropyLoss += r[stEntLoss]
		st.Tokens += r[stTokens]
		st.Seqs += int(r[stSeq])
		st.ClipLow += r[stClipLow]
		st.ClipHigh += r[stClipHigh]
		st.DualClip += r[stDual]
		st.KL += r[stKL]
		st.PPOKL += r[stPPOKL]
		st.Entropy += r[stEntropy]
		st.Ratio += r[stRatio]
		st.TISCapped += r[stTIS]
	}
	st.Loss = st.PGLoss + st.KLLoss + st.EntropyLoss
	return st
}

// SegmentSums implements kernels.Optim.
func (b *Backend) SegmentSums(out []float64, x, mask kernels.Buf, offsets []int) {
	nseg := len(offsets) - 1
	if nseg <= 0 {
		return
	}
	offs := b.uploadInts(toInt32(offsets))
	res := b.temp(8 * nseg)
	defer b.release(offs, res)
	b.launch("segment_sums", D1(nseg), D1(rowThreads), 0, ArgPtr(res), ArgPtr(dev(x)), ArgPtr(dev(mask)), ArgPtr(offs))
	b.must("download", b.drv.CopyDtoH(bytesOf(out[:nseg]), res))
}

// SegmentBroadcast implements kernels.Optim.
func (b *Backend) SegmentBroadcast(dst, mask kernels.Buf, offsets []int, coef []float32) {
	b.Zero(dst)
	nseg := len(offsets) - 1
	if nseg <= 0 {
		return
	}
	offs := b.uploadInts(toInt32(offsets))
	cp := b.temp(4 * nseg)
	defer b.release(offs, cp)
	b.must("upload", b.drv.CopyHtoD(cp, bytesOf(coef[:nseg])))
	b.launch("segment_broadcast", D1(nseg), D1(rowThreads), 0, ArgPtr(dev(dst)), ArgPtr(dev(mask)), ArgPtr(offs), ArgPtr(cp))
}

// AdamW implements kernels.Optim with the scalars formed exactly as in
// kernels/cpu.
func (b *Backend) AdamW(param, grad, m, v kernels.Buf, n int, hp kernels.AdamWParams) {
	if n == 0 {
		return
	}
	c := hp.Scalars()
	b.launch("adamw", elemGrid(n), D1(elemThreads), 0, ArgPtr(dev(param)), ArgPtr(dev(grad)), ArgPtr(dev(m)), ArgPtr(dev(v)), ArgInt(n),
		ArgF32(c.Decay), ArgF32(c.Beta1), ArgF32(c.OneMinusBeta1), ArgF32(c.Beta2), ArgF32(c.OneMinusBeta2),
		ArgF32(c.NegStep), ArgF32(c.BC2Sqrt), ArgF32(c.Eps))
}

// sumChunk is the fixed block of SumSquares: partial sums per chunk, added
// in chunk order.
const sumChunk = 1 << 12

// SumSquares implements kernels.Optim.
func (b *Backend) SumSquares(x kernels.Buf) float64 {
	n := x.Len()
	if n == 0 {
		return 0
	}
	blocks := (n + sumChunk - 1) / sumChunk
	part := b.temp(8 * blocks)
	defer b.release(part)
	b.launch("sum_squares", D1(blocks), D1(elemThreads), 0, ArgPtr(part), ArgPtr(dev(x)), ArgInt(n), ArgInt(sumChunk))
	host := make([]float64, blocks)
	b.must("download", b.drv.CopyDtoH(bytesOf(host), part))
	var s float64
	for _, v := range host {
		s += v
	}
	return s
}

// Scale implements kernels.Optim.
func (b *Backend) Scale(x kernels.Buf, s float32) {
	if x.Len() == 0 {
		return
	}
	b.launch("scale", elemGrid(x.Len()), D1(elemThreads), 0, ArgPtr(dev(x)), ArgInt(x.Len()), ArgF32(s))
}

var _ kernels.Backend = (*Backend)(nil)
