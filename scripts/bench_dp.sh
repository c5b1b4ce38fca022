#!/usr/bin/env bash
# Data-parallel scaling on this machine: `rltrain bench` (RL steps of the
# demo config, and of the demo task on a d=512 / 8-layer model) run as one
# process with 2 threads, one process with 1 thread, and 2 ranks with 1
# thread each under mpirun; then the all-reduce of a gradient buffer of
# each model's size, whole and in the trainer's 25 MB buckets.
#
# Scaling efficiency is given both ways: against the one-process run on the
# same two cores (2 ranks x 1 thread over 1 process x 2 threads: what
# data parallelism costs or gains over threading) and against one rank
# alone (2 ranks over 2 x 1 process x 1 thread). Time in all-reduce is
# rank 0's time inside the gradient sums (it includes waiting for the
# slower rank). The 2-rank runs are made twice: with the trainer's choice
# (here, two single-threaded ranks fill both cores, so the sums start after
# the backward pass) and with the sums forced to start during the backward
# pass (RLTRAIN_GRAD_OVERLAP=on), where the overlap is the part of the
# all-reduce time spent while the backward pass was still running. Takes a few minutes on 2 cores; the numbers are
# only as steady as the machine is idle.
#
#   scripts/bench_dp.sh [timed steps, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT="${GOEXPERIMENT-simd}"
steps=${1:-3}
go build -o bin/rltrain ./cmd/rltrain
go build -o bin/allreduce-bench ./bench/allreduce
mpirun=$(command -v mpirun.openmpi || command -v mpirun || true)
if [ -z "$mpirun" ]; then
  echo "bench_dp: mpirun not found (make setup installs Open MPI)" >&2
  exit 1
fi
flags=(-np 2 --oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)

d512=(--set model.init.hidden=512 --set model.init.layers=8 --set model.init.heads=8
  --set model.init.kv_heads=4 --set model.init.ffn=1536)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() { # name, then rltrain bench arguments
  local name=$1
  shift
  echo "bench_dp: $name" >&2
  "$@" --steps "$steps" --json >"$out/$name.json"
}
for model in demo d512; do
  extra=()
  [ "$model" = d512 ] && extra=("${d512[@]}")
  run "$model-1x2" bin/rltrain bench configs/demo.yaml "${extra[@]}" --set backend.threads=2
  run "$model-1x1" bin/rltrain bench configs/demo.yaml "${extra[@]}" --set backend.threads=1
  run "$model-2x1" "$mpirun" "${flags[@]}" bin/rltrain bench configs/demo.yaml "${extra[@]}" --set backend.threads=1
  RLTRAIN_GRAD_OVERLAP=on run "$model-2x1on" "$mpirun" "${flags[@]}" -x RLTRAIN_GRAD_OVERLAP bin/rltrain bench configs/demo.yaml "${extra[@]}" --set backend.threads=1
done

python3 - "$out" "$mpirun" "${flags[*]}" <<'EOF'
import json, subprocess, sys
out, mpirun, flags = sys.argv[1], sys.argv[2], sys.argv[3].split()
rows = []
for model in ("demo", "d512"):
    r = {k: json.load(open(f"{out}/{model}-{k}.json")) for k in ("1x2", "1x1", "2x1", "2x1on")}
    sps = {k: 1 / v["StepSeconds"] for k, v in r.items()}
    two = r["2x1"]
    t = two["Timing"]
    ar = t.get("timing_s/allreduce", 0)
    params = two["Params"]
    bw = {}
    for bucket in (0, 25):
        line = subprocess.run([mpirun, *flags, "bin/allreduce-bench", "--floats", str(params), "--bucket-mb", str(bucket)],
                              capture_output=True, text=True, check=True).stdout.strip()
        print(line)
        bw[bucket] = line
    row = dict(model=model, params=params, grad_mb=params * 4 / 1e6,
               sps_1x2=sps["1x2"], sps_1x1=sps["1x1"], sps_2x1=sps["2x1"],
               eff_same_cores=sps["2x1"] / sps["1x2"], eff_per_rank=sps["2x1"] / (2 * sps["1x1"]),
               step_s_2x1=two["StepSeconds"], update_s_2x1=t.get("timing_s/update", 0),
               allreduce_s=ar, allreduce_wait_s=t.get("timing_s/allreduce_wait", 0),
               overlap=two.get("AllreduceOverlap", 0),
               sps_2x1_overlap=sps["2x1on"], allreduce_s_overlap=r["2x1on"]["Timing"].get("timing_s/allreduce", 0),
               overlap_forced=r["2x1on"].get("AllreduceOverlap", 0))
    print(json.dumps(row))
    rows.append(row)
print()
print("| model | params (gradient MB) | steps/s 1 proc x 2 threads | 1 proc x 1 thread | 2 ranks x 1 thread | efficiency vs 1x2 | vs 2 x (1x1) | all-reduce s/step (waited) | sums during backward: steps/s, all-reduce s/step, overlapped |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['model']} | {r['params']/1e6:.2f}M ({r['grad_mb']:.1f}) | {r['sps_1x2']:.2f} | {r['sps_1x1']:.2f} | {r['sps_2x1']:.2f} | "
          f"{100*r['eff_same_cores']:.0f}% | {100*r['eff_per_rank']:.0f}% | {r['allreduce_s']:.3f} ({r['allreduce_wait_s']:.3f}) | "
          f"{r['sps_2x1_overlap']:.3f}, {r['allreduce_s_overlap']:.3f}, {100*r['overlap_forced']:.0f}% |")
EOF
