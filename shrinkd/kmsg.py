"""The kernel's log, /dev/kmsg, read for the allocation failures it reports.

Opened non-blocking at its end (what the kernel logged before shrinkd started is
not news), it joins the daemon's poll set: each record the kernel logs wakes the
daemon, which reads every pending record and keeps the `page allocation failure`
reports (parse.allocation_failure). Records lost because the kernel's buffer wrapped
(EPIPE) are skipped. Reading it needs CAP_SYSLOG where kernel.dmesg_restrict is set
(the unit grants it).
"""

from __future__ import annotations

import errno
import os

from .errors import InputError
from .parse import allocation_failure, parse_kmsg_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

    from .parse import AllocationFailure

KMSG = "/dev/kmsg"


class KernelLog:
    """/dev/kmsg opened at its end (or `fd`: a descriptor that reads one record at a time, for tests)."""

    def __init__(self, path: str = KMSG, fd: Optional[int] = None) -> None:
        self.path = path
        self.lost = 0  # records the kernel overwrote before they were read
        self.unreadable = 0  # records not in /dev/kmsg's format
        if fd is not None:
            self.fd = fd
            return
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            os.close(self.fd)
            raise

    def fileno(self) -> int:
        return self.fd

    def read(self) -> List[AllocationFailure]:
        """Every record logged since the last read; the allocation failures among them."""
        found: List[AllocationFailure] = []
        while self.fd >= 0:
            try:
                data = os.read(self.fd, 8192)  # one record per read
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno == errno.EPIPE:  # overwritten before it was read: go on with the next
                    self.lost += 1
                    continue
                raise
            if not data:
                break
            try:
                failure = allocation_failure(parse_kmsg_record(data, self.path))
            except InputError:
                self.unreadable += 1
                continue
            if failure is not None:
                found.append(failure)
        return found

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_log(path: str = KMSG) -> Tuple[Optional[KernelLog], str]:
    """(log, "") or (None, why not): no /dev/kmsg, or not permitted (dmesg_restrict without CAP_SYSLOG)."""
    try:
        return KernelLog(path), ""
    except OSError as error:
        return None, f"{path}: {os.strerror(error.errno) if error.errno else error}"
