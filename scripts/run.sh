#!/usr/bin/env bash
# Quick start, first command: install what shrinkd needs (Debian packages and a
# virtualenv in .venv), then run it. Arguments are passed to shrinkd; with none,
# it shows the current per-zone fragmentation table (`shrinkd status`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --runtime-only
if [ "$#" -eq 0 ]; then
    set -- status
fi
exec .venv/bin/shrinkd "$@"
