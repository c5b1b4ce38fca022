#!/usr/bin/env bash
# make gpu-standin's data-parallel check (called by run.sh with the binary
# and a scratch directory): two ranks under mpirun on the stand-in GPUs
# (backend cuda, STANDIN_DEVICES=2, each rank on the device at its local
# rank) sum their gradients with the NCCL binding against the stand-in
# libnccl.so.2 (NCCL's API over MPI, in bin/standin), and follow the
# one-process run on the same backend: step metrics within 1e-6 relative
# (absolute floor 1.2e-7 for metrics that cancel to ~0), the id handshake
# and one ncclAllReduce per gradient bucket in each rank's call trace.
set -euo pipefail
rl=$1
work=$2
mpirun=$(command -v mpirun.openmpi || command -v mpirun) || {
  echo "mpirun not found (make setup installs Open MPI)"
  exit 1
}
flags=(-np 2 --oversubscribe --mca btl_vader_single_copy_mechanism none)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
cfg=(configs/demo.yaml --set sft.steps=0 --set train.steps=2 --set rollout.batch_size=4 --set data.eval_size=0
  --set checkpoint.every=2 --set rollout.batch_invariant=true --set backend.type=cuda --overwrite)
export STANDIN_DEVICES=2 RLTRAIN_NCCL_STANDIN_TRACE="$work/nccl"
rm -f "$work"/nccl.*
"$rl" run "${cfg[@]}" --set train.out_dir="$work/dp1" >"$work/dp1.log" 2>&1 || { cat "$work/dp1.log"; exit 1; }
"$mpirun" "${flags[@]}" "$rl" run "${cfg[@]}" --set train.out_dir="$work/dp2" >"$work/dp2.log" 2>&1 || { cat "$work/dp2.log"; exit 1; }
cat "$work/dp2.log"
grep -q "^data parallel: MPI: Open MPI .*, 2 ranks" "$work/dp2.log"
grep -q "gradients summed by NCCL 2.21.5 (libnccl.so.2)" "$work/dp2.log"
for r in 0 1; do
  t="$work/nccl.$r"
  grep -q "^ncclCommInitRank nranks=2 rank=$r$" "$t" && grep -q "^ncclCommDestroy$" "$t" || { cat "$t"; exit 1; }
  if [ $r = 0 ]; then grep -q "^ncclGetUniqueId$" "$t"; else ! grep -q "^ncclGetUniqueId$" "$t"; fi
  # The demo model's gradient is one 25 MB bucket: one all-reduce per step.
  [ "$(grep -c '^ncclAllReduce count=[0-9]* datatype=7 op=0 inplace=1' "$t")" = 2 ] || { cat "$t"; exit 1; }
done
python3 - "$work/dp1/metrics.jsonl" "$work/dp2/metrics.jsonl" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 2, (len(a), len(b))
bad = 0
for x, y in zip(a, b):
    for k, v in x.items():
        # rollout/logp_diff_*: the sampler's log-probs against the trainer's
        # recomputation, a rounding-level figure (~5e-7) that depends on how
        # each rank's GEMMs round; not a quantity ranks must reproduce.
        # rollout/peak_kv_blocks: the largest rank's own cache peak, a memory
        # figure that depends on how many prompts a rank samples.
        if k.startswith(("timing_s/", "perf/", "rollout/logp_diff")) or k == "rollout/peak_kv_blocks" or v is None:
            continue
        d = abs(v - y[k])
        if d > 1e-6 * max(abs(v), abs(y[k])) + 1.2e-7:
            print(f"step {x['step']} {k}: one process {v!r}, two ranks {y[k]!r}")
            bad += 1
    assert y["perf/world_size"] == 2
print(f"{len(a)} steps: two ranks with NCCL follow one process")
sys.exit(1 if bad else 0)
PY
