#!/usr/bin/env bash
# Installs Debian's CUDA toolkit (nvcc, ptxas, headers, stub libraries) from
# the contrib and non-free components when nvcc is missing. Idempotent. The
# extra sources file is derived from the machine's own Debian sources, so no
# mirror is named here. About 1.6 GB to download; run once per machine.
set -euo pipefail

if command -v nvcc >/dev/null 2>&1 && command -v ptxas >/dev/null 2>&1; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi

src=/etc/apt/sources.list.d/debian.sources
dst=/etc/apt/sources.list.d/nonfree.sources
if [ ! -f "$dst" ]; then
  if [ ! -f "$src" ]; then
    echo "install-toolkit: $src not found; add Debian's contrib and non-free components by hand" >&2
    exit 1
  fi
  sed 's/^Components: main$/Components: contrib non-free/' "$src" | $sudo tee "$dst" >/dev/null
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nvidia-cuda-toolkit
nvcc --version | tail -n 2
