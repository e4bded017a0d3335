#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benches, from Debian's
# packages, on 127.0.0.1 only. Installs the package when missing (as root).
#   bash scripts/postgres.sh start   prints the URL to use (SAGAPROOF_PG_URL)
#   bash scripts/postgres.sh stop
# The cluster lives in $SAGAPROOF_PG_DIR (default /tmp/sagaproof-pg-$PORT) and
# is owned by the 'postgres' user: the server refuses to run as root.
set -euo pipefail
PORT=${SAGAPROOF_PG_PORT:-54329}
DIR=${SAGAPROOF_PG_DIR:-/tmp/sagaproof-pg-$PORT}
URL="postgresql://postgres@127.0.0.1:$PORT/postgres"

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$d" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "postgres.sh: apt-get install postgresql" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
  [ -n "$d" ] || { echo "postgres.sh: PostgreSQL is not installed" >&2; exit 1; }
  echo "$d"
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "${1:-start}" in
  start)
    BIN=$(bindir)
    if as_pg "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; then
      echo "$URL"; exit 0
    fi
    if [ ! -f "$DIR/PG_VERSION" ]; then
      mkdir -p "$DIR"
      [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
      as_pg "$BIN/initdb" -D "$DIR" -U postgres --auth=trust >/dev/null
    fi
    # Durable like production (fsync on); small and local.
    as_pg "$BIN/pg_ctl" -D "$DIR" -w -l "$DIR/server.log" \
      -o "-h 127.0.0.1 -p $PORT -k $DIR -c max_connections=200" start >/dev/null
    echo "$URL"
    ;;
  stop)
    BIN=$(bindir)
    [ -f "$DIR/PG_VERSION" ] && as_pg "$BIN/pg_ctl" -D "$DIR" -m fast stop >/dev/null || true
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
