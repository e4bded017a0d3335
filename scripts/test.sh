#!/usr/bin/env bash
# The whole test suite, from a fresh machine: makes its own virtualenv, installs
# the project with its test extras, lints, type-checks (while numba compiles
# the checker's kernels once, verifier/_warm.py), then runs the fast tier
# and the slow tier (kill tests, parity suites, notebooks), both on two workers
# (pytest-xdist), and prints how long each step took.
#   bash scripts/test.sh            everything (what CI runs)
#   bash scripts/test.sh --fast     the fast tier only
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's time, printed at the end, also when a step fails.
timings=()
current="" current_start=0
report() {
  local code=$?
  echo "== timings"
  local t
  for t in "${timings[@]}"; do
    echo "  $t"
  done
  if [ -n "$current" ]; then
    printf '  %-12s %5ds (failed)\n' "$current" $((SECONDS - current_start))
  fi
  printf '  %-12s %5ds\n' total "$SECONDS"
  exit "$code"
}
trap report EXIT
step() {
  current=$1 current_start=$SECONDS
  shift
  echo "== $current"
  "$@"
  timings+=("$(printf '%-12s %5ds' "$current" $((SECONDS - current_start)))")
  current=""
}

step system bash scripts/install_system.sh

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
install() {
  python -m pip install -q --upgrade pip >/dev/null
  python -m pip install -q -e '.[dev,notebooks,otel,postgres,redis,temporal]'
}
step install install
step ruff ruff check .
# numba compiles the explicit checker's kernels on first use and caches them
# on disk; on a fresh clone every pytest-xdist worker would compile the same
# functions at the same moment (about 37 s of CPU each). Compiled once here,
# on the core mypy leaves idle (verifier/_warm.py); its own time is printed.
warm_log=$(mktemp)
(
  t0=$SECONDS
  rc=0
  python -m verifier._warm || rc=$?
  echo "  warm-up took $((SECONDS - t0)) s (exit $rc)"
  exit "$rc"
) >"$warm_log" 2>&1 &
warm_pid=$!
step "mypy" mypy
warm_wait() {
  local rc=0
  wait "$warm_pid" || rc=$?
  cat "$warm_log"
  rm -f "$warm_log"
  # numba is installed here (the dev extra): a search that fails or a
  # compiled module left out of the warm-up is an error, not a slower run.
  return "$rc"
}
step "warm-up" warm_wait
# --durations: the slowest tests of each tier, to see where the time goes
# (in the slow tier every test of 1 s or more: they add up to its whole
# work, and half of that is its best two-worker time).
step "fast tier" python -m pytest -m "not slow" -n 2 -q -p no:cacheprovider \
  --durations=10
if [ "${1:-}" != "--fast" ]; then
  # worksteal: a worker that runs out of tests takes pending ones from the
  # other, since a few slow tests (parity shards, kill tests) dwarf the rest.
  step "slow tier" python -m pytest -m slow -n 2 --dist worksteal -q \
    -p no:cacheprovider --durations=120 --durations-min=1
fi
