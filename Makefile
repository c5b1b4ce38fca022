GO ?= go
BIN := bin/rltrain

.PHONY: setup build test run bench fmt vet

# Installs system packages and reference-test assets (idempotent).
setup:
	@bash scripts/setup.sh

build:
	$(GO) build -o $(BIN) ./cmd/rltrain

vet:
	$(GO) vet ./...

test: setup vet
	$(GO) test -count=1 ./...

run: setup build
	@bash scripts/demo.sh

bench: setup build
	@bash scripts/bench.sh

fmt:
	gofmt -w $$(git ls-files '*.go')
