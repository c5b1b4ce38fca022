#!/usr/bin/env bash
# GPU checks for machines with an NVIDIA GPU (users' GPU CI runners):
#   gpu-ci.sh test   the GPU conformance suite (internal/cudatest's TestGPU*):
#                    every kernel against the CPU backend on fresh random
#                    inputs, device sampling, the one-pass output layer,
#                    20 GRPO steps of tiny models against the CPU (and 5
#                    with bf16 or TF32 GEMMs, within their tolerances); a
#                    failing test is run again with CUDA_LAUNCH_BLOCKING=1
#                    so that a fault is reported at the kernel that caused
#                    it; then compute-sanitizer memcheck and racecheck over
#                    the kernel tests (make gpu-test)
#   gpu-ci.sh bench  kernel times against their bandwidth or FLOP floors,
#                    training-step MFU, decode tokens/s, peak device
#                    memory, written to bench-gpu.json and compared with
#                    bench/baseline-gpu.json when it exists (make bench-gpu)
#   gpu-ci.sh        both
# Without a GPU it says so and exits 0. Nothing of CUDA is needed to build:
# the binary loads the driver and cuBLAS at run time.
#
# RLTRAIN_GPU_STANDIN=1 runs the same suite against the stand-in driver
# (make gpu-standin sets it, with LD_LIBRARY_PATH=bin/standin) instead of
# looking for a GPU with nvidia-smi.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode="${1:-all}"
case "$mode" in test | bench | all) ;; *)
  echo "usage: $0 [test|bench|all]" >&2
  exit 2
  ;;
esac

if [ -z "${RLTRAIN_GPU_STANDIN:-}" ]; then
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    echo "gpu-ci: no NVIDIA GPU found (nvidia-smi lists none); skipping the GPU tests and benchmarks"
    exit 0
  fi
  nvidia-smi -L
fi
# A GPU is there: a test that cannot open it fails instead of skipping.
export RLTRAIN_REQUIRE_GPU=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/cudatest.test" ./internal/cudatest
pkgdir=internal/cudatest

status=0
if [ "$mode" != bench ]; then
  seed="${RLTRAIN_SEED:-$(date +%s)}"
  echo "== GPU conformance suite (RLTRAIN_SEED=$seed)"
  set +e
  (cd "$pkgdir" && RLTRAIN_SEED="$seed" "$work/cudatest.test" -test.v -test.run '^TestGPU') 2>&1 | tee "$work/suite.log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    status=1
    failed=$(sed -n 's/^--- FAIL: \(TestGPU[A-Za-z0-9_]*\).*/\1/p' "$work/suite.log" | sort -u)
    for t in $failed; do
      echo "== $t again with CUDA_LAUNCH_BLOCKING=1 (faults reported at the kernel that caused them)"
      (cd "$pkgdir" && CUDA_LAUNCH_BLOCKING=1 RLTRAIN_SEED="$seed" "$work/cudatest.test" -test.v -test.run "^$t\$") || true
    done
    [ -n "$failed" ] || echo "gpu-ci: the suite failed before any test reported (exit $rc)" >&2
  fi
  if [ -n "${RLTRAIN_GPU_STANDIN:-}" ]; then
    : # compute-sanitizer needs a real GPU
  elif command -v compute-sanitizer >/dev/null 2>&1; then
    for tool in memcheck racecheck; do
      echo "== compute-sanitizer --tool $tool"
      (cd "$pkgdir" && compute-sanitizer --tool "$tool" --error-exitcode 1 "$work/cudatest.test" -test.run '^TestGPUKernels$') || status=1
    done
  else
    echo "gpu-ci: compute-sanitizer not found (it comes with the CUDA toolkit); skipping memcheck and racecheck" >&2
  fi
fi

if [ "$mode" != test ]; then
  echo "== benchmarks"
  out="${RLTRAIN_BENCH_JSON:-$PWD/bench-gpu.json}"
  (cd "$pkgdir" && RLTRAIN_BENCH_GPU=1 RLTRAIN_BENCH_JSON="$out" "$work/cudatest.test" -test.v -test.run '^TestBenchGPU$') || status=1
  baseline="${RLTRAIN_BENCH_BASELINE:-bench/baseline-gpu.json}"
  if [ -f "$baseline" ] && [ -f "$out" ]; then
    echo "== against $baseline (a figure more than 10% worse fails)"
    go run ./scripts/bench_compare -threshold 0.10 "$baseline" "$out" || status=1
  fi
fi
exit "$status"
