#!/usr/bin/env bash
# `make bench`: every benchmark that compares rltrain with its reference on
# this machine, in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "## Training step (model forward + backward + AdamW)"
bash scripts/bench_model.sh "$@"
