// Package kernels defines the device seam of rltrain: a small interface of
// operations on opaque float32 buffers, in the style of llm.c. The model and
// the losses are written once against it; kernels/cpu is the reference
// implementation and kernels/cuda runs the same operations on NVIDIA GPUs.
//
// Conventions shared by every implementation:
//   - matrices are row-major; a "row" of an activation is one token;
//   - operations named ...Backward accumulate (+=) into parameter gradients
//     and, where documented, into input gradients, so residual branches need
//     no extra additions;
//   - token ids, lengths and other small integer metadata travel as host
//     slices; a device backend uploads them itself.
package kernels

// Buf is an opaque device buffer of float32 values.
type Buf interface {
	Len() int
}

// Backend is everything the model, the losses and the optimizer need from a
// device.
type Backend interface {
	Memory
	Dense
	Fused
	Optim
}

// Memory allocates and moves buffers.
type Memory interface {
	Name() string
	// Alloc returns a zeroed buffer of n floats.
	Alloc(n int) Buf
	Free(b Buf)
	// View returns the n floats of b starting at off, sharing storage.
	View(b Buf, off, n int) Buf
	Upload(dst Buf, src []float32)
	Download(dst []float32, src Buf)
	Zero(b Buf)
	Copy(dst, src Buf)
}

// AttnShape describes a batch of right-padded sequences laid out as
// [batch*seqLen] rows with a fused QKV row of (Heads+2*KVHeads)*HeadDim
// floats: queries first, then keys, then values.
type AttnShape struct {
	Batch, SeqLen           int
	Heads, KVHeads, HeadDim int
	// Lens holds each sequence's valid length (≤ SeqLen). Rows past the
	// length are padding: their outputs are zero and they are never
	// attended to. Nil means every sequence is full.
	Lens []int
	// Scale multiplies q·k; usually 1/sqrt(HeadDim).
	Scale float32
}

// Dense holds the layer operations of a Llama-family transformer.
type Dense interface {
	// Gemm computes C = alpha*op(A)*op(B) + beta*C for row-major A, B, C
	// with leading dimensions lda, ldb, ldc; op(X) is X or Xᵀ. C is m×n.
	Gemm(transA, transB bool, m, n, k int, alpha float32, a Buf, lda int, b Buf, ldb int, beta float32, c Buf, ldc int)
	// AddBias adds bias[n] to each of the rows of x[rows, n].
	AddBias(x, bias Buf, rows, n int)
	// BiasBackward accumulates column sums of dout[rows, n] into dbias.
	BiasBackward(dbias, dout Buf, rows, n int)
	// Copy2D copies rows×width floats between strided matrices.
	Copy2D(dst Buf, dstStride int, src Buf, srcStride int, rows, width int)
	// Add computes dst = a + b elementwise (dst may alias a or b).
	Add(dst, a, b Buf)
	// RMSNorm normalises each row of x[rows, dim]: out = x*rstd*w, saving
	// rstd[rows] for the backward pass. out may not alias x.
	RMSNorm(out, rstd, x, w Buf, rows, dim int, eps float32)
	// RMSNormBackward accumulates into dx and dw.
	RMSNormBackward(dx, dw, dout, x, w, rstd Buf, rows, dim int)
	// RMSNormHeads normalises, independently, `heads` consecutive chunks of
	// dim floats starting at column off of each row of x (row stride
	// `stride`), writing the same positions of out and rstd[rows*heads].
	// It is the per-head query/key norm of Qwen3.
	RMSNormHeads(out, rstd, x Buf, stride, off int, w Buf, rows, heads, dim int, eps float32)
	// RMSNormHeadsBackward accumulates into the same positions of dx, and
	// into dw.
	RMSNormHeadsBackward(dx, dw, dout, x, w, rstd Buf, stride, off, rows, heads, dim int)
	// RoPE rotates, in place, the first heads*headDim floats of each row of
	// x (row stride `stride`) in the rotate-half layout of Hugging Face:
	// cos and sin are [rows, headDim/2]. inverse rotates by −θ, which is the
	// backward pass of the rotation.
	RoPE(x Buf, stride int, cos, sin Buf, rows, heads, headDim int, inverse bool)
	// Attention computes causal grouped-query attention from fused qkv into
	// out[rows, Heads*HeadDim] and saves the log-sum-exp of each query row
	// in lse[Batch*Heads*SeqLen] for the backward pass.
	Attention(out, lse, qkv Buf, s AttnShape)
	// AttentionBackward writes (overwrites) dqkv from dout.
	AttentionBackward(dqkv, dout, qkv, out, lse Buf, s AttnShape)
	// SwiGLU computes out[rows, ffn] = silu(gate)*up from the fused
	// gateUp[rows, 2*ffn] (gate in the first ffn columns).
	SwiGLU(out, gateUp Buf, rows, ffn int)
	// SwiGLUBackward writes (overwrites) dGateUp.
	SwiGLUBackward(dGateUp, dout, gateUp Buf, rows, ffn int)
	// Embed gathers rows of table[vocab, dim] into out.
	Embed(out, table Buf, ids []int32, dim int)
	// EmbedBackward accumulates dout rows into dtable, deterministically.
	EmbedBackward(dtable, dout Buf, ids []int32, dim int)
	// CacheWrite copies rows of src (row stride srcStride, starting at
	// column srcOff) into pool rows given by slots; pool rows are width
	// floats wide.
	CacheWrite(pool Buf, width int, src Buf, srcStride, srcOff int, slots []int32)
	// AttentionDecode attends one query row per sequence against a paged
	// KV cache: keys and values of sequence i live in the pool rows
	// slots[i][0:lens[i]]. q rows are fused QKV rows (stride qStride);
	// out is [len(lens), Heads*HeadDim].
	AttentionDecode(out, q Buf, qStride int, kPool, vPool Buf, slots [][]int32, lens []int, heads, kvHeads, headDim int, scale float32)
}

