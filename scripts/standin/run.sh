#!/usr/bin/env bash
# make gpu-standin: the real rltrain binary's GPU path, end to end, on the
# stand-in NVIDIA driver and cuBLAS (scripts/standin/*.cc over the CPU
# emulator and OpenBLAS), without a GPU:
#   - the GPU conformance suite that make gpu-test runs on hardware;
#   - rltrain version naming the device, driver and cuBLAS found;
#   - rltrain run with backend: cuda against the CPU run of the same short
#     demo config (the emulated backend's tolerances);
#   - generate, logprobs and eval with --backend cuda against the CPU;
#   - device errors (injected out-of-memory, kernel fault, cuBLAS failure)
#     ending a run with a clear message naming the last good checkpoint,
#     which stays intact and resumes;
#   - compute capability 7.5 (fp32 runs, bf16 refused), no device, a JIT
#     failure with its log, the cuBLAS fallback from .13 to .12;
#   - every driver and cuBLAS function the binding loads was called.
# The last line is "N passed, M failed"; the exit status is 1 when M > 0.
# ONLY=REGEX runs only the checks whose name matches (the suite's name is
# "conformance suite").
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export GOEXPERIMENT="${GOEXPERIMENT-simd}"

bash scripts/standin/build.sh || exit 1
go build -o bin/rltrain ./cmd/rltrain || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LD_LIBRARY_PATH="$root/bin/standin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export STANDIN_CALLS="$work/calls"
rl="$root/bin/rltrain"

passed=0
failed=0
# check NAME CMD...: one check; its output is shown when it fails.
check() {
  local name=$1
  shift
  if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then return; fi
  local t0=$SECONDS
  if "$@" >"$work/check.log" 2>&1; then
    passed=$((passed + 1))
    echo "ok    $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1))
    echo "FAIL  $name ($((SECONDS - t0)) s)"
    tail -n 40 "$work/check.log" | sed 's/^/      /'
  fi
}

# ---- the conformance suite ----------------------------------------------
echo "== GPU conformance suite on the stand-in (scripts/cuda/gpu-ci.sh test)"
if [ -z "${ONLY:-}" ] || [[ "conformance suite" =~ $ONLY ]]; then
  t0=$SECONDS
  RLTRAIN_GPU_STANDIN=1 RLTRAIN_SEED=1 bash scripts/cuda/gpu-ci.sh test >"$work/suite.log" 2>&1
  suite_rc=$?
  echo "  ($((SECONDS - t0)) s, the test binary's build included)"
else
  : >"$work/suite.log"
  suite_rc=0
fi
grep -E '^--- (PASS|FAIL|SKIP): TestGPU' "$work/suite.log" | sed 's/^/  /'
n_pass=$(grep -cE '^--- PASS: TestGPU' "$work/suite.log")
n_fail=$(grep -cE '^--- FAIL: TestGPU' "$work/suite.log")
n_skip=$(grep -cE '^--- SKIP: TestGPU' "$work/suite.log")
passed=$((passed + n_pass))
failed=$((failed + n_fail + n_skip))
if [ "$suite_rc" -ne 0 ] && [ "$n_fail" -eq 0 ]; then
  failed=$((failed + 1))
  echo "FAIL  the suite exited $suite_rc without a failing test:"
  tail -n 40 "$work/suite.log" | sed 's/^/      /'
elif [ "$n_fail" -ne 0 ]; then
  grep -B2 -A20 -E '^\s+--- FAIL|Error' "$work/suite.log" | head -80 | sed 's/^/      /'
fi

# ---- the binary ---------------------------------------------------------
echo "== rltrain on the stand-in"
version_reports_gpu() {
  "$rl" version | tee /dev/stderr | grep -q 'cuda: GPU 0: rltrain stand-in GPU (CPU emulator), compute capability 9.0.*driver CUDA 12.8; libcublas.so.12 12.0.0; kernels: PTX sm_75'
}
check "rltrain version names the GPU, driver, compute capability and cuBLAS" version_reports_gpu
bench_reports_gpu() {
  "$rl" bench configs/demo.yaml --set backend.type=cuda --set rollout.batch_size=2 --steps 1 --warmup 0 | tee /dev/stderr |
    grep -q '^device: GPU 0: rltrain stand-in GPU (CPU emulator), compute capability 9.0.*libcublas.so.12'
}
check "rltrain bench names the device it measured" bench_reports_gpu

# A short run of the demo: an SFT warm-up, then GRPO with evaluation and a
# checkpoint every step.
demo=(configs/demo.yaml --set sft.steps=30 --set train.steps=3 --set rollout.batch_size=8
  --set data.eval_size=16 --set train.eval_every=0 --set checkpoint.every=1 --set log.sample_every=0)
