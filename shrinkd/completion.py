"""Shell completion for bash and zsh, generated from the command line's own parser with shtab,
so that it names every subcommand and option `shrinkd --help` does.

    python3 -m shrinkd.completion bash > contrib/completion/shrinkd.bash
    python3 -m shrinkd.completion zsh > contrib/completion/_shrinkd

shtab (PyPI; the `completion` extra) is imported here only: neither the daemon nor the other
commands load it. The generated scripts are kept in contrib/completion/ (tests/test_completion.py
checks that they are what this module writes now).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional

SHELLS = ("bash", "zsh")
# What an argument completes to, by its metavar: files and directories.
FILES = ("FILE", "TRACE", "PNG", "CANDIDATE")
DIRECTORIES = ("DIR",)


def script(shell: str) -> str:
    """The completion script for `shell` (bash or zsh)."""
    import argparse

    import shtab

    from .cli import build_parser

    parser = build_parser()
    parsers = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers += list(action.choices.values())
    for each in parsers:
        for action in each._actions:
            if action.metavar in FILES:
                action.complete = shtab.FILE  # type: ignore[attr-defined]
            elif action.metavar in DIRECTORIES:
                action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
    return str(shtab.complete(parser, shell))


def main(argv: Optional[List[str]] = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if len(words) != 1 or words[0] not in SHELLS:
        print(f"usage: python3 -m shrinkd.completion {{{','.join(SHELLS)}}}", file=sys.stderr)
        return 2
    sys.stdout.write(script(words[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
