# Targets of php-examples/ (included by the main Makefile).
#   make test-php-examples   what .phpt files cannot check (php-examples/tests/run.sh): every
#                            PHP file parses; the Composer set-ups the docs show, and each
#                            composer.json here, install (path repositories, Packagist off);
#                            the ThinkPHP example's public/router.php under php -S and its
#                            settings under php-fpm
# The examples' .phpt tests (php-examples/*/tests) run in make test-phpt (ext/ext.mk).

.PHONY: test-php-examples

test-php-examples: build
	@php-examples/tests/run.sh $(or $(CHAT_EXT),$(CURDIR)/target/release/libchat.so)

TEST_SUITES += test-php-examples
