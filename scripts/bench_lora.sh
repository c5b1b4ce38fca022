#!/usr/bin/env bash
# LoRA (r=16, all seven projections) against full fine-tuning, one training
# step (forward, cross-entropy, backward, AdamW) each, on the CPU:
#   d=512:         hidden 512, 8 layers, 8/4 heads, FFN 1536, vocab 32000,
#                  batch 8 x 256 tokens
#   Qwen2.5-0.5B:  24 layers, hidden 896, 14/2 heads, FFN 4864, vocab
#                  151,936, tied (a random model from `rltrain model init`),
#                  batch 1 x 256 tokens, a few steps
# and decoding at d=512 through the adapter unmerged against a merged copy
# of the weights. Each measurement is its own process (peak RSS is the
# process's). Prints a markdown table; the machine may be shared.
#
#   scripts/bench_lora.sh [--quick]     (--quick: d=512 only)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = --quick ] && quick=1
GOEXPERIMENT=${GOEXPERIMENT-simd} go build -o bin/lora-bench ./bench/lora
GOEXPERIMENT=${GOEXPERIMENT-simd} go build -o bin/rltrain ./cmd/rltrain
out=$(mktemp)
tmp=$(mktemp -d)
trap 'rm -rf "$out" "$tmp"' EXIT
d512="-hidden 512 -layers 8 -heads 8 -kv-heads 4 -head-dim 64 -ffn 1536 -vocab 32000"
for mode in full lora; do
  # shellcheck disable=SC2086
  ./bin/lora-bench $d512 -mode "$mode" -batch 8 -seq 256 -steps 5 -warmup 1 | sed 's|^{|{"shape": "d=512", |' >>"$out"
done
# shellcheck disable=SC2086
./bin/lora-bench $d512 -decode -rows 64 -prompt 32 -new 64 | sed 's|^{|{"shape": "d=512", |' >>"$out"
if [ $quick = 0 ]; then
  cat >"$tmp/config.json" <<'JSON'
{"architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
 "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936, "rms_norm_eps": 1e-6,
 "rope_theta": 1000000.0, "max_position_embeddings": 32768, "tie_word_embeddings": true,
 "bos_token_id": 151643, "eos_token_id": 151645}
JSON
  ./bin/rltrain model init --config "$tmp/config.json" --out "$tmp/qwen" >/dev/null
  for mode in full lora; do
    ./bin/lora-bench -model "$tmp/qwen" -mode "$mode" -batch 1 -seq 256 -steps 2 -warmup 1 | sed 's|^{|{"shape": "Qwen2.5-0.5B", |' >>"$out"
  done
fi
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| shape | training | trainable params | step (ms, median) | peak RSS while training (MB) | held: weights + grads + AdamW + activations (MiB) | bf16 GPU estimate (MiB), + KL reference |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    if r["mode"] == "decode":
        continue
    h = r["held_mib"]
    held = "%.0f + %.0f + %.0f + %.0f" % (h["weights"] + h["adapter"], h["grads"], h["adam_moments"], h["activations"])
    print("| %s | %s | %s | %.0f | %.0f | %s | %.0f, %.0f |" % (r["shape"], "LoRA r=%d" % r["lora_r"] if r["mode"] == "lora" else "full",
          f'{r["trainable_params"]:,}', r["ms_per_step"], r["peak_rss_mb"], held, r["gpu_bf16_mib"], r["gpu_bf16_with_reference_mib"]))
for r in rows:
    if r["mode"] == "decode":
        print("\ndecode at %s, %d sequences, r=%d: adapter unmerged %.0f tok/s, merged weights %.0f tok/s; merging costs %.0f ms per update and a %.0f MiB copy of the weights (the adapter: %.1f MiB); first logits agree within %.1e" % (
            r["shape"], r["rows"], r["lora_r"], r["unmerged_tok_per_s"], r["merged_tok_per_s"], r["merge_ms"], r["merged_copy_mib"], r["adapter_mib"], r["prefill_logits_max_rel_diff"]))
PY
