# Benchmarks: chat-sidecar + the chat extension against a Node.js ws peer, measured in the same
# run (issue 7). Included by the main Makefile. See docs/BENCHMARKS.md.
#   make bench        the full run (about 20 minutes): prints the table and writes
#                     bench/results/<date>.json, .svg (chart) and .md (table)
#   make bench-smoke  every scenario at small sizes in under a minute; part of `make test`.
#                     It fails when a scenario breaks; it asserts nothing about speed.
# Extra flags for chat-bench: make bench BENCH_ARGS="--only 1,3 --memory-s 60"

.PHONY: bench bench-smoke

BENCH_PEER_DEPS := bench/peer/node_modules/.package-lock.json

# The peer's npm dependencies (ws), exactly as locked.
$(BENCH_PEER_DEPS): bench/peer/package.json bench/peer/package-lock.json
	cd bench/peer && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bench: build $(BENCH_PEER_DEPS)
	target/release/chat-bench run --out bench/results $(BENCH_ARGS)

bench-smoke: build $(BENCH_PEER_DEPS)
	timeout 300 target/release/chat-bench run --smoke --out target/bench-smoke $(BENCH_ARGS)

TEST_SUITES += bench-smoke
