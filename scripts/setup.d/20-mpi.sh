#!/usr/bin/env bash
# MPI for data-parallel runs. Open MPI: mpirun starts the tests' ranks,
# libmpi.so.40 is what rltrain loads under it, mpicc builds the stand-in
# NCCL. MPICH (runtime and its hydra launcher only; Open MPI stays the
# default mpirun): the tests run the same collectives through its ABI.
set -euo pipefail
want=(openmpi-bin libopenmpi-dev mpich)
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
