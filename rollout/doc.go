// Package rollout is rltrain's group sampler: for a batch of prompts it
// generates group_size completions each with a paged, KV-cached model,
// and returns per completion the token ids, the text, the finish reason and
// the log-probability of every sampled token under the policy.
//
// # Scheduling
//
// Each distinct prompt is prefilled once, on its own (so its keys, values
// and first-token logits do not depend on which other prompts are in the
// batch); its group_size completions fork the prompt's cache blocks and
// share them (copy on write of the last partial block). All running
// completions decode together, one token each per model call; when one
// finishes, the next waiting completion takes its place (continuous
// batching), up to max_batch at a time.
//
// The KV cache is preallocated to kv_cache_mb. A completion is admitted
// only when the free blocks cover the worst-case growth of every running
// completion plus its own (prompt + max_new_tokens), so decoding never runs
// out of memory and never has to preempt: a small budget admits fewer
// completions at a time instead of failing. Only a single completion that
// could not fit in an empty cache is an error.
//
// # Randomness
//
// Every random draw is a pure function of (seed, prompt index, sample
// index, step): a SplitMix64-style hash of the four values (see Uniform). A
// completion therefore samples the same tokens whatever the batch size,
// the scheduling order or the thread count, as long as the model returns
// the same logits for it; the draw at one step can be computed anywhere,
// including on a GPU, without carrying generator state.
//
// The logits themselves are not always batch-independent: OpenBLAS picks
// GEMM kernels, and so float summation orders, by matrix shape and thread
// count, so a completion's logits can change in the last bits (about 1e-6
// relative at d=256) with the number of completions decoded beside it, and
// a sampled token then flips on rare draws that land on a CDF boundary.
// Runs with the same config are still bit-for-bit reproducible. With
// batch_invariant, every decode call has exactly InvariantRows rows
// (padded with throw-away sequences) and short prompts are prefilled with
// a companion, which makes completions bit-identical across max_batch, the
// KV budget, the other prompts and the thread count. The CPU backend with
// AVX-512 computes every row of a step (up to 64) with the same operations
// whatever the other rows (kernels/cpu InvariantRows), so there decoding is
// batch-independent anyway and batch_invariant only splits steps into
// chunks of 64 rows, without padding.
//
// # Log-probs
//
// Completion.Logprobs[t] is log softmax(z / T)[token t], where z are the
// raw model logits and T the sampling temperature (T = 1 when sampling
// greedily, temperature 0). This is the distribution the trainer recomputes
// with model.Model.LogProbs (InvTemp = 1/T) and the one whose ratio PPO/GRPO
// clip, as TRL and verl do (they divide the logits by the rollout
// temperature before the log-softmax). It is deliberately not the processed
// sampling distribution: top_k, top_p, min_p and the repetition penalty
// change which token is drawn but not the recorded log-prob, the same
// choice as vLLM's default raw log-probs. With those filters on, sampling is
// slightly off-policy with respect to the recorded log-probs; a trainer
// that cares can correct it with truncated importance sampling.
package rollout