run_demo() { # OUT BACKEND [ARGS...]
  local out=$1 backend=$2
  shift 2
  "$rl" run "${demo[@]}" --overwrite --set train.out_dir="$out" --set backend.type="$backend" "$@"
}
# same_metrics A B: every step's metrics agree as in the emulated backend's
# trainer test (train.TestCUDAEmulatedMatchesCPU): same completions and
# rewards, losses, KL, entropy and gradient norms within 1e-3·max(1, |cpu|).
same_metrics() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) and len(a) >= 4, f"{len(a)} and {len(b)} metric lines"
keys = ["reward", "completions/mean_length", "loss", "pg_loss", "kl", "entropy", "grad_norm", "eval/accuracy", "eval/reward"]
bad = 0
for x, y in zip(a, b):
    for k in keys:
        if k not in x:
            continue
        d = abs(x[k] - y[k])
        if d > 1e-3 * max(1, abs(x[k])):
            print(f"step {x['step']} {k}: cpu {x[k]:.6g}, cuda (stand-in) {y[k]:.6g}")
            bad += 1
print(f"{len(a)} metric lines compared")
sys.exit(1 if bad else 0)
EOF
}
demo_matches_cpu() {
  run_demo "$work/cpu" cpu && run_demo "$work/gpu" cuda && same_metrics "$work/cpu/metrics.jsonl" "$work/gpu/metrics.jsonl"
}
check "rltrain run, backend cuda, follows the CPU run (SFT, 3 GRPO steps, evals)" demo_matches_cpu

ckpt="$work/cpu/checkpoints/step-3"
same_output() { # the same command on both backends prints the same
  "$rl" "$@" --backend cpu >"$work/a.out" && "$rl" "$@" --backend cuda >"$work/b.out" && diff "$work/a.out" "$work/b.out"
}
check "rltrain generate --backend cuda prints the CPU's completions" \
  same_output generate --model "$ckpt" --prompt "12+7=" --prompt "40-3=" --max-new-tokens 6 --temperature 0
printf '{"text": "12+7=19"}\n{"text": "40-3=37"}\n' >"$work/lp.jsonl"
same_logprobs() { # the same log-probabilities within 1e-5·max(1, |log-prob|)
  "$rl" logprobs --model "$ckpt" --input "$work/lp.jsonl" --backend cpu >"$work/a.out" &&
    "$rl" logprobs --model "$ckpt" --input "$work/lp.jsonl" --backend cuda >"$work/b.out" &&
    python3 - "$work/a.out" "$work/b.out" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 2
for x, y in zip(a, b):
    assert x["ids"] == y["ids"]
    for p, q in zip(x["logprobs"], y["logprobs"]):
        assert (p is None) == (q is None) and (p is None or abs(p - q) <= 1e-5 * max(1, abs(p))), (p, q)
print("log-probs agree within 1e-5 relative")
EOF
}
check "rltrain logprobs --backend cuda scores like the CPU (1e-5 relative)" same_logprobs
same_eval() {
  "$rl" eval configs/demo.yaml --model "$ckpt" --set data.eval_size=16 --json --backend cpu >"$work/a.out" 2>/dev/null &&
    "$rl" eval configs/demo.yaml --model "$ckpt" --set data.eval_size=16 --json --backend cuda >"$work/b.out" 2>/dev/null &&
    diff "$work/a.out" "$work/b.out" && cat "$work/a.out"
}
check "rltrain eval --backend cuda scores the held-out set like the CPU" same_eval