// Fused holds the fused output-layer kernels.
type Fused interface {
	// TokenLogProbs computes, for each of n hidden rows, the log-probability
	// of targets[i] under softmax(invTemp * hidden[i]·Wᵀ) with W[vocab, d]
	// the LM head, without materialising [n × vocab]: logits are produced
	// chunk by chunk with an online log-sum-exp. It writes logp[n], lse[n]
	// (saved for backward) and, when entropy is non-nil, the entropy of each
	// row's distribution. A target < 0 yields logp 0.
	TokenLogProbs(logp, entropy, lse, hidden, w Buf, targets []int32, n, d, vocab int, invTemp float32)
	// TokenLogProbsBackward accumulates into dHidden[n, d] and dW[vocab, d]
	// the gradient of Σ dlogp[i]*logp[i] + dEntropy[i]*entropy[i]; dEntropy
	// and entropy may be nil when the entropy is unused, and dW when the
	// LM head is frozen.
	TokenLogProbsBackward(dHidden, dW, dlogp, dEntropy, hidden, w, lse, entropy Buf, targets []int32, n, d, vocab int, invTemp float32)
	// TokenLogProbsGrad is TokenLogProbs and TokenLogProbsBackward in one
	// pass, for objectives whose dL/dℓ of a token needs only that token's
	// own values and batch-wide constants (every clipped-surrogate
	// objective; not DRPO, whose weights depend on whole-sequence sums).
	// Rows are taken in chunks; for each chunk [r0, r1) the kernel writes
	// logp, lse and entropy of its rows, calls a.Grad(r0, r1), which must
	// write a.DLogp[r0:r1] (and a.DEntropy[r0:r1]), and then accumulates
	// the chunk's gradient into a.DHidden and a.DW from the logits it still
	// holds. Each logit is thus computed once instead of twice.
	TokenLogProbsGrad(a *LogProbsGradArgs)
}

// LogProbsGradArgs are the operands of TokenLogProbsGrad. Shapes and
// meanings are those of TokenLogProbs and TokenLogProbsBackward.
type LogProbsGradArgs struct {
	Logp, LSE Buf // outputs [N]
	// Entropy, when non-nil, receives each row's entropy; DEntropy may then
	// be given too, for an entropy term in the objective.
	Entropy Buf
	// DLogp and DEntropy are filled by Grad, chunk by chunk.
	DLogp, DEntropy Buf
	Hidden, W       Buf
	// DHidden [N, D] and DW [Vocab, D] are accumulated into (+=); DW is
	// nil when the LM head is frozen (a LoRA adapter trains), and its
	// product is then skipped.
	DHidden, DW Buf
	Targets     []int32
	N, D, Vocab int
	InvTemp     float32
	// ChunkRows, when > 0, is the number of rows per chunk; 0 lets the
	// backend choose from its memory bound.
	ChunkRows int
	// Grad is called once per chunk, in row order, after logp, lse and
	// entropy of rows [r0, r1) are written. Returning false stops the pass
	// (say, on a non-finite loss); DHidden and DW are then incomplete.
	Grad func(r0, r1 int) bool
}
