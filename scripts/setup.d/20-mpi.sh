#!/usr/bin/env bash
# MPI for data-parallel runs. Open MPI: mpirun starts the tests' ranks,
# libmpi.so.40 is what rltrain loads under it, mpicc builds the stand-in
# NCCL. MPICH (runtime and its hydra launcher only; Open MPI stays the
# default mpirun): the tests run the same collectives through its ABI.
set -euo pipefail
source "$(dirname "$0")/apt.bash"
apt_install openmpi-bin libopenmpi-dev mpich
