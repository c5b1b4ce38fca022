#!/usr/bin/env bash
# `make run-lora`: LoRA on the demo task. The demo's supervised warm-up
# makes the base model (skipped when runs/demo already holds it), GRPO then
# trains a rank-16 adapter on all its linear layers with the base frozen
# (configs/lora.yaml), and the adapter is merged into a full model.
#
#   scripts/lora_demo.sh [--set key=value ...]   (extra options for the RL run)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
base=runs/demo/checkpoints/sft-800
if [ ! -f "$base/DONE" ]; then
  ./bin/rltrain sft configs/demo.yaml --overwrite
fi
./bin/rltrain run configs/lora.yaml --overwrite "$@"
./bin/rltrain model merge --model "$base" --adapter runs/lora/checkpoints/step-300 --out runs/lora/merged
echo "adapter: runs/lora/checkpoints/step-300 (adapter_config.json, adapter_model.safetensors); merged model: runs/lora/merged"
echo "lora demo finished in $(( $(date +%s) - start )) s"
