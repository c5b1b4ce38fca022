#!/usr/bin/env bash
# Builds the stand-in libnccl.so.2 (internal/dist/standin/nccl.c: the NCCL
# API over MPI) into DIR (default bin/standin), for running the NCCL binding
# on machines without NVIDIA's library. Needs mpicc (make setup installs
# OpenMPI's).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bin/standin}
mkdir -p "$out"
if ! command -v mpicc >/dev/null; then
  echo "standin-nccl: mpicc not found (make setup installs libopenmpi-dev)" >&2
  exit 1
fi
mpicc -O2 -Wall -Wextra -Werror -shared -fPIC -Wl,-soname,libnccl.so.2 \
  -o "$out/libnccl.so.2" internal/dist/standin/nccl.c
echo "standin-nccl: $out/libnccl.so.2"
