#!/usr/bin/env bash
# `make bench`: every comparison of rltrain with its reference on this
# machine, each in one run (ratios, not absolute times: the machine may be
# shared). --full adds the fused log-prob kernel at Qwen2.5-0.5B's output
# shape (8192 tokens × 151,936 × 896; minutes, and 6 GB for the unfused
# path).
set -euo pipefail
cd "$(dirname "$0")/.."
full=false
[ "${1:-}" = "--full" ] && full=true
export GOEXPERIMENT="${GOEXPERIMENT-simd}"

echo "## Training step (model forward + backward + AdamW) against PyTorch"
bash scripts/bench_model.sh
echo
echo "## Rollout (prefill and decode tokens/s) against PyTorch"
sh scripts/bench_rollout.sh
echo
echo "## Tokenizer encode throughput against @lenml/tokenizers"
bash scripts/tokenizer/bench.sh 3
echo
echo "## RL step of the demo config (rltrain bench)"
./bin/rltrain bench configs/demo.yaml --steps 5
if $full; then
  echo
  echo "## Fused TokenLogProbs forward+backward vs materialised logits (8192 × 151936 × 896)"
  go build -o bin/logprobs-bench ./bench/logprobs
  ./bin/logprobs-bench --mode onepass   # what the trainer runs: forward and backward in one pass
  ./bin/logprobs-bench --mode fused     # TokenLogProbs, then TokenLogProbsBackward (recomputes the logits)
  ./bin/logprobs-bench --mode unfused
fi
