#!/usr/bin/env bash
# Quick start, second command: install everything (Debian packages, kernels for
# the QEMU tests, a virtualenv in .venv), then lint, type-check and run the whole
# test suite, the tests that boot Debian kernels under QEMU included.
# Extra arguments go to pytest (e.g. scripts/test.sh -k buddyinfo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"
ruff check .
echo "== mypy --strict"
mypy
echo "== pytest"
status=0
pytest --durations=15 "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests: failing" >&2
    exit 1
fi
exit "$status"
