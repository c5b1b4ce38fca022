#!/usr/bin/env python3
"""Prints the markdown table of a scripts/methods/compare.sh run.

For each method: held-out accuracy before RL and at the last step (mean
and per seed), generated tokens per step and mean completion length over
the run, the last eval's mean completion length, extra metrics named in the
spec's "# metrics:" line (averaged over steps), and wall time per run.
"""
import json
import re
import statistics
import sys


def read_run(log_path, metrics_path):
    text = open(log_path).read()
    base = re.search(r"baseline accuracy \(before RL\): ([0-9.]+)", text)
    final = re.search(r"final accuracy: ([0-9.]+)", text)
    wall = re.search(r"wall_s ([0-9.]+)", text)
    rows = [json.loads(l) for l in open(metrics_path) if l.strip()]
    return {
        "base": float(base.group(1)) if base else float("nan"),
        "final": float(final.group(1)),
        "wall": float(wall.group(1)) if wall else float("nan"),
        "rows": rows,
    }


def mean(xs):
    xs = [x for x in xs if x == x]
    return statistics.mean(xs) if xs else float("nan")


def main():
    spec, out, seeds = sys.argv[1], sys.argv[2], sys.argv[3:]
    names, extra = [], []
    for line in open(spec):
        if line.startswith("# metrics:"):
            extra = line.split(":", 1)[1].split()
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line.split("|")[0].strip())
    head = ["method", "accuracy before", "accuracy after (mean)", "after, per seed",
            "generated tokens/step", "completion length", "eval length (last)"] + extra + ["wall s/run"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in names:
        runs = [read_run(f"{out}/{name}/seed{s}.log", f"{out}/{name}/seed{s}/metrics.jsonl") for s in seeds]
        gen = mean([mean([r.get("perf/generated_tokens", float("nan")) for r in run["rows"]]) for run in runs])
        length = mean([mean([r.get("completions/mean_length", float("nan")) for r in run["rows"]]) for run in runs])
        evl = mean([[r["eval/mean_length"] for r in run["rows"] if "eval/mean_length" in r][-1] for run in runs])
        cells = [name, f"{mean([r['base'] for r in runs]):.3f}",
                 f"**{mean([r['final'] for r in runs]):.3f}** ± {statistics.pstdev([r['final'] for r in runs]):.3f}",
                 " / ".join(f"{r['final']:.3f}" for r in runs), f"{gen:.0f}", f"{length:.2f}", f"{evl:.2f}"]
        for k in extra:
            v = mean([mean([r.get(k, float("nan")) for r in run["rows"]]) for run in runs])
            cells.append("—" if v != v else f"{v:.4g}")
        cells.append(f"{mean([r['wall'] for r in runs]):.0f}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
