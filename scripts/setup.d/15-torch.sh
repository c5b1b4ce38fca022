#!/usr/bin/env bash
# PyTorch and NumPy for the reference scripts the tests and benchmarks
# compare against (make test, make bench). libgl1 is listed because
# Debian's torch 1.13 imports OpenCV libraries that load libGL.so.1 while
# installing with --no-install-recommends does not pull it in.
set -euo pipefail
source "$(dirname "$0")/apt.bash"
apt_install python3-torch python3-numpy libgl1
