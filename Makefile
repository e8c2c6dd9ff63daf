# redrain — see README.md. `make test` is the test command CI runs.
GO      ?= go
PKGS    ?= ./...
BINS    := node coordinator bench

.PHONY: all build test bench lint fuzz redis chromium demo setup-a sim clean

all: build

build:
	@mkdir -p bin
	@for b in $(BINS); do \
		if [ -d cmd/$$b ]; then $(GO) build -o bin/$$b ./cmd/$$b || exit 1; fi; \
	done

# Tests need redis-server on PATH (integration tests start their own on a free port).
redis:
	@./scripts/ensure-redis.sh

# The dashboard's browser test (browser/) needs Chromium: installed when missing (as root on
# Debian); REDRAIN_SKIP_BROWSER=1 skips that test instead.
chromium:
	@./scripts/ensure-chromium.sh

# -p 1: the integration tests start real clusters (redis, coordinator, nodes); two packages at
# once on a 2-core machine starve each other's processes.
test: redis chromium
	$(GO) test -race -count=1 -p 1 -timeout 14m $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 $(PKGS) | tee bench.txt

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# The first command to run: build, make sure redis-server is installed, rain 1,000,000 packets
# (10,000,000 cents) on a local 3-node cluster from 20,000 users for 10 s, check every invariant,
# print the results table (and out/demo/results.json). Then one short `bench compare` round:
# the same load against the seed's Redis-list design, and preparing 10,000,000 packets on each
# side; it prints the comparison table and writes out/demo/compare/{results.json,compare.png}.
# Everything it starts is stopped.
DEMO_FLAGS ?= --nodes 3 --count 1000000 --amount 10000000 --users 20000 --max-per-user 50 --conns 64 --time 10s --out out/demo
DEMO_COMPARE_FLAGS ?= --nodes 3 --rounds 1 --count 1000000 --amount 10000000 --users 20000 --max-per-user 50 --conns 64 --time 5s --prepare-count 10000000 --out out/demo/compare
demo: build redis
	./bin/bench run $(DEMO_FLAGS)
	./bin/bench compare $(DEMO_COMPARE_FLAGS)

# Setup A: one node on cpu 1 against the seed's design and a fixed-body fasthttp server (the
# loopback ceiling), wrk -t1 -c64, Redis and the coordinator on cpu 0; a table and
# out/setup-a/results.json. DURATION, ROUNDS, PROFILE=1, ... : see scripts/setup-a.sh.
setup-a: redis
	GO=$(GO) ./scripts/setup-a.sh

# The deterministic simulation (package sim, README "Simulation"): SEEDS seeds (default
# 100000) on every core with a progress bar and a summary, or one SEED=S replayed with its whole
# trace. Exit 1 if an invariant broke.
SEEDS ?= 100000
sim:
	@if [ -n "$(SEED)" ]; then $(GO) run ./cmd/sim -seed $(SEED); else $(GO) run ./cmd/sim -seeds $(SEEDS); fi

FUZZTIME ?= 60s
fuzz:
	@./scripts/fuzz-all.sh $(FUZZTIME)

clean:
	rm -rf bin
