# Targets of the PHP extension (included by the main Makefile).
#   make install      install chat.so into this machine's PHP and enable it (cli, fpm, ...)
#   make uninstall    undo make install
#   make test-phpt    the .phpt tests (ext/tests, php-examples/*/tests) with PHP's run-tests.php
#   make test-fpm     the php-fpm test alone (it also runs in test-rust, as tests/e2e/fpm.rs)
#   make stubs        regenerate php-examples/chat-php/stubs/chat.stubs.php
#   make check-php    is this PHP supported? (run by make build before cargo)
# PHP_CONFIG / PHP choose the PHP to build, install and test for (default: the one in PATH).

# Supported PHP versions; ext/build.rs holds the same range for builds without make.
CHAT_PHP_MIN := 8.1
CHAT_PHP_MAX := 8.5

# The extension make build produced (cargo honours CARGO_TARGET_DIR, and so does this).
CHAT_TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
CHAT_EXT ?= $(CHAT_TARGET_DIR)/release/libchat.so
PHP ?= php

.PHONY: install uninstall test-phpt test-fpm stubs check-php

# Runs after deps and before cargo: a clear message instead of a bindgen failure.
build: check-php

check-php:
	@scripts/check-php.sh $(CHAT_PHP_MIN) $(CHAT_PHP_MAX)

# Builds first when cargo is at hand. Under `sudo`, a per-user Rust toolchain usually is not
# (sudo resets PATH), so `make build && sudo make install` installs what make build produced.
install: $(if $(shell command -v $(CARGO) 2>/dev/null),build)
	@scripts/php-install.sh install $(CHAT_EXT)

uninstall:
	@scripts/php-install.sh uninstall

test-phpt: build
	@scripts/phpt.sh $(CHAT_EXT)

test-fpm: build
	CHAT_BIN_DIR=$(CHAT_TARGET_DIR)/release $(CARGO) test --release -p chat-e2e --test fpm -- --nocapture

stubs: build
	$(PHP) -n -d extension=$(CHAT_EXT) scripts/gen-stubs.php --write

# The php-fpm test is a cargo test (tests/e2e/fpm.rs), so test-rust already runs it.
TEST_SUITES += test-phpt
