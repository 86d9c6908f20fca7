#!/usr/bin/env bash
# Installs the system packages the build, the tests and the demo need, when they are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail

missing=()
need() { # need <command-or-path> <debian package>
  if [[ "$1" == /* ]]; then compgen -G "$1" >/dev/null || missing+=("$2")
  else command -v "$1" >/dev/null 2>&1 || missing+=("$2"); fi
}
need redis-server redis-server
need redis-cli redis-tools
need php php-cli
need php-config php-dev
need '/usr/lib/llvm-*/lib/libclang.so*' libclang-dev   # not libclang-cpp*.so, which bindgen cannot use
need cc gcc
need pkg-config pkg-config
need redis-benchmark redis-tools   # make bench: the physical floor of chat_push
need node nodejs                  # make bench: the Node.js ws peer
need npm npm
need mariadbd mariadb-server
need mariadb mariadb-client
need '/usr/sbin/php-fpm*' php-fpm        # tests/e2e/fpm.rs: real php-fpm workers
need composer composer                   # make test-phpt: installs php-examples/chat-php
need '/usr/lib/php/*/pdo_mysql.so' php-mysql  # php-examples/customer-service (MariaDB via PDO), make demo and its e2e test
need /usr/bin/chromium chromium              # tests/e2e/browser.rs: headless Chromium driven by playwright-core
need openssl openssl                        # tests/e2e/proxy.rs: a certificate for the TLS site
need curl curl                              # tests/e2e/proxy.rs: HTTPS and HTTP/2 through nginx
need /usr/sbin/nginx nginx                   # tests/e2e/proxy.rs: deploy/nginx in front of two nodes (by path: /usr/sbin is not on every PATH)
need caddy caddy                            # tests/e2e/proxy.rs: deploy/caddy in front of two nodes

if ((${#missing[@]})); then
  # php-config may still be absent after php-cli: install the -dev of the same PHP.
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "deps: installing $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  else
    echo "deps: missing system packages. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y $pkgs" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: no Rust toolchain. Install it with: curl https://sh.rustup.rs -sSf | sh" >&2
  exit 1
fi
