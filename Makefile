# realtime chat for PHP apps — build, test and demo entry points.
#   make demo   build everything and run redis + sidecar + a PHP page locally
#   make test   run every test (unit and end-to-end, real servers)
#   make build  release build of the extension and the sidecar (target/release/)

SHELL := /bin/bash
CARGO ?= cargo
# bindgen (ext-php-rs) needs libclang; Debian keeps it under /usr/lib/llvm-*.
export LIBCLANG_PATH ?= $(shell ls -d /usr/lib/llvm-*/lib 2>/dev/null | sort -V | tail -1)

.PHONY: all deps build test demo clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --release --workspace
	@echo "built: target/release/chat-sidecar target/release/libchat.so"

test: build
	$(CARGO) test --release --workspace --no-fail-fast

demo: build
	@scripts/demo.sh

clean:
	$(CARGO) clean
	rm -rf .demo
