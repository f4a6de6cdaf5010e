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
# With SHRINKD_TEST_KERNELS=1 the module is also run in kernels built from Debian's source
# (tests/testkernels.py: kCFI, lockdep, KASAN, no hibernation), the slowest thing a cold run
# builds (about 25 CPU minutes) and only needed by the tests that run last: they are built in
# the background, at low priority, while the rest of the suite runs; a warm run finds them
# cached. Not in the default run: with them the suite does not fit CI's 90 minutes on two cores.
builder=""
if [ "$#" -eq 0 ] && [ "${SHRINKD_TEST_KERNELS:-}" = 1 ]; then
    mkdir -p .vm
    nice -n 15 python -m tests.testkernels build > .vm/testkernels-build.log 2>&1 &
    builder=$!
fi
status=0
# Two workers (pytest-xdist): each file that boots guests is one group (tests/conftest.py),
# so at most two guests run at a time, one per core.
pytest -n "${SHRINKD_TEST_JOBS:-2}" --dist loadgroup --durations=25 "$@" || status=$?
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
