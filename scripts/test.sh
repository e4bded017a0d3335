#!/usr/bin/env bash
# The whole test suite, from a fresh machine: makes its own virtualenv, installs
# the project with its test extras, lints, type-checks, then runs the fast tier
# and the slow tier (kill tests, parity suites, notebooks).
#   bash scripts/test.sh            everything (what CI runs)
#   bash scripts/test.sh --fast     the fast tier only
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_system.sh

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
python -m pip install -q -e '.[dev,notebooks,otel]'

echo "== ruff"
ruff check .
echo "== mypy --strict"
mypy
echo "== fast tier"
python -m pytest -m "not slow" -n 2 -q -p no:cacheprovider
if [ "${1:-}" != "--fast" ]; then
  echo "== slow tier"
  python -m pytest -m slow -q -p no:cacheprovider
fi
