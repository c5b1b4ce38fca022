#!/usr/bin/env bash
# OpenBLAS for the CPU GEMM: the one package building and running rltrain
# needs (make run installs only this part).
set -euo pipefail
source "$(dirname "$0")/apt.bash"
apt_install libopenblas-dev
