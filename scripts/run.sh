#!/usr/bin/env bash
# Quick start, first command: install what shrinkd needs (Debian packages and a
# virtualenv in .venv), then run it. Arguments are passed to shrinkd; with none,
# it runs the daemon in the foreground with the built-in defaults (`shrinkd run`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --runtime-only
if [ "$#" -eq 0 ]; then
    set -- run
fi
exec .venv/bin/shrinkd "$@"
