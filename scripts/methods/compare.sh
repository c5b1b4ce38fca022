#!/usr/bin/env bash
# Compares training methods over several seeds: runs each line of a spec
# file (`name | config | --set overrides...`) once per seed and prints a
# markdown table of held-out accuracy before and after RL, generated
# tokens and completion length at the same step count, and wall time.
#
#   scripts/methods/compare.sh scripts/methods/gspo.spec [OUT_DIR] [SEEDS]
#
# OUT_DIR defaults to runs/compare/<spec name>, SEEDS to "1 2 3"; RLTRAIN
# names the binary (default bin/rltrain, built when missing). Runs that
# already finished (their log ends with the final accuracy) are not rerun,
# so an interrupted comparison continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
spec=$1
out=${2:-runs/compare/$(basename "$spec" .spec)}
seeds=${3:-1 2 3}
bin=${RLTRAIN:-bin/rltrain}
[ -x "$bin" ] || go build -o "$bin" ./cmd/rltrain
mkdir -p "$out"
while IFS='|' read -r name cfg sets; do
  case "$name" in ''|\#*) continue ;; esac
  name=${name// /}
  cfg=${cfg// /}
  for seed in $seeds; do
    dir="$out/$name/seed$seed"
    if [ -f "$dir.log" ] && grep -q '^final accuracy' "$dir.log"; then continue; fi
    echo "== $name seed $seed" >&2
    mkdir -p "$out/$name"
    start=$(date +%s)
    # shellcheck disable=SC2086 # the overrides are split on purpose
    "$bin" run "$cfg" --overwrite --set "train.out_dir=$dir" --set "train.seed=$seed" \
      --set checkpoint.every=0 --set checkpoint.keep_last=1 $sets >"$dir.log" 2>&1 </dev/null ||
      { echo "failed: $dir.log" >&2; tail -5 "$dir.log" >&2; exit 1; }
    echo "wall_s $(( $(date +%s) - start ))" >>"$dir.log"
  done
done <"$spec"
python3 scripts/methods/summarize.py "$spec" "$out" $seeds
