#!/usr/bin/env bash
# OpenMPI: mpirun starts the data-parallel tests' ranks, libmpi.so.40 is
# what rltrain loads at run time under a launcher, and mpicc builds the
# stand-in NCCL of make gpu-standin.
set -euo pipefail
want=(openmpi-bin libopenmpi-dev)
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
