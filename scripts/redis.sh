#!/usr/bin/env bash
# A throwaway Redis server (Debian's redis-server) for the event-bus suites and
# bench, on 127.0.0.1 only. Installs the package when missing (as root).
#   bash scripts/redis.sh start   prints the URL to use (SAGAPROOF_REDIS_URL)
#   bash scripts/redis.sh stop
# Data lives in $SAGAPROOF_REDIS_DIR (default /tmp/sagaproof-redis-$PORT).
# The bus claims durability (an event XADDed and marked relayed in the store is
# never sent again), so the server writes its append-only file and fsyncs it on
# every write: appendonly yes, appendfsync always.
set -euo pipefail
PORT=${SAGAPROOF_REDIS_PORT:-63790}
DIR=${SAGAPROOF_REDIS_DIR:-/tmp/sagaproof-redis-$PORT}
URL="redis://127.0.0.1:$PORT/0"

need_server() {
  if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "redis.sh: apt-get install redis-server" >&2
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    fi
  fi
  command -v redis-server >/dev/null 2>&1 \
    || { echo "redis.sh: redis-server is not installed" >&2; exit 1; }
}

ping() {
  redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG
}

case "${1:-start}" in
  start)
    need_server
    if ping; then
      echo "$URL"; exit 0
    fi
    mkdir -p "$DIR"
    # No protected-mode change needed: bound to loopback only.
    redis-server --bind 127.0.0.1 --port "$PORT" --dir "$DIR" \
      --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/server.log" \
      --appendonly yes --appendfsync always --save "" >/dev/null
    for _ in $(seq 1 100); do
      ping && { echo "$URL"; exit 0; }
      sleep 0.1
    done
    echo "redis.sh: redis-server did not answer on 127.0.0.1:$PORT" \
      "(see $DIR/server.log)" >&2
    exit 1
    ;;
  stop)
    if ping; then
      redis-cli -h 127.0.0.1 -p "$PORT" shutdown >/dev/null 2>&1 || true
    fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
