#!/usr/bin/env bash
# The CUDA proof that needs no GPU: toolkit present (installed when
# missing), PTX regenerated and identical to the committed files, PTX
# assembled by ptxas for each architecture, and the cuda-tagged build
# (the real driver) compiled, vetted and its test binary linked.
set -euo pipefail
cd "$(dirname "$0")/../.."

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
for arch in ${CUDA_ARCHS:-sm_80 sm_90}; do
  for f in kernels/cuda/ptx/"$arch"/*.ptx; do
    ptxas -arch="$arch" -o /dev/null "$f"
  done
  echo "ptxas $arch: ok"
done
go build -tags cuda ./...
go vet -tags cuda ./...
go test -tags cuda -c -o /dev/null ./kernels/cuda/cudrv
echo "cuda check: ok"
