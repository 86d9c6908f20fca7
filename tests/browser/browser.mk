# Browser tests (issue 5), included by the main Makefile. The scenarios are cargo tests
# (tests/e2e/browser.rs, run by test-rust); they need playwright-core from npm, installed here
# exactly as locked, and Debian's chromium (scripts/deps.sh installs it).
#   make browser-deps   npm ci in tests/browser when package.json or the lock changed
#   make test-browser   the browser tests alone

.PHONY: browser-deps test-browser

BROWSER_DEPS := tests/browser/node_modules/.package-lock.json

$(BROWSER_DEPS): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

browser-deps: $(BROWSER_DEPS)

# test-rust runs the browser tests among the others: install their npm package first.
test-rust: $(BROWSER_DEPS)

test-browser: build $(BROWSER_DEPS)
	$(CARGO) test --release -p chat-e2e --test browser -- --nocapture
