#!/usr/bin/env bash
# GPU checks for machines with an NVIDIA GPU (users' GPU CI runners):
#   gpu-ci.sh test   every kernel against the CPU backend on fresh random
#                    inputs, 20 GRPO steps of tiny models against the CPU
#                    (and 5 with bf16 or TF32 GEMMs, within their
#                    tolerances),
#                    and compute-sanitizer memcheck and racecheck over the
#                    kernel tests (make gpu-test)
#   gpu-ci.sh bench  kernel times against their bandwidth or FLOP floors,
#                    training-step MFU, decode tokens/s, peak device
#                    memory (make bench-gpu)
#   gpu-ci.sh        both
# Without a GPU it says so and exits 0. Building needs cuda.h and libcuda
# (the NVIDIA driver); the kernels are embedded PTX, so nvcc is not needed.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode="${1:-all}"
case "$mode" in test | bench | all) ;; *)
  echo "usage: $0 [test|bench|all]" >&2
  exit 2
  ;;
esac

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  echo "gpu-ci: no NVIDIA GPU found (nvidia-smi lists none); skipping the GPU tests and benchmarks"
  exit 0
fi
nvidia-smi -L

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -tags cuda -c -o "$work/cudrv.test" ./kernels/cuda/cudrv

if [ "$mode" != bench ]; then
  seed="${RLTRAIN_SEED:-$(date +%s)}"
  echo "== kernels and tiny models against the CPU (RLTRAIN_SEED=$seed)"
  RLTRAIN_SEED="$seed" "$work/cudrv.test" -test.v -test.run 'TestDriverBasics|TestKernelsMatchCPU|TestModelMatchesCPU|TestBF16|TestModelBF16|TestModelTF32'
  if command -v compute-sanitizer >/dev/null 2>&1; then
    for tool in memcheck racecheck; do
      echo "== compute-sanitizer --tool $tool"
      compute-sanitizer --tool "$tool" --error-exitcode 1 "$work/cudrv.test" -test.run TestKernelsMatchCPU
    done
  else
    echo "gpu-ci: compute-sanitizer not found (it comes with the CUDA toolkit); skipping memcheck and racecheck" >&2
  fi
fi

if [ "$mode" != test ]; then
  echo "== benchmarks"
  RLTRAIN_BENCH_GPU=1 "$work/cudrv.test" -test.v -test.run TestBenchGPU
fi
