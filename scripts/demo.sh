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
CS_PORT=${DEMO_CS_PORT:-8081}
DB_PORT=${DEMO_DB_PORT:-3390}
SECRET=${DEMO_SECRET:-demo-secret-change-me}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$REDIS_PORT" "$WS_PORT" "$WEB_PORT" "$DB_PORT" "$CS_PORT"; do
  port_free "$p" || { echo "demo: port $p is busy (set DEMO_REDIS_PORT / DEMO_WS_PORT / DEMO_WEB_PORT / DEMO_DB_PORT / DEMO_CS_PORT)" >&2; exit 1; }
done

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$state" --appendonly yes --save '' >"$state/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done

# MariaDB for history; the data directory is kept under .demo/ so history survives restarts.
if [[ ! -d "$state/mysql" ]]; then
  mariadb-install-db --no-defaults --auth-root-authentication-method=normal --skip-test-db --user="$(id -un)" \
    --datadir="$state/mysql" >"$state/mysql-install.log" 2>&1
fi
mariadbd --no-defaults --user="$(id -un)" --datadir="$state/mysql" --socket="$state/mysql.sock" \
  --pid-file="$state/mysql.pid" --port="$DB_PORT" --bind-address=127.0.0.1 --skip-log-bin \
  --innodb-buffer-pool-size=32M >"$state/mysql.log" 2>&1 &
pids+=($!)
until mariadb --no-defaults -uroot -h127.0.0.1 -P"$DB_PORT" -e 'CREATE DATABASE IF NOT EXISTS chat' 2>/dev/null; do
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$state/mysql.log" >&2; exit 1; }
  sleep 0.2
done

CHAT_MYSQL_URL="mysql://root@127.0.0.1:$DB_PORT/chat" CHAT_LISTEN="127.0.0.1:$WS_PORT" CHAT_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" CHAT_JWT_SECRET="$SECRET" \
  "$root/target/release/chat-sidecar" >"$state/sidecar.out" 2>"$state/sidecar.log" &
pids+=($!)
until grep -q "listening on" "$state/sidecar.out" 2>/dev/null; do
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$state/sidecar.log" >&2; exit 1; }
  sleep 0.1
done

CHAT_URL="http://127.0.0.1:$WS_PORT" php -n \
  -d "extension=$root/target/release/libchat.so" \
  -d "chat.redis_url=redis://127.0.0.1:$REDIS_PORT" \
  -d "chat.jwt_secret=$SECRET" \
  -S "127.0.0.1:$WEB_PORT" -t "$root/php-examples/demo" >"$state/php.log" 2>&1 &
pids+=($!)

# The customer-service example: same settings plus pdo_mysql; its cs_* tables go in the same database.
CHAT_URL="http://127.0.0.1:$WS_PORT" CHAT_WS_URL="ws://127.0.0.1:$WS_PORT/ws" CS_DB_DSN="mysql:host=127.0.0.1;port=$DB_PORT;dbname=chat;charset=utf8mb4" CS_DB_USER=root \
  php -n -d "extension=$root/target/release/libchat.so" -d "chat.redis_url=redis://127.0.0.1:$REDIS_PORT" -d "chat.jwt_secret=$SECRET" \
  -d extension=pdo -d extension=mysqlnd -d extension=pdo_mysql \
  -S "127.0.0.1:$CS_PORT" -t "$root/php-examples/customer-service/public" >"$state/php-cs.log" 2>&1 &
pids+=($!)

cat <<MSG

  Demo running. Open two tabs:
    http://127.0.0.1:$WEB_PORT/?user=alice
    http://127.0.0.1:$WEB_PORT/?user=bob
  and type in one: the other shows it at once. The pages use the sidecar's JavaScript client
  (http://127.0.0.1:$WS_PORT/chat.js); add &transport=sse or &transport=poll to force a transport.
  Group chat (several users in one room, typing, who is online):
    http://127.0.0.1:$WEB_PORT/group.php?user=alice   (and ?user=bob, ?user=carol)
  Customer service: a shop visitor, and the agents' console (agents ann, ben, cleo):
    http://127.0.0.1:$CS_PORT/                        (visitor page: open the chat bottom right)
    http://127.0.0.1:$CS_PORT/agent.php?agent=ann     (agent console; ?agent=ben in another window)

  From PHP:  php -d extension=$root/target/release/libchat.so -d chat.redis_url=redis://127.0.0.1:$REDIS_PORT \\
               -r 'echo chat_push("alice", ["text" => "hi from PHP"]);'
  History is in MariaDB (mysql -h127.0.0.1 -P$DB_PORT -uroot chat): reload a tab to see it,
  with the unread count since your last visit.
  Logs in .demo/. Ctrl-C stops everything.

MSG
wait -n "${pids[@]}"
