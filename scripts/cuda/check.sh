#!/usr/bin/env bash
# The CUDA proof that needs no GPU: toolkit present (installed when
# missing), PTX regenerated and identical to the committed files, and the
# committed PTX (one target, sm_75, which the driver JIT-compiles for any
# newer GPU) assembled by ptxas for sm_75, sm_80 and sm_90, as the driver
# would on a T4, an A100 and an H100.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash scripts/cuda/install-toolkit.sh
bash scripts/cuda/ptx.sh
if ! git diff --exit-code --stat -- kernels/cuda/ptx; then
  echo "check.sh: committed PTX differs from the sources; run scripts/cuda/ptx.sh and commit kernels/cuda/ptx" >&2
  exit 1
fi
if [ -n "$(git ls-files --others --exclude-standard kernels/cuda/ptx)" ]; then
  echo "check.sh: new PTX files are not committed:" >&2
  git ls-files --others --exclude-standard kernels/cuda/ptx >&2
  exit 1
fi
# ptxas -v also reports each kernel's local memory: register spills fail
# the check (the attention kernels keep their accumulators in registers by
# design); a stack frame (a local array) is reported.
for arch in ${CUDA_ARCHS:-sm_75 sm_80 sm_90}; do
  for f in kernels/cuda/ptx/sm_75/*.ptx; do
    ptxas -v -arch="$arch" -o /dev/null "$f" 2>"$work/ptxas.log" || { cat "$work/ptxas.log" >&2; exit 1; }
    awk -v file="$f" '
      /Compiling entry function/ { name = $0; sub(/.*function ./, "", name); sub(/. for .*/, "", name) }
      /bytes stack frame/ {
        if ($5 != 0 || $9 != 0) { printf "check.sh: %s: kernel %s spills registers: %s\n", file, name, $0; bad = 1 }
        else if ($1 != 0) printf "check.sh: note: %s: kernel %s has a %s-byte stack frame\n", file, name, $1
      }
      END { exit bad }' "$work/ptxas.log" >&2
  done
  echo "ptxas $arch: ok, no register spills"
done
echo "cuda check: ok"
