"""The project's exceptions, each mapped to a documented exit code.

Exit codes (also in README.md and `shrinkd --help`):

  0  success
  1  internal error (a bug: rerun with --debug and report it)
  2  usage or configuration error
  3  malformed input: a /proc or /sys file that does not parse
  4  missing input: a /proc or /sys file that cannot be read
  5  an action failed (a write to the kernel was refused)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_MALFORMED = 3
EXIT_MISSING = 4
EXIT_ACTION = 5


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
