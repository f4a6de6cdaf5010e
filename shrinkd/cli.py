"""Command line: argparse subcommands and the mapping from errors to exit codes."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Callable, List, Optional

from . import __version__, report
from .errors import EXIT_INTERNAL, EXIT_OK, ShrinkdError
from .procfs import ProcFS

EXIT_CODES_HELP = """\
exit codes:
  0  success
  1  internal error (a bug: rerun with --debug and report it)
  2  usage or configuration error
  3  malformed input: a /proc or /sys file that does not parse
  4  missing input: a /proc or /sys file that cannot be read
  5  an action failed (the kernel refused a write)
"""

Handler = Callable[[argparse.Namespace], int]


def _common() -> argparse.ArgumentParser:
    """Options every subcommand takes."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--proc-root", metavar="DIR", default="/proc", help="read /proc files under DIR (default: /proc)")
    group.add_argument("--sys-root", metavar="DIR", default="/sys", help="read and write /sys files under DIR (default: /sys)")
    group.add_argument("--debug", action="store_true", help="show a traceback on errors")
    return common


def _procfs(args: argparse.Namespace) -> ProcFS:
    return ProcFS(args.proc_root, args.sys_root)


def cmd_status(args: argparse.Namespace) -> int:
    snapshot = _procfs(args).snapshot()
    document = report.build(snapshot, os.sysconf("SC_PAGE_SIZE"))
    if args.json:
        json.dump(document, sys.stdout, indent=2 if args.pretty else None)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.render(document))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="shrinkd",
        description="Watch per-zone memory fragmentation and act (compaction, reclaim) before allocations fail.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"shrinkd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    status = commands.add_parser(
        "status",
        parents=[common],
        help="show free blocks, fragmentation indexes and watermarks per zone",
        description=(
            "Show, per node and zone, the free blocks per order, the kernel's unusable free index and "
            "fragmentation index per order (the values debugfs extfrag/* prints), free pages against "
            "the min/low/high watermarks, the compaction score, and PSI memory pressure."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    status.add_argument("--pretty", action="store_true", help="indent the JSON")
    status.set_defaults(handler=cmd_status)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ShrinkdError as error:
        if args.debug:
            traceback.print_exc()
        print(f"shrinkd: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:  # a bug: one line unless --debug
        if args.debug:
            traceback.print_exc()
        print(f"shrinkd: internal error: {type(error).__name__}: {error} (rerun with --debug)", file=sys.stderr)
        return EXIT_INTERNAL


def run() -> None:
    sys.exit(main())
