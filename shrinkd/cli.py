"""Command line: the entry point, `shrinkd run`, and the mapping from errors to exit codes.

The long-running `shrinkd run` process carries as little as it can: a plain `run`
command line is read without argparse (parse_run) and only this module's code is
loaded for it; help, errors and the other subcommands go through argparse and
their handlers in shrinkd.commands, imported only then.
"""

from __future__ import annotations

import sys

from .errors import EXIT_ACTION, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, ShrinkdError
from .events import state_file
from .procfs import ProcFS

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, Callable, List, Optional, Tuple, Union

    Args = Union[argparse.Namespace, "RunArgs"]
    Handler = Callable[[Any], int]


def _procfs(args: Args) -> ProcFS:
    return ProcFS(args.proc_root, args.sys_root)


class RunArgs:
    """The options of `shrinkd run`, as argparse would set them."""

    def __init__(self) -> None:
        self.command = "run"
        self.config: Optional[str] = None
        self.dry_run = False
        self.once = False
        self.debug = False
        self.proc_root = "/proc"
        self.sys_root = "/sys"
        self.handler: Handler = cmd_run


_RUN_FLAGS = {"--dry-run": "dry_run", "--once": "once", "--debug": "debug"}
_RUN_VALUES = {"--config": "config", "--proc-root": "proc_root", "--sys-root": "sys_root"}


def parse_run(argv: List[str]) -> Optional[RunArgs]:
    """Read a `run` command line without argparse; None for anything else (argparse then reads it)."""
    args = RunArgs()
    found = False
    words = iter(argv)
    for word in words:
        name, equals, inline = word.partition("=")
        if word == "run" and not found:
            found = True
        elif word in _RUN_FLAGS:
            setattr(args, _RUN_FLAGS[word], True)
        elif name in _RUN_VALUES:
            value = inline if equals else next(words, None)
            if value is None or (not equals and value.startswith("-")):
                return None
            setattr(args, _RUN_VALUES[name], value)
        else:
            return None
    return args if found else None


def cmd_run(args: Args) -> int:
    from . import config as configuration
    from . import configload
    from .daemon import Daemon
    from .errors import CannotAct
    from .journal import Journal
    from .notify import Notifier

    procfs = _procfs(args)
    warnings: List[str] = []

    def judged(loaded: configuration.Config) -> Tuple[List[str], List[str]]:
        # Run in the child that reads the files: the judgement never enters the daemon's memory.
        from .judgement import examine

        verdict, _ = examine(procfs, loaded, args.dry_run or loaded.dry_run)
        return verdict.errors, verdict.warnings

    def load() -> configuration.Config:
        # Files are found again on every reload: a drop-in may have been added.
        loaded, (errors, found) = configload.load_checked(configload.resolve(args.config), judged)
        if errors:  # can never act as written: refused at start, and on reload (the old one stays)
            raise CannotAct(loaded.sources, errors)
        warnings[:] = found
        return loaded

    try:
        config = load()
    except CannotAct as error:
        for line in error.lines:
            print(f"shrinkd: {line}", file=sys.stderr)
        return EXIT_USAGE
    daemon = Daemon(
        procfs,
        config,
        Journal(config.log_target, config.debug or args.debug),
        reload=load,
        notifier=Notifier(),
        once=args.once,
        dry_run=args.dry_run,
        debug=args.debug,
        state_path=None if args.once else state_file(writable=True),
        warnings=list(warnings),
    )
    code = daemon.run()
    if args.once and "action_failed" in daemon.events:
        return EXIT_ACTION
    return code


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every subcommand (shrinkd.commands), `run` handled by cmd_run."""
    from .commands import build_parser as build

    return build(cmd_run)


def main(argv: Optional[List[str]] = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args: Args
    fast = parse_run(words)
    args = fast if fast is not None else build_parser().parse_args(words)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ShrinkdError as error:
        if args.debug:
            _traceback()
        print(f"shrinkd: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:  # a bug: one line unless --debug
        if args.debug:
            _traceback()
        print(f"shrinkd: internal error: {type(error).__name__}: {error} (rerun with --debug)", file=sys.stderr)
        return EXIT_INTERNAL


def _traceback() -> None:
    import traceback

    traceback.print_exc()


def run() -> None:
    sys.exit(main())