# ---- device errors --------------------------------------------------------
# Where to inject: a traced run numbers the allocations, launches and GEMMs
# as the fault injection counts them; a fault is placed half-way between
# the first resumed step's start and its end (after the process set up and
# wrote nothing yet), or half-way through step 2 of a fresh run (after step
# 1's checkpoint).
trace_counts() { # LOG EVENT START_RE END_RE: counter values at the two markers
  awk -v ev="$2" -v s="$3" -v e="$4" '
    $0 ~ "^standin: " ev " #" { split($3, a, "#"); n = a[2] + 0 }
    $0 ~ s && !ss { ss = 1; from = n }
    $0 ~ e && !ee { ee = 1; to = n }
    END { if (!ss || !ee || to <= from) exit 1; print int((from + to) / 2) + 1 }' "$1"
}
fault_run() { # NAME ENV_VAR EVENT [resume]: a fault in step 2 ends the run; step-1 is intact (and resumes)
  local out="$work/fault-$1" var=$2 ev=$3 resume=${4:-} n
  # One traced run numbers the events of every fault run (same config).
  if [ ! -f "$work/steps-trace.log" ]; then
    STANDIN_TRACE=1 run_demo "$work/trace" cuda --set sft.steps=0 >"$work/steps-trace.log" 2>&1 || return 1
  fi
  n=$(trace_counts "$work/steps-trace.log" "$ev" '^step 1/3' '^step 2/3') || { echo "no $ev during step 2"; return 1; }
  echo "injecting: $var=$n"
  if (export "$var=$n" && run_demo "$out" cuda --set sft.steps=0) >"$work/fault.log" 2>&1; then
    echo "the run with $var=$n succeeded"
    return 1
  fi
  cat "$work/fault.log"
  grep -q "^rltrain: step 2: " "$work/fault.log" || return 1
  grep -q "the last good checkpoint is $out/checkpoints/step-1 (continue from it with --resume)" "$work/fault.log" || return 1
  ! grep -q "goroutine\|panic:" "$work/fault.log" || return 1
  [ -f "$out/checkpoints/step-1/DONE" ] && [ ! -e "$out/checkpoints/step-2" ] || return 1
  [ -n "$resume" ] || return 0
  # The checkpoint resumes, on the same device, to the end.
  "$rl" run "${demo[@]}" --set sft.steps=0 --set train.out_dir="$out" --set backend.type=cuda --resume >"$work/resume.log" 2>&1 || {
    cat "$work/resume.log"
    return 1
  }
  grep -q "checkpoint: $out/checkpoints/step-3" "$work/resume.log"
}
check "a kernel fault (STANDIN_LAUNCH_FAIL_AT) ends the run with its last good checkpoint, which resumes" \
  fault_run launch STANDIN_LAUNCH_FAIL_AT launch resume
blocking_fault() { (export CUDA_LAUNCH_BLOCKING=1 && fault_run blocking STANDIN_LAUNCH_FAIL_AT launch); }
check "the same fault reported at the launch (CUDA_LAUNCH_BLOCKING=1)" blocking_fault
check "a cuBLAS failure (STANDIN_CUBLAS_FAIL_AT) ends the run the same way" \
  fault_run cublas STANDIN_CUBLAS_FAIL_AT gemm
oom_on_resume() { # out of memory in the first step of a resumed run
  local out="$work/oom" n
  run_demo "$out" cuda --set sft.steps=0 --set train.steps=1 >/dev/null 2>&1 || return 1
  resume() { # OUT_DIR [ARGS...]
    local dir=$1
    shift
    "$rl" run "${demo[@]}" --set sft.steps=0 --set backend.type=cuda --set train.steps=2 --set train.out_dir="$dir" --resume "$@"
  }
  cp -r "$out" "$work/oom-trace"
  STANDIN_TRACE=1 resume "$work/oom-trace" >"$work/trace.log" 2>&1 || return 1
  n=$(trace_counts "$work/trace.log" alloc '^model ' '^step 2/') || { echo "no allocation during the resumed step"; return 1; }
  echo "injecting: STANDIN_OOM_AT=$n"
  if STANDIN_OOM_AT=$n resume "$out" >"$work/fault.log" 2>&1; then
    echo "the run with STANDIN_OOM_AT=$n succeeded"
    return 1
  fi
  cat "$work/fault.log"
  grep -q "CUDA_ERROR_OUT_OF_MEMORY" "$work/fault.log" && grep -q "the GPU is out of memory" "$work/fault.log" || return 1
  grep -q "the last good checkpoint is $out/checkpoints/step-1" "$work/fault.log" || return 1
  ! grep -q "goroutine\|panic:" "$work/fault.log" || return 1
  [ -f "$out/checkpoints/step-1/DONE" ] && resume "$out" >/dev/null 2>&1 && [ -f "$out/checkpoints/step-2/DONE" ]
}
check "out of device memory (STANDIN_OOM_AT) in a resumed run names step-1, intact" oom_on_resume

