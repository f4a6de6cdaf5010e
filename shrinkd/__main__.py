"""`python -m shrinkd`: the same command line as /usr/bin/shrinkd (shrinkd.cli)."""

from .cli import run

run()
