# realtime chat for PHP apps — build, test and demo entry points.
#   make demo     build everything and run redis + sidecar + a PHP page locally
#   make test     run every test (unit and end-to-end, real servers)
#   make build    release build of the extension and the sidecar (target/release/)
#   make install  install the extension into this machine's PHP (see ext/ext.mk)
#   make bench    benchmarks against a peer (see bench/bench.mk)
#   make test-browser  the browser tests alone (see tests/browser/browser.mk)

SHELL := /bin/bash
CARGO ?= cargo
# bindgen (ext-php-rs) needs libclang; Debian keeps it under /usr/lib/llvm-*.
export LIBCLANG_PATH ?= $(shell ls -d /usr/lib/llvm-*/lib 2>/dev/null | sort -V | tail -1)

# Test suites run by `make test`, in order; the included makefiles append theirs.
TEST_SUITES := test-rust

.PHONY: all deps build test test-rust demo clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --release --workspace
	@echo "built: target/release/chat-sidecar target/release/libchat.so"

# Each area keeps its own targets in its folder.
-include ext/ext.mk
-include bench/bench.mk
-include tests/browser/browser.mk
-include php-examples/php-examples.mk

test: build
	@$(MAKE) --no-print-directory $(TEST_SUITES)

test-rust:
	$(CARGO) test --release --workspace --no-fail-fast

demo: build
	@scripts/demo.sh

clean:
	$(CARGO) clean
	rm -rf .demo
