"""A PSI trigger on /proc/pressure/memory: a file descriptor that polls POLLPRI when tasks stall.

The kernel's format (Documentation/accounting/psi.rst): open O_RDWR, write
"some|full <stall_us> <window_us>" ended by a NUL byte (the kernel
overwrites the last byte it copies: without the NUL the last digit is lost),
then poll for POLLPRI; POLLERR means the trigger is gone. One trigger per fd.
"""

from __future__ import annotations

import errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple


class Trigger:
    def __init__(self, fd: int, spec: str) -> None:
        self.fd = fd
        self.spec = spec

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_trigger(path: str, kind: str, stall_ms: int, window_ms: int) -> Tuple[Optional[Trigger], str]:
    """(trigger, "") when armed, else (None, why not), so the caller can fall back to plain polling."""
    spec = f"{kind} {stall_ms * 1000} {window_ms * 1000}"
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ENOENT:
            return None, f"{path} does not exist (kernel without CONFIG_PSI)"
        return None, f"cannot open {path}: {os.strerror(error.errno or 0)}"
    try:
        if os.fstat(fd).st_size != 0:
            # Kernel files report size 0; anything else is a copy (a test tree), which cannot trigger.
            os.close(fd)
            return None, f"{path}: not a kernel pressure file"
        os.write(fd, spec.encode("ascii") + b"\0")
    except OSError as error:
        os.close(fd)
        reason = {
            errno.EOPNOTSUPP: "PSI is disabled (psi=0 on the kernel command line?)",
            errno.EINVAL: f"the kernel refused '{spec}' (without CAP_SYS_RESOURCE the window must be a multiple of 2 s)",
            errno.EPERM: "not permitted",
        }.get(error.errno or 0, os.strerror(error.errno or 0))
        return None, f"{path}: {reason}"
    return Trigger(fd, spec), ""
