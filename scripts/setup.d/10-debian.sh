#!/usr/bin/env bash
# Debian packages: OpenBLAS for the CPU GEMM, PyTorch and NumPy for the
# reference scripts the tests compare against.
set -euo pipefail
want=(libopenblas-dev python3-torch python3-numpy)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
