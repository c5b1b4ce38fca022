#!/usr/bin/env bash
# Installs what building and testing rltrain needs. Idempotent: every step
# checks first and skips what is present. Each part lives in scripts/setup.d.
set -euo pipefail
cd "$(dirname "$0")/.."
for part in scripts/setup.d/*.sh; do
  bash "$part"
done
