#!/usr/bin/env bash
# make test-phpt: runs the .phpt tests (ext/tests, php-examples/*/tests) with PHP's own
# run-tests.php against the built extension and a private redis-server.
#
#   scripts/phpt.sh <path/to/libchat.so> [test files or directories]
#
# - redis-server runs on a free port in a temporary directory and is always stopped; its URL
#   reaches the tests as CHAT_TEST_REDIS_URL (phpt INI sections cannot read the environment).
# - The Composer package php-examples/chat-php is installed with the real composer into a
#   throwaway app (path repository, Packagist disabled: no network needed), whose
#   vendor/autoload.php the package tests load (CHAT_TEST_AUTOLOAD).
# - Ends with run-tests.php's summary; exits non-zero if any test failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ext=$(realpath "${1:?usage: $0 <libchat.so> [tests...]}")
shift
tests=("$@")
((${#tests[@]})) || tests=("$root/ext/tests" "$root/php-examples/chat-php/tests" "$root/php-examples/thinkphp/tests" "$root/php-examples/gateway-client/tests")
php=${PHP:-$(command -v php)}
php_config=${PHP_CONFIG:-php-config}

[[ -f $ext ]] || { echo "phpt: $ext does not exist; run make build" >&2; exit 1; }

# run-tests.php ships with the PHP development files: Debian keeps it beside the extensions,
# upstream `make install` under <prefix>/lib/php/build.
run_tests=
for candidate in "$("$php_config" --extension-dir)/build/run-tests.php" \
                 "$("$php_config" --prefix)/lib/php/build/run-tests.php"; do
  [[ -f $candidate ]] && { run_tests=$candidate; break; }
done
[[ -n $run_tests ]] || { echo "phpt: run-tests.php not found; install the PHP development files (Debian: apt-get install php-dev)" >&2; exit 1; }

tmp=$(mktemp -d)
redis_pid=
cleanup() {
  if [[ -n $redis_pid ]]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$("$php" -n -r '$s = stream_socket_server("tcp://127.0.0.1:0"); echo explode(":", stream_socket_get_name($s, false))[1];')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
deadline=$((SECONDS + 15))
until [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]]; do
  if ! kill -0 "$redis_pid" 2>/dev/null || ((SECONDS > deadline)); then
    echo "phpt: redis-server did not start on port $port:" >&2
    cat "$tmp/redis.log" >&2
    exit 1
  fi
  sleep 0.05
done
echo "phpt: redis-server on 127.0.0.1:$port (pid $redis_pid)"

# Install the Composer package the way an app does. Composer checks "ext-chat", so it runs
# with the built extension (unless this PHP already loads an installed one).
command -v composer >/dev/null || { echo "phpt: composer not found; run make deps (apt-get install composer)" >&2; exit 1; }
mkdir "$tmp/app"
cat >"$tmp/app/composer.json" <<JSON
{
    "name": "chat/phpt-app",
    "description": "throwaway app installing chat/chat-php for the phpt tests",
    "repositories": [
        {"type": "path", "url": "$root/php-examples/chat-php", "options": {"symlink": true, "versions": {"chat/chat-php": "0.1.x-dev"}}},
        {"packagist.org": false}
    ],
    "require": {"chat/chat-php": "^0.1@dev"}
}
JSON
composer_php=("$php")
"$php" -r 'exit(extension_loaded("chat") ? 0 : 1);' 2>/dev/null || composer_php+=(-d "extension=$ext")
if ! COMPOSER_ALLOW_SUPERUSER=1 COMPOSER_HOME="$tmp/composer-home" \
     "${composer_php[@]}" "$(command -v composer)" install --working-dir="$tmp/app" \
     --no-interaction --no-progress --quiet 2>"$tmp/composer.log"; then
  echo "phpt: composer install of php-examples/chat-php failed:" >&2
  cat "$tmp/composer.log" >&2
  exit 1
fi
echo "phpt: composer installed chat/chat-php into a test app"

export CHAT_TEST_REDIS_URL="redis://127.0.0.1:$port"
export CHAT_TEST_AUTOLOAD="$tmp/app/vendor/autoload.php"
export NO_INTERACTION=1
# -n: no php.ini, so an installed chat.so (make install) is not loaded twice.
"$php" -n "$run_tests" -q -n -p "$php" -d "extension=$ext" --show-diff --set-timeout 120 "${tests[@]}"
