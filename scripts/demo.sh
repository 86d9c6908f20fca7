#!/usr/bin/env bash
# make demo: a private redis-server, the sidecar and a PHP page where two tabs chat.
# Everything lives under .demo/ and stops on Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.demo"
mkdir -p "$state"

REDIS_PORT=${DEMO_REDIS_PORT:-6390}
WS_PORT=${DEMO_WS_PORT:-9501}
WEB_PORT=${DEMO_WEB_PORT:-8080}
SECRET=${DEMO_SECRET:-demo-secret-change-me}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$REDIS_PORT" "$WS_PORT" "$WEB_PORT"; do
  port_free "$p" || { echo "demo: port $p is busy (set DEMO_REDIS_PORT / DEMO_WS_PORT / DEMO_WEB_PORT)" >&2; exit 1; }
done

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$state" --appendonly yes --save '' >"$state/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done

CHAT_LISTEN="127.0.0.1:$WS_PORT" CHAT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" CHAT_JWT_SECRET="$SECRET" \
  "$root/target/release/chat-sidecar" >"$state/sidecar.out" 2>"$state/sidecar.log" &
pids+=($!)
until grep -q "listening on" "$state/sidecar.out" 2>/dev/null; do
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$state/sidecar.log" >&2; exit 1; }
  sleep 0.1
done

CHAT_WS_URL="ws://127.0.0.1:$WS_PORT/ws" php -n \
  -d "extension=$root/target/release/libchat.so" \
  -d "chat.redis_url=redis://127.0.0.1:$REDIS_PORT" \
  -d "chat.jwt_secret=$SECRET" \
  -S "127.0.0.1:$WEB_PORT" -t "$root/php-examples/demo" >"$state/php.log" 2>&1 &
pids+=($!)

cat <<MSG

  Demo running. Open two tabs:
    http://127.0.0.1:$WEB_PORT/?user=alice
    http://127.0.0.1:$WEB_PORT/?user=bob
  and type in one: the other shows it at once.

  From PHP:  php -d extension=$root/target/release/libchat.so -d chat.redis_url=redis://127.0.0.1:$REDIS_PORT \\
               -r 'echo chat_push("alice", ["text" => "hi from PHP"]);'
  Logs in .demo/. Ctrl-C stops everything.

MSG
wait -n "${pids[@]}"
