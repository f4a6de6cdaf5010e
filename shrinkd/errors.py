"""The project's exceptions, each mapped to a documented exit code.

EXIT_CODES is the one list of exit codes: `shrinkd --help` prints it and
README.md's table matches it (tests/test_daemon_cli.py checks both).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Sequence

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_MALFORMED = 3
EXIT_MISSING = 4
EXIT_ACTION = 5
EXIT_SHORT = 6

EXIT_CODES = (
    (EXIT_OK, "success"),
    (EXIT_INTERNAL, "internal error (a bug: rerun with --debug and report it)"),
    (EXIT_USAGE, "usage or configuration error"),
    (EXIT_MALFORMED, "malformed input: a /proc or /sys file that does not parse"),
    (EXIT_MISSING, "missing input: a /proc or /sys file that cannot be read"),
    (EXIT_ACTION, "an action failed (the kernel refused a write)"),
    (EXIT_SHORT, "a one-off reclaim freed less than it was asked"),
)


def exit_codes_help() -> str:
    """The exit-code table as `--help` prints it."""
    return "exit codes:\n" + "".join(f"  {code}  {meaning}\n" for code, meaning in EXIT_CODES)


class ShrinkdError(Exception):
    """Root of every error shrinkd reports to a user as one line."""

    exit_code = EXIT_INTERNAL


class UsageError(ShrinkdError):
    """A bad command-line argument."""

    exit_code = EXIT_USAGE


class ConfigError(ShrinkdError):
    """A configuration file that is unreadable or invalid."""

    exit_code = EXIT_USAGE

    def __init__(self, source: str, line: int | None, key: str, problem: str) -> None:
        self.source = source
        self.line = line
        self.key = key
        self.problem = problem
        where = f"{source}:{line}" if line is not None else source
        what = f"{key}: {problem}" if key else problem
        super().__init__(f"{where}: {what}")


class CannotAct(ShrinkdError):
    """A configuration that can never act as written on this system (shrinkd.judgement's errors)."""

    exit_code = EXIT_USAGE

    def __init__(self, sources: Sequence[str], problems: Sequence[str]) -> None:
        self.lines = [f"{', '.join(sources)}: {problem}" for problem in problems]
        super().__init__("; ".join(self.lines))


class InputError(ShrinkdError):
    """A /proc or /sys file that does not parse."""

    exit_code = EXIT_MALFORMED

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}")


class MissingInputError(ShrinkdError):
    """A /proc or /sys file that does not exist or cannot be read."""

    exit_code = EXIT_MISSING

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class ActionError(ShrinkdError):
    """The kernel refused an action (a write to a control file or an ioctl)."""

    exit_code = EXIT_ACTION


class MissingPackageError(ShrinkdError):
    """A command needs a library that is not installed (the message names the package)."""

    exit_code = EXIT_USAGE

    def __init__(self, command: str, module: str, debian: str, pypi: str) -> None:
        super().__init__(
            f"{command} needs the Python module {module}: install Debian's {debian} "
            f"(apt install {debian}) or {pypi} from PyPI (pip install {pypi})"
        )
