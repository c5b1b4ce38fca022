#!/bin/sh
# Rollout throughput: rltrain's sampler against PyTorch's KV-cached greedy
# loop (scripts/torch_bench.py --mode decode, the faster of --cache dynamic
# and --cache static) on the same weights, for the
# reference model (d=256, 4 layers, vocab 4096) and a d=512 / 8-layer /
# vocab-32000 one, at 1, 8 and 64 running sequences (64 = 8 prompts × G=8),
# plus the gain from sharing a 256-token prompt across a group of 8.
# rltrain and PyTorch alternate over three rounds and each keeps its best
# (the shared machine's speed drifts over seconds).
# Prints JSON lines and a Markdown table. Takes several minutes on 2 cores.
#
#   scripts/bench_rollout.sh            # 2 threads for both
#   RLTRAIN_BENCH_THREADS=1 scripts/bench_rollout.sh
set -eu
cd "$(dirname "$0")/.."
# The AVX-512 Go kernels need the simd experiment (the Makefile's default).
export GOEXPERIMENT="${GOEXPERIMENT-simd}"
RLTRAIN_BENCH=1 exec go test -count=1 -run '^TestBenchRollout$' -timeout 60m -v ./rollout
