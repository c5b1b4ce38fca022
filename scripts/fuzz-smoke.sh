#!/usr/bin/env bash
# Runs each parser fuzz target for a few seconds (FUZZTIME, default 3s), as
# `make test` does: the config decoders, the safetensors header, the
# tokenizer.json loader and the JSONL reader. Plain `go test` already runs
# their seeds and every crasher checked in under testdata/fuzz. A target
# that finds a crasher fails here and leaves the input in the package's
# testdata/fuzz/<target>/: check it in as a regression case with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${FUZZTIME:-3s}"
export GOEXPERIMENT="${GOEXPERIMENT-simd}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in \
  ./train/config:FuzzParse \
  ./model:FuzzParseConfig \
  ./model/safetensors:FuzzParseHeader \
  ./model/tokenizer:FuzzFromJSON \
  ./data:FuzzReadJSONL; do
  pkg="${target%%:*}" name="${target#*:}"
  echo "fuzz $name ($pkg) for $t"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -parallel 2 "$pkg" >"$log" 2>&1; then
    cat "$log"
    exit 1
  fi
done
