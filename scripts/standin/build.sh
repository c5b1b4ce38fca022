#!/usr/bin/env bash
# Builds the stand-in libraries into bin/standin (or $1): the NVIDIA driver
# and cuBLAS modelled on the CPU (see libcuda.cc and libcublas.cc), for
# running rltrain's real GPU code path without a GPU. Rebuilds a library
# only when one of its sources is newer.
#
# To add a stand-in, write its source here and add one `lib` line below:
#   lib NAME "SOURCES" "EXTRA FLAGS AND LIBRARIES"
# Sources are relative to the repository root; common.cc and standin.h are
# part of every library, and libraries listed earlier can be linked
# against (-l:libcuda.so.1), bin/standin being on the run-time path.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-bin/standin}"
mkdir -p "$out"
here=scripts/standin
CXX="${CXX:-g++}"
# Hidden by default, with -Bsymbolic: a library's own symbols (the emulator
# inside libcuda.so.1 above all) never bind to a same-named symbol of the
# program that loads it (rltrain links the emulator too).
base=(-std=c++20 -O2 -g0 -fPIC -shared -fvisibility=hidden -Wl,-Bsymbolic -Wl,-z,defs -Wall -Wno-unknown-pragmas -I"$here" -Ikernels/cuda)

lib() {
  local name=$1 srcs=$2 extra=$3
  local target="$out/$name" deps
  deps="$srcs $here/common.cc $here/standin.h $here/build.sh"
  if [ -f "$target" ] && [ -z "$(find $deps kernels/cuda/*.cu kernels/cuda/*.cuh kernels/cuda/emu* -newer "$target" 2>/dev/null | head -1)" ]; then
    return
  fi
  echo "standin: building $target"
  mkdir -p "$(dirname "$target")"
  # shellcheck disable=SC2086
  "$CXX" "${base[@]}" -o "$target.tmp" $srcs "$here/common.cc" -L"$out" -Wl,-rpath,'$ORIGIN' -Wl,-rpath,'$ORIGIN/..' $extra
  mv "$target.tmp" "$target"
}

lib libcuda.so.1 "$here/libcuda.cc kernels/cuda/emu_runtime.cc kernels/cuda/emu_kernels.cc" "-lopenblas -lpthread"
lib libcublas.so.12 "$here/libcublas.cc" "-DSTANDIN_CUBLAS_MAJOR=12 -l:libcuda.so.1 -lopenblas"
# A second cuBLAS for the fallback test (a .13 whose cublasCreate can be
# made to fail); the binary tries .13 first.
lib cublas13/libcublas.so.13 "$here/libcublas.cc" "-DSTANDIN_CUBLAS_MAJOR=13 -L$out -l:libcuda.so.1 -lopenblas"
# NCCL's API over MPI (internal/dist/standin/nccl.c), for the data-parallel
# check; built with Open MPI's mpicc.
bash scripts/standin-nccl.sh "$out" >/dev/null
