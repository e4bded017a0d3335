#!/usr/bin/env bash
# System packages some suites need (from Debian's packages), installed only when
# missing: SPIN and a C compiler for the Promela parity suite and bench,
# Chromium to check the HTML timeline page renders (headless), PostgreSQL for
# the log and worker suites (scripts/postgres.sh starts it), redis-server for
# the event-bus suites (scripts/redis.sh starts it).
# Tests that need one of these are skipped when it is absent, except under
# CI=true, where this script has run and an absence is a failure.
set -euo pipefail
need=()
command -v spin >/dev/null 2>&1 || need+=(spin)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# PostgreSQL for the log and worker suites (scripts/postgres.sh starts it).
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need+=(postgresql)
# Redis for the event-bus suites (scripts/redis.sh starts it).
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  if [ -n "${CI:-}" ]; then
    # CI has nothing installed by hand: a missing server fails here, at once,
    # rather than as a failed fixture deep in the slow tier.
    echo "install_system: missing ${need[*]} and cannot apt-get install (not root or no apt-get)" >&2
    exit 1
  fi
  echo "install_system: missing ${need[*]} (not root or no apt-get); the suites that need them will skip" >&2
  exit 0
fi
echo "install_system: apt-get install ${need[*]}"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
