#!/usr/bin/env bash
# make test-php-examples: the checks of php-examples/ that .phpt files cannot make (those run
# in make test-phpt, ext/ext.mk):
#
#   php-examples/tests/run.sh <path/to/libchat.so>
#
# 1. every PHP file of php-examples/ parses (php -l);
# 2. the Composer set-ups the docs show install as shown (documented-composer.php), with the
#    real composer, from path repositories, Packagist turned off;
# 3. each composer.json of php-examples/ installs the same way (the ThinkPHP example's without
#    topthink/framework, which needs Packagist);
# 4. the example's public/router.php under php -S, as `php think run` starts it: files under
#    public/ as they are, every other path to index.php (a stand-in for ThinkPHP's);
# 5. the example's settings under php-fpm (fpm-app.php): a pool's php_admin_value with the
#    same value in .env, with a different one (a clear error), php_value overridden by .env,
#    and CHAT_JWT_SECRET from the pool's environment; against a private redis-server.
#
# Everything runs in a temporary directory that is always removed, with the processes it
# started. Prints one line per check; exits non-zero if any failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/php-examples/tests
ext=$(realpath "${1:?usage: $0 <libchat.so>}")
php=${PHP:-$(command -v php)}
[[ -f $ext ]] || { echo "php-examples: $ext does not exist; run make build" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failed=0
pass() { echo "ok   $*"; }
fail() {
  echo "FAIL $1"
  shift
  (($#)) && sed 's/^/     /' "$@" | tail -40
  failed=$((failed + 1))
}

free_port() { "$php" -n -r '$s = stream_socket_server("tcp://127.0.0.1:0"); echo explode(":", stream_socket_get_name($s, false))[1];'; }
# Waits until something listens on the port, or the process died, or 15 s passed.
wait_port() {
  local port=$1 pid=$2 deadline=$((SECONDS + 15))
  until "$php" -n -r "exit(@fsockopen('127.0.0.1', $port) ? 0 : 1);"; do
    kill -0 "$pid" 2>/dev/null && ((SECONDS <= deadline)) || return 1
    sleep 0.05
  done
}

# The extension for this PHP and every PHP it starts (composer, its scripts, php -S): an ini
# directory reaches child processes through the environment, where -d would not. The leading
# ":" keeps PHP's own ini directory. Not when this PHP already loads an installed chat.so.
mkdir "$tmp/ini"
if ! "$php" -r 'exit(extension_loaded("chat") ? 0 : 1);' 2>/dev/null; then
  echo "extension=$ext" >"$tmp/ini/chat.ini"
  export PHP_INI_SCAN_DIR=":$tmp/ini"
fi
export COMPOSER_HOME=$tmp/composer-home COMPOSER_ALLOW_SUPERUSER=1 COMPOSER_NO_INTERACTION=1
command -v composer >/dev/null || { echo "php-examples: composer not found; run make deps (apt-get install composer)" >&2; exit 1; }

# -- 1. php -l ----------------------------------------------------------------------------------
count=0
while IFS= read -r -d '' file; do
  # What run-tests.php leaves beside a failed X.phpt is not ours.
  [[ -f ${file%.php}.phpt ]] && continue
  count=$((count + 1))
  "$php" -n -l "$file" >"$tmp/lint.log" 2>&1 || fail "php -l ${file#"$root"/}" "$tmp/lint.log"
done < <(find "$root/php-examples" \( -name vendor -o -name runtime \) -prune -o \( -name '*.php' -o -path '*/thinkphp/think' \) -type f -print0)
((count > 0)) && pass "php -l: $count PHP files of php-examples/"

# -- 2. the documented Composer set-ups ---------------------------------------------------------
mkdir "$tmp/docs"
mapfile -t cases < <("$php" "$here/documented-composer.php" "$root" "$tmp/docs")
((${#cases[@]} > 0)) || fail "no documented Composer set-ups found"
for case in "${cases[@]}"; do
  read -r dir class where <<<"$case"
  if (cd "$dir" && if [[ -f commands.sh ]]; then bash commands.sh; else composer install; fi) >"$dir/log" 2>&1 &&
     (cd "$dir" && "$php" -r "require 'vendor/autoload.php'; exit(class_exists('$class') ? 0 : 1);") >>"$dir/log" 2>&1; then
    pass "composer, as documented in $where: $class installed"
  else
    fail "composer, as documented in $where" "$dir/log"
  fi
done

# -- 3. each composer.json of php-examples/ --------------------------------------------------------
# Installed from a copy, as a developer of that package or example would: `composer install`
# with Packagist off. The ThinkPHP example without topthink/framework (it needs Packagist) and
# without scripts (they run `php think`, the framework); its ../chat-php path repository
# pointed at the real one. Each is checked by a class it must then autoload.
declare -A proves=(
  [chat-php]='Chat\Client'
  [gateway-client]='GatewayClient\Gateway'
  [customer-service]='CustomerService\Desk'
  [thinkphp]='app\common\ChatManager'
)
for manifest in "$root"/php-examples/*/composer.json; do
  name=$(basename "$(dirname "$manifest")")
  class=${proves[$name]:-}
  if [[ -z $class ]]; then
    fail "php-examples/$name/composer.json: no class to check it by; add one to php-examples/tests/run.sh"
    continue
  fi
  copy=$tmp/packages/$name
  mkdir -p "$copy"
  (cd "$(dirname "$manifest")" && tar --exclude=./vendor --exclude=./runtime --exclude=./.env --exclude=./composer.lock -cf - .) | tar -xf - -C "$copy"
  "$php" -r '
      [, $file, $chatPhp] = $argv;
      $c = json_decode(file_get_contents($file), true, flags: JSON_THROW_ON_ERROR);
      if (isset($c["require"]["topthink/framework"])) {
          unset($c["require"]["topthink/framework"]);
      }
      foreach ($c["repositories"] ?? [] as $i => $repo) {
          if (($repo["url"] ?? "") === "../chat-php") {
              $c["repositories"][$i]["url"] = $chatPhp;
          }
      }
      $c["repositories"][] = ["packagist.org" => false];
      file_put_contents($file, json_encode($c, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));
  ' "$copy/composer.json" "$root/php-examples/chat-php"
  if (cd "$copy" && composer validate --no-check-publish && composer install --no-scripts) >"$copy/composer.log" 2>&1 &&
     (cd "$copy" && "$php" -r "require 'vendor/autoload.php'; exit(class_exists('$class') ? 0 : 1);") >>"$copy/composer.log" 2>&1; then
    pass "composer install of php-examples/$name/composer.json: $class autoloaded"
  else
    fail "composer install of php-examples/$name/composer.json" "$copy/composer.log"
  fi
done
app=$tmp/packages/thinkphp

# -- 4. public/router.php -----------------------------------------------------------------------
web=$tmp/router
mkdir -p "$web/public"
cp "$root/php-examples/thinkphp/public/router.php" "$root/php-examples/thinkphp/public/demo.html" "$web/public/"
# Stands in for ThinkPHP's front controller: says which script ran for which path.
printf '<?php echo "app ", $_SERVER["REQUEST_URI"], " ", basename($_SERVER["SCRIPT_FILENAME"]);\n' >"$web/public/index.php"
port=$(free_port)
(cd "$web" && exec "$php" -S "127.0.0.1:$port" -t public public/router.php) >"$web/server.log" 2>&1 &
pids+=($!)
if wait_port "$port" "$!"; then
  get() { "$php" -r 'echo @file_get_contents($argv[1]) ?: "(no answer)";' "http://127.0.0.1:$port$1"; }
  check_get() {
    local got
    got=$(get "$1")
    if [[ $got == *"$2"* ]]; then pass "php -S public/router.php: GET $1 -> $3"; else echo "$got" >"$web/got"; fail "php -S public/router.php: GET $1 should give $3" "$web/got"; fi
  }
  check_get /demo.html '<title>chat in ThinkPHP: demo</title>' 'the file itself'
  check_get /chat/token 'app /chat/token index.php' 'the app'
  check_get '/demo/login?user=alice' 'app /demo/login?user=alice index.php' 'the app'
  check_get /missing.css 'app /missing.css index.php' 'the app (no such file)'
else
  fail "php -S with public/router.php did not start" "$web/server.log"
fi

# -- 5. settings under php-fpm ------------------------------------------------------------------
fpm=${CHAT_PHP_FPM:-}
if [[ -z $fpm ]]; then
  version=$("$php" -n -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;')
  for candidate in "/usr/sbin/php-fpm$version" "$(command -v php-fpm || true)" /usr/sbin/php-fpm /usr/local/sbin/php-fpm; do
    [[ -n $candidate && -x $candidate ]] && { fpm=$candidate; break; }
  done
fi
[[ -n $fpm ]] || { echo "php-examples: php-fpm not found: run make deps (Debian: apt-get install php-fpm), or set CHAT_PHP_FPM" >&2; exit 1; }

redis_port=$(free_port)
redis=redis://127.0.0.1:$redis_port
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port" "$!" || { fail "redis-server did not start" "$tmp/redis.log"; exit 1; }
dead=redis://127.0.0.1:$(free_port)   # nothing listens there
# Play the first sidecar: declare the namespaces' datasets whole, or pushes are refused.
for ns in chat admin value; do redis-cli -p "$redis_port" SET "$ns:dataset" g1 NX >/dev/null; done

# One master, one pool per case; each pool has its own .env (CHAT_TEST_ENV_FILE).
declare -A pool_port
conf=$tmp/fpm.conf
printf '[global]\nerror_log = %s\ndaemonize = no\npid = %s\n' "$tmp/fpm.log" "$tmp/fpm.pid" >"$conf"
# As root php-fpm needs -R and a user (CI containers run tests as root).
as_root=()
[[ $(id -u) == 0 ]] && as_root=(-R)
pool() {
  local name=$1
  shift
  pool_port[$name]=$(free_port)
  {
    printf '\n[%s]\nlisten = 127.0.0.1:%s\npm = static\npm.max_children = 1\ncatch_workers_output = yes\n' "$name" "${pool_port[$name]}"
    [[ $(id -u) == 0 ]] && printf 'user = root\ngroup = root\n'
    printf 'env[CHAT_TEST_PROJECT] = %s\nenv[CHAT_TEST_ENV_FILE] = %s\n' "$app" "$tmp/$name.env"
    printf '%s\n' "$@"
  } >>"$conf"
}
pool admin "php_admin_value[chat.redis_url] = $redis" "php_admin_value[chat.jwt_secret] = pool-secret"
pool value "php_value[chat.redis_url] = $dead" "php_value[chat.jwt_secret] = pool-secret"
pool environment "php_value[chat.redis_url] = $redis" "env[CHAT_JWT_SECRET] = shared-with-the-sidecar"

# -n: no php.ini, so an installed chat.so is not loaded twice.
"$fpm" -n "${as_root[@]}" -y "$conf" -d "extension=$ext" >/dev/null 2>&1 &
fpm_pid=$!
pids+=("$fpm_pid")
for name in admin value environment; do
  wait_port "${pool_port[$name]}" "$fpm_pid" || { fail "php-fpm did not start" "$tmp/fpm.log"; exit 1; }
done

# request <pool> <name of the check> <expected status> <expected text in the body> [jwt secret the token must verify with]
request() {
  local name=$1 what=$2 status=$3 text=$4 secret=${5:-} out=$tmp/$1.out
  "$php" -n "$here/fcgi.php" "127.0.0.1:${pool_port[$name]}" "$here/fpm-app.php" >"$out" 2>&1 || true
  local got_status body
  got_status=$(head -1 "$out")
  body=$(tail -n +2 "$out")
  if [[ $got_status != "$status" || $body != *"$text"* ]]; then
    { echo "expected $status with: $text"; cat "$tmp/fpm.log"; } >>"$out"
    fail "php-fpm: $what" "$out"
    return
  fi
  if [[ -n $secret ]] && ! "$php" -n -r '
      [$h, $p, $s] = explode(".", json_decode($argv[1], true)["token"]);
      exit(hash_equals(rtrim(strtr(base64_encode(hash_hmac("sha256", "$h.$p", $argv[2], true)), "+/", "-_"), "="), $s) ? 0 : 1);
    ' "$body" "$secret"; then
    echo "the token is not signed with $secret" >>"$out"
    fail "php-fpm: $what" "$out"
    return
  fi
  pass "php-fpm: $what"
}
inbox_length() { redis-cli -p "$redis_port" XLEN "$1:{u:bob}:stream"; }

printf '[CHAT]\nREDIS_URL = %s\nJWT_SECRET = pool-secret\nNAMESPACE = admin\n' "$redis" >"$tmp/admin.env"
request admin "php_admin_value and the same values in .env: the request works" 200 "\"redis_url\":\"$redis\"" pool-secret
[[ $(inbox_length admin) == 1 ]] || fail "php-fpm: the push of the php_admin_value pool is not in Redis"
printf '[CHAT]\nREDIS_URL = %s\nJWT_SECRET = pool-secret\n' "$dead" >"$tmp/admin.env"
request admin "php_admin_value and a different value in .env: an error that names php_admin_value" 500 \
  'Chat\ChatException: cannot set chat.redis_url: PHP refuses to change it, as it does for a value fixed with php_admin_value'

printf '[CHAT]\nREDIS_URL = %s\nJWT_SECRET = from-dotenv\nNAMESPACE = value\n' "$redis" >"$tmp/value.env"
request value "php_value in the pool, other values in .env: .env wins" 200 "\"redis_url\":\"$redis\"" from-dotenv
[[ $(inbox_length value) == 1 ]] || fail "php-fpm: the push of the php_value pool is not in Redis"

request environment "CHAT_JWT_SECRET from the pool's env[], no .env: read with getenv()" 200 '"token"' shared-with-the-sidecar

if ((failed)); then
  echo "php-examples: $failed check(s) failed"
  exit 1
fi
echo "php-examples: all checks passed"
