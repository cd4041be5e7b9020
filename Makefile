# coord: see README.md. Every target runs from a fresh clone.
GO      ?= go
PKGS    ?= ./...
BIN     ?= bin/coord-agent
RUN_ARGS ?=

.PHONY: all build run test test-short bench bench-scenarios bench-smoke lint fmt vet clean

all: lint test

build:
	$(GO) build -o $(BIN) ./cmd/coord-agent

# The sidecar on an embedded nats-server (data under ~/.local/share/coord).
run: build
	./$(BIN) serve $(RUN_ARGS)

# The whole suite, under the race detector, against real embedded servers.
test:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short:
	$(GO) test -race -short -count=1 $(PKGS)

# Benchmarks beside the raw JetStream floors they are built from. They connect
# in-process to the embedded server, as the sidecar's agents do;
# COORD_BENCH_TCP=1 make bench measures over loopback TCP instead.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 1 ./coord/ ./kvstore/

# coord-agent bench: the scenario table (full sizes; see docs/performance.md).
bench-scenarios: build
	./$(BIN) bench $(BENCH_FLAGS)

# The same at tiny sizes, end to end (CI runs it so the command cannot rot).
bench-smoke: build
	./$(BIN) bench --small

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
