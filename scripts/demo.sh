#!/usr/bin/env bash
# `make run`: train a tiny model from scratch on the built-in arithmetic task
# — a supervised warm-up, then GRPO — on the CPU, and report the held-out
# accuracy before and after RL and where the charts are.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
./bin/rltrain run configs/demo.yaml --overwrite "$@"
./bin/rltrain plot runs/demo >/dev/null
echo "plots: runs/demo/plots/ (reward.png, accuracy.png, length.png, entropy.png, ...)"
echo "demo finished in $(( $(date +%s) - start )) s"
