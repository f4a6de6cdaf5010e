"""The one place shrinkd writes to kernel control files (/proc/sys, /sys).

Paths come from shrinkd.procfs.ProcFS, so a test's fake /proc and /sys trees
receive the writes. A test can subclass Tunables to make its fake tree react
as the kernel would.
"""

from __future__ import annotations

import errno
import os

from ..errors import ActionError, MissingInputError


class Partial(Exception):
    """The kernel did part of the work (memory.reclaim's EAGAIN: could not reclaim all it was asked)."""


class Tunables:
    def write(self, path: str, value: str) -> None:
        """Write `value` to a control file in one write(), as `echo value > path` does.

        Raises MissingInputError when the file does not exist, Partial on
        EAGAIN, ActionError when the kernel refuses the write.
        """
        try:
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ENOTDIR):
                raise MissingInputError(path, "does not exist") from None
            raise ActionError(f"{path}: cannot open for writing: {os.strerror(error.errno or 0)}") from None
        try:
            os.write(fd, value.encode("ascii"))
        except OSError as error:
            if error.errno == errno.EAGAIN:
                raise Partial(path) from None
            raise ActionError(f"{path}: writing {value.strip()!r} failed: {os.strerror(error.errno or 0)}") from None
        finally:
            os.close(fd)
