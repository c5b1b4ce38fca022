#!/usr/bin/env bash
# Sanitizer pass over the emulated CUDA kernel tests (no GPU needed):
#  1. AddressSanitizer: every kernel test clean, and a planted one-past-the-
#     end read is caught.
#  2. ThreadSanitizer, with every CUDA thread a separate thread for the race
#     detector (the emulator's fibers are registered with it, and
#     __syncthreads and __syncwarp are its only synchronisation: shuffles and
#     votes are not memory fences): every kernel test clean, and a planted
#     missing __syncthreads and a shuffle used as a fence are caught.
# Takes a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

pkg=./kernels/cuda
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The kernel tests and the emulator's self-tests; the tests of deliberate
# deadlocks abandon fibers mid-kernel and are left out, and the tiny-model
# test and the sampling test (hundreds of block-wide bisection steps per row)
# are too slow under the sanitizers.
clean='TestKernelsMatchCPU|TestBF16|TestEmuBlockReduce|TestEmuShuffles|TestEmuAtomics|TestEmuDynamic|TestEmuBounds'

echo "== AddressSanitizer"
# Leak checking is off: tests keep their device buffers until exit.
export ASAN_OPTIONS=detect_leaks=0
# go's -asan instruments C but not C++: ask for the emulator and kernels too.
export CGO_CXXFLAGS="-fsanitize=address -O1 -g"
go test -asan -count=1 -run "$clean" "$pkg"
if RLTRAIN_EMU_PLANTED=oob go test -asan -count=1 -run TestEmuPlantedOutOfBounds "$pkg" >"$work/oob.log" 2>&1; then
  echo "sanitize.sh: the planted out-of-bounds read was not reported" >&2
  exit 1
fi
if ! grep -q "heap-buffer-overflow" "$work/oob.log"; then
  echo "sanitize.sh: the planted out-of-bounds test failed without an AddressSanitizer report:" >&2
  tail -20 "$work/oob.log" >&2
  exit 1
fi
echo "planted out-of-bounds read: caught"

echo "== ThreadSanitizer"
unset CGO_CXXFLAGS
CGO_CFLAGS="-fsanitize=thread -O1 -g" CGO_CXXFLAGS="-fsanitize=thread -O1 -g" CGO_LDFLAGS="-fsanitize=thread" \
  go test -c -o "$work/tsan.test" "$pkg"
export TSAN_OPTIONS="halt_on_error=0"
if command -v llvm-symbolizer >/dev/null; then
  TSAN_OPTIONS="$TSAN_OPTIONS external_symbolizer_path=$(command -v llvm-symbolizer)"
fi
(cd "$pkg" && "$work/tsan.test" -test.run "$clean" >"$work/tsan.log" 2>&1) || {
  tail -40 "$work/tsan.log" >&2
  exit 1
}
if grep -q "WARNING: ThreadSanitizer" "$work/tsan.log"; then
  grep -A30 -m3 "WARNING: ThreadSanitizer" "$work/tsan.log" >&2
  echo "sanitize.sh: ThreadSanitizer reported races in the kernels" >&2
  exit 1
fi
echo "kernel tests: no races"
# planted_race TEST KERNEL WHAT: the test runs a kernel with a planted race
# that ThreadSanitizer must report inside KERNEL.
planted_race() {
  local log="$work/$1.log"
  (cd "$pkg" && "$work/tsan.test" -test.run "$1" >"$log" 2>&1) || true
  if ! grep -q "WARNING: ThreadSanitizer: data race" "$log" || ! grep -q "$2" "$log"; then
    echo "sanitize.sh: $3 was not reported as a race" >&2
    tail -20 "$log" >&2
    exit 1
  fi
  echo "$3: caught"
}
planted_race TestEmuMissingBarrier selftest_missing_barrier "the planted missing __syncthreads"
planted_race TestEmuShuffleIsNotAFence selftest_shuffle_not_fence "a shared-memory read ordered only by a shuffle"
echo "sanitize: ok"
