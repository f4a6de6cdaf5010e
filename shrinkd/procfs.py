"""The only place shrinkd reads /proc and /sys.

Both roots are parameters (`--proc-root`, `--sys-root`), so tests and captured
fixtures can stand in for the live kernel. Reading is separate from parsing:
this module returns text or hands it to the pure parsers in parse.py.
"""

from __future__ import annotations

import errno
import os

from . import parse
from .errors import MissingInputError
from .record import Record

# The daemon keeps this module loaded: paths are plain strings (pathlib pulls in
# re, fnmatch and urllib), and typing is for the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Callable, Dict, Optional, Tuple, TypeVar, Union

    T = TypeVar("T")
    PathLike = Union[str, Path]

# Read size for one pread(); /proc files larger than this are read in a loop.
_CHUNK = 65536


def _missing(path: PathLike, error: OSError) -> MissingInputError:
    reason = os.strerror(error.errno) if error.errno else str(error)
    return MissingInputError(str(path), f"cannot read: {reason}")


class OpenFile:
    """A file kept open and re-read from offset 0 on every call.

    /proc files regenerate their contents on each read from offset 0, so a
    poll costs one pread() (or a few, for large files) and no open/close.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = str(path)
        try:
            self._fd: Optional[int] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise _missing(path, error) from None

    def read(self) -> str:
        if self._fd is None:
            raise MissingInputError(self.path, "file was closed")
        chunks = []
        offset = 0
        try:
            while True:
                chunk = os.pread(self._fd, _CHUNK, offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
        except OSError as error:
            raise _missing(self.path, error) from None
        return b"".join(chunks).decode("ascii", errors="replace")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OpenFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Snapshot(Record):
    """One reading of the kernel's memory state. Optional parts are None when absent."""

    __slots__ = ("buddyinfo", "meminfo", "pressure", "vmstat", "zoneinfo")

    def __init__(
        self,
        buddyinfo: parse.BuddyInfo,
        zoneinfo: Optional[Tuple[parse.ZoneInfo, ...]],
        vmstat: Optional[Dict[str, int]],
        meminfo: Optional[Dict[str, int]],
        pressure: Optional[parse.Pressure],
    ) -> None:
        self.buddyinfo = buddyinfo
        self.zoneinfo = zoneinfo
        self.vmstat = vmstat
        self.meminfo = meminfo
        self.pressure = pressure


class ProcFS:
    """Paths (plain strings) and reads under configurable /proc and /sys roots."""

    def __init__(self, proc_root: PathLike = "/proc", sys_root: PathLike = "/sys") -> None:
        self.proc_root = str(proc_root)
        self.sys_root = str(sys_root)

    def proc(self, relative: str) -> str:
        return os.path.join(self.proc_root, relative)

    def sys(self, relative: str) -> str:
        return os.path.join(self.sys_root, relative)

    @staticmethod
    def read_text(path: PathLike) -> str:
        try:
            with open(path, "rb") as handle:
                return handle.read().decode("ascii", errors="replace")
        except OSError as error:
            raise _missing(path, error) from None

    def _read(self, relative: str, parser: Callable[[str, str], T]) -> T:
        path = self.proc(relative)
        return parser(self.read_text(path), path)

    def _read_optional(self, relative: str, parser: Callable[[str, str], T]) -> Optional[T]:
        """Parse the file if it exists; a missing file gives None, a malformed one still raises."""
        path = self.proc(relative)
        try:
            text = self.read_text(path)
        except MissingInputError:
            return None
        return parser(text, path)

    def buddyinfo(self) -> parse.BuddyInfo:
        return self._read("buddyinfo", parse.parse_buddyinfo)

    def zoneinfo(self) -> Tuple[parse.ZoneInfo, ...]:
        return self._read("zoneinfo", parse.parse_zoneinfo)

    def vmstat(self) -> Dict[str, int]:
        return self._read("vmstat", parse.parse_vmstat)

    def meminfo(self) -> Dict[str, int]:
        return self._read("meminfo", parse.parse_meminfo)

    def pressure(self) -> Optional[parse.Pressure]:
        """PSI for memory, or None where the kernel has no PSI or has it disabled (psi=0)."""
        path = self.proc("pressure/memory")
        try:
            text = self.read_text(path)
        except MissingInputError as error:
            if _psi_unavailable(path, error):
                return None
            raise
        return parse.parse_pressure(text, path)

    def snapshot(self) -> Snapshot:
        """Read everything: buddyinfo must exist; the rest is None when the file is missing."""
        return Snapshot(
            buddyinfo=self.buddyinfo(),
            zoneinfo=self._read_optional("zoneinfo", parse.parse_zoneinfo),
            vmstat=self._read_optional("vmstat", parse.parse_vmstat),
            meminfo=self._read_optional("meminfo", parse.parse_meminfo),
            pressure=self.pressure(),
        )


def _psi_unavailable(path: str, error: MissingInputError) -> bool:
    # PSI compiled out: no file. Compiled in but disabled with psi=0 on the
    # command line: the file exists and reading it fails with EOPNOTSUPP.
    return not os.path.exists(path) or os.strerror(errno.EOPNOTSUPP) in error.problem