# ---- devices, drivers and libraries ---------------------------------------
echo "== devices, drivers and libraries"
turing() { # compute capability 7.5: the sm_75 PTX loads and fp32 trains; bf16 is refused
  STANDIN_CC=7.5 "$rl" version | grep -q "compute capability 7.5.*PTX sm_75" || return 1
  STANDIN_CC=7.5 run_demo "$work/t4" cuda --set sft.steps=0 --set train.steps=1 || return 1
  if STANDIN_CC=7.5 run_demo "$work/t4bf16" cuda --set sft.steps=0 --set train.steps=1 --set backend.precision=bf16 2>"$work/err"; then
    return 1
  fi
  cat "$work/err"
  grep -q "bf16 GEMMs (backend.precision: bf16) need compute capability 8.0 (sm_80, Ampere) or newer" "$work/err"
}
check "compute capability 7.5 (T4): fp32 runs, bf16 is refused with the reason" turing
older() {
  STANDIN_CC=7.0 "$rl" version | grep -q "compute capability 7.0 is below sm_75"
}
check "compute capability 7.0 is refused: below the oldest PTX target" older
no_device() {
  if STANDIN_DEVICES=0 run_demo "$work/nodev" cuda --set sft.steps=0 --set train.steps=1 2>"$work/err"; then return 1; fi
  cat "$work/err"
  grep -q "CUDA_ERROR_NO_DEVICE.*use backend cpu, or cuda-emu" "$work/err" && ! grep -q "goroutine" "$work/err" &&
    STANDIN_DEVICES=0 "$rl" version | grep -q "^cuda: NVIDIA driver: cuInit: CUDA_ERROR_NO_DEVICE"
}
check "no device: backend cuda is a clear error, everything else works" no_device
jit_log() { # a driver too old for the PTX: the JIT's log reaches the user
  if STANDIN_DRIVER_VERSION=11070 run_demo "$work/jit" cuda --set sft.steps=0 --set train.steps=1 2>"$work/err"; then return 1; fi
  cat "$work/err"
  grep -q "CUDA_ERROR_UNSUPPORTED_PTX_VERSION" "$work/err" && grep -q "JIT log:" "$work/err" &&
    grep -q "PTX ISA 7.8 is newer than this driver (CUDA 11.7) supports" "$work/err"
}
check "a PTX JIT failure is reported with the JIT log" jit_log
cublas_fallback() { # .13 is tried first; when its cublasCreate fails, .12 is used
  local both="$root/bin/standin/cublas13:$LD_LIBRARY_PATH"
  LD_LIBRARY_PATH="$both" "$rl" version | grep -q "libcublas.so.13 13.0.0" || return 1
  LD_LIBRARY_PATH="$both" STANDIN_CUBLAS_CREATE_FAIL=13 "$rl" version | grep -q "libcublas.so.12 12.0.0" || return 1
  LD_LIBRARY_PATH="$both" STANDIN_CUBLAS_CREATE_FAIL=13 run_demo "$work/fallback" cuda --set sft.steps=0 --set train.steps=1 || return 1
  STANDIN_CUBLAS_CREATE_FAIL=12 "$rl" version | grep -q "no usable cuBLAS.*libcublas.so.12: cublasCreate_v2: CUBLAS_STATUS_NOT_INITIALIZED"
}
check "cuBLAS: .13 first; a failing cublasCreate falls back to .12; none usable is explained" cublas_fallback

bench_pipeline() { # make bench-gpu's harness and report on the stand-in (a tiny model)
  RLTRAIN_GPU_STANDIN=1 RLTRAIN_BENCH_TINY=1 RLTRAIN_BENCH_JSON="$work/bench.json" RLTRAIN_BENCH_BASELINE="$work/bench.json" \
    bash scripts/cuda/gpu-ci.sh bench && grep -q '"name": "model/fp32/mfu"' "$work/bench.json"
}
check "make bench-gpu's harness writes bench-gpu.json and compares it (tiny model)" bench_pipeline

# ---- data parallel ---------------------------------------------------------
dp_nccl() { bash scripts/standin/dp.sh "$rl" "$work"; }
check "two ranks (mpirun) on backend cuda sum gradients with NCCL (stand-in libnccl.so.2) and follow one process" dp_nccl

# ---- coverage -------------------------------------------------------------
every_call_made() { # every function the binding resolves was called at least once
  local want have missing=0
  want=$(sed -n 's/^\s*SYM(lib, cu, \([A-Za-z0-9_]*\));/\1/p; s/^\s*BSYM(\([A-Za-z0-9_]*\));/\1/p' kernels/cuda/cudrv/api.c | sort -u)
  have=$(sort -u "$STANDIN_CALLS")
  for f in $want; do
    if ! grep -qx "$f" <<<"$have"; then
      echo "never called: $f"
      missing=1
    fi
  done
  echo "$(wc -w <<<"$want") functions resolved by the binding, all called: $([ $missing = 0 ] && echo yes || echo no)"
  [ "$(wc -w <<<"$want")" -ge 25 ] && [ $missing = 0 ]
}
check "every driver and cuBLAS function the binary resolves was exercised" every_call_made

echo "in $SECONDS s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
