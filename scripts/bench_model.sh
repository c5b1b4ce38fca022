#!/usr/bin/env bash
# Compares one training step (forward + cross-entropy + backward + AdamW) of
# rltrain with PyTorch on the same machine, in one run, for the reference
# shapes. Prints a markdown table of ms/step, tokens/s, effective GFLOP/s,
# the ratio to PyTorch and peak RSS. The machine may be shared: read the
# ratios, and repeat when numbers look off.
#
#   scripts/bench_model.sh [--steps N] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=10
warmup=2
shapes=("--hidden 256 --layers 4 --heads 4 --kv-heads 2 --head-dim 64 --ffn 768 --vocab 4096 --batch 8 --seq 256"
        "--hidden 512 --layers 8 --heads 8 --kv-heads 4 --head-dim 64 --ffn 1536 --vocab 32000 --batch 8 --seq 256")
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --quick) steps=3; warmup=1; shapes=("${shapes[0]}"); shift ;;
    *) echo "usage: $0 [--steps N] [--quick]" >&2; exit 2 ;;
  esac
done
GOEXPERIMENT=${GOEXPERIMENT-simd} go build -o bin/trainstep ./bench/trainstep
out=$(mktemp)
trap 'rm -f "$out"' EXIT
./bin/trainstep --gemm-peak >>"$out"
for shape in "${shapes[@]}"; do
  # shellcheck disable=SC2086
  ./bin/trainstep $shape --steps "$steps" --warmup "$warmup" | sed "s|^{|{\"shape\": \"$shape\", |" >>"$out"
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=2 /usr/bin/python3 scripts/torch_bench.py $shape --steps "$steps" --warmup "$warmup" \
    | sed "s|^{|{\"shape\": \"$shape\", \"setting\": \"best\", |" >>"$out"
  # shellcheck disable=SC2086
  env -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS /usr/bin/python3 scripts/torch_bench.py $shape --steps "$steps" --warmup "$warmup" \
    | sed "s|^{|{\"shape\": \"$shape\", \"setting\": \"default\", |" >>"$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peak = next(r["gflops"] for r in rows if r.get("mode") == "gemm-peak")
print(f"GEMM peak through the backend (2048³, all cores): {peak:.0f} GFLOP/s\n")
print("| shape | implementation | ms/step | tokens/s | GFLOP/s (% of GEMM peak) | speed-up vs PyTorch best | peak RSS MB |")
print("|---|---|---|---|---|---|---|")
for shape in dict.fromkeys(r["shape"] for r in rows if "shape" in r):
    group = [r for r in rows if r.get("shape") == shape]
    ours = next(r for r in group if r["impl"] == "rltrain")
    best = next(r for r in group if r.get("setting") == "best")
    kv = dict(zip(shape.split()[0::2], shape.split()[1::2]))
    short = f"d={kv['--hidden']} L={kv['--layers']} V={kv['--vocab']}"
    flops = ours["gflops"] * ours["ms_per_step"] / 1000
    for r in group:
        name = "rltrain" if r["impl"] == "rltrain" else f"PyTorch {r['torch']} ({r['setting']}: OMP={r['env'].get('OMP_NUM_THREADS','unset')}, OPENBLAS={r['env'].get('OPENBLAS_NUM_THREADS','unset')})"
        g = flops / (r["ms_per_step"] / 1000)
        print(f"| {short} | {name} | {r['ms_per_step']:.0f} | {r['tokens_per_s']:.0f} | {g:.0f} ({100*g/peak:.0f}%) | {best['ms_per_step']/r['ms_per_step']:.2f}× | {r['peak_rss_mb']:.0f} |")
PY
