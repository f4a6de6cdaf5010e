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
# The test kernels (tests/testkernels.py) are the slowest thing a cold run builds, and only
# the tests that run last need them (tests/conftest.py): build them in the background, at
# low priority, while the rest of the suite runs. A warm run finds them cached at once.
builder=""
if [ "$#" -eq 0 ]; then
    mkdir -p .vm
    nice -n 15 python -m tests.testkernels build > .vm/testkernels-build.log 2>&1 &
    builder=$!
fi
status=0
pytest --durations=25 "$@" || status=$?
if [ -n "$builder" ] && ! wait "$builder"; then
    echo "test.sh: building the test kernels failed (.vm/testkernels-build.log):" >&2
    tail -n 30 .vm/testkernels-build.log >&2
    status=1
fi
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests: failing" >&2
    exit 1
fi
exit "$status"
