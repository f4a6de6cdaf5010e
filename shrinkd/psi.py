"""The PSI trigger on /proc/pressure/memory: a descriptor that polls POLLPRI when tasks stall.

The kernel's format (Documentation/accounting/psi.rst): "some|full
<stall_us> <window_us>" written to the file opened read-write (procfs.Tunables.arm
opens and writes it), then poll for POLLPRI; POLLERR means the trigger is
gone. One trigger per descriptor. This module says why a trigger could not
be armed, so the daemon can fall back to plain polling and say so.
"""

from __future__ import annotations

import errno
import os

from .procfs import psi_disabled

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple

    from .procfs import Tunables


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


def open_trigger(
    tunables: Tunables, path: str, kind: str, stall_ms: int, window_ms: int
) -> Tuple[Optional[Trigger], str]:
    """(trigger, "") when armed, else (None, why not), so the caller can fall back to plain polling."""
    spec = f"{kind} {stall_ms * 1000} {window_ms * 1000}"
    try:
        fd = tunables.arm(path, spec)
    except OSError as error:
        code = error.errno or 0
        if code == errno.ENOENT:
            return None, f"{path} does not exist (kernel without CONFIG_PSI)"
        if psi_disabled(error):
            return None, f"{path}: PSI is disabled (psi=0 on the kernel command line?)"
        reason = {
            errno.ENODEV: "not a kernel pressure file",
            errno.EINVAL: f"the kernel refused '{spec}' (without CAP_SYS_RESOURCE the window must be a multiple of 2 s)",
            errno.EPERM: "not permitted",
        }.get(code, os.strerror(code))
        return None, f"{path}: {reason}"
    return Trigger(fd, spec), ""
