#!/usr/bin/env bash
# Regenerates the committed PTX of kernels/cuda for every target
# architecture, and the hash of the sources it was built from (checked by
# kernels/cuda's tests, so stale PTX fails even where nvcc is missing).
# Output is byte-identical across runs; CI regenerates and diffs it.
set -euo pipefail
cd "$(dirname "$0")/../../kernels/cuda"

ARCHS="${CUDA_ARCHS:-sm_75}"
if ! command -v nvcc >/dev/null 2>&1; then
  echo "ptx.sh: nvcc not found; run scripts/cuda/install-toolkit.sh" >&2
  exit 1
fi
for arch in $ARCHS; do
  mkdir -p "ptx/$arch"
  for src in *.cu; do
    # -lineinfo off and relative paths: no machine-specific text in the PTX.
    nvcc -ptx -O3 -std=c++17 -arch="$arch" -o "ptx/$arch/${src%.cu}.ptx" "$src"
  done
done
sha256sum *.cu cuda_compat.cuh | LC_ALL=C sort -k2 > ptx/SOURCES.sha256
