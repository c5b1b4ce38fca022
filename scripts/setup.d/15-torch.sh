#!/usr/bin/env bash
# PyTorch and NumPy for the reference scripts the tests and benchmarks
# compare against (make test, make bench). libgl1 is listed because
# Debian's torch 1.13 imports OpenCV libraries that load libGL.so.1 while
# installing with --no-install-recommends does not pull it in.
set -euo pipefail
want=(python3-torch python3-numpy libgl1)
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
