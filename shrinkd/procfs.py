"""The only place shrinkd opens files under /proc and /sys: to read them, to write them.

Both roots are parameters (`--proc-root`, `--sys-root`), so tests and captured
fixtures can stand in for the live kernel. Reading is separate from parsing:
Reader hands the text to the pure parsers in parse.py and returns a Snapshot.
Every write to a kernel control file, arming the PSI trigger included, goes
through Tunables.write or Tunables.arm.
"""

from __future__ import annotations

import errno
import os

from . import metrics, parse
from .errors import ActionError, MissingInputError, ShrinkdError
from .parse import Snapshot

# The daemon keeps this module loaded: paths are plain strings (pathlib pulls in
# re, fnmatch and urllib), and typing is for the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Dict, Optional, Sequence, Tuple, Union

    PathLike = Union[str, Path]

# Read size for one pread(); /proc files larger than this are read in a loop.
_CHUNK = 65536
PRESSURE = "pressure/memory"
HPAGE_PMD_SIZE = "kernel/mm/transparent_hugepage/hpage_pmd_size"


def _missing(path: PathLike, error: OSError) -> MissingInputError:
    reason = os.strerror(error.errno) if error.errno else str(error)
    return MissingInputError(str(path), f"cannot read: {reason}")


def psi_disabled(error: OSError) -> bool:
    """PSI compiled in but disabled with psi=0 on the kernel command line: /proc/pressure/memory
    exists, and reading it (or arming a trigger on it) fails with EOPNOTSUPP."""
    return error.errno == errno.EOPNOTSUPP


class OpenFile:
    """A file kept open and re-read from offset 0 on every call.

    /proc files regenerate their contents on each read from offset 0, so a
    poll costs one pread() (or a few, for large files) and no open/close.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = str(path)
        self.disabled = False  # set when a read found PSI disabled (psi=0)
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
            self.disabled = psi_disabled(error)
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


class ProcFS:
    """Paths (plain strings) under configurable /proc and /sys roots."""

    def __init__(self, proc_root: PathLike = "/proc", sys_root: PathLike = "/sys") -> None:
        self.proc_root = str(proc_root)
        self.sys_root = str(sys_root)

    def proc(self, relative: str) -> str:
        return os.path.join(self.proc_root, relative)

    def sys(self, relative: str) -> str:
        return os.path.join(self.sys_root, relative)

    def page_size(self) -> int:
        """The kernel's page size: this process's for the live /proc; for another tree (a captured
        one), from its meminfo and zoneinfo (metrics.page_size_of), else this process's."""
        if self.proc_root == "/proc":
            return os.sysconf("SC_PAGE_SIZE")
        try:
            meminfo = parse.parse_meminfo(self.read_text(self.proc("meminfo")))
            zones = parse.parse_zoneinfo(self.read_text(self.proc("zoneinfo")))
        except ShrinkdError:
            return os.sysconf("SC_PAGE_SIZE")
        size = metrics.page_size_of(meminfo.get("MemTotal", 0), sum(zone.managed for zone in zones))
        return size or os.sysconf("SC_PAGE_SIZE")

    def named_orders(self, page_size: int) -> Dict[str, Optional[int]]:
        """What each of conditions.ORDER_NAMES is on this kernel (None where it cannot be told):
        huge as huge_order() finds it; pageblock from /proc/pagetypeinfo's first line (readable by
        root only); costly is PAGE_ALLOC_COSTLY_ORDER."""
        pageblock: Optional[int] = None
        try:
            pageblock = parse.parse_pageblock_order(self.read_head(self.proc("pagetypeinfo")))
        except ShrinkdError:
            pageblock = None
        return {"huge": self.huge_order(page_size)[0], "pageblock": pageblock, "costly": metrics.COSTLY_ORDER}

    def huge_order(self, page_size: int) -> Tuple[Optional[int], str]:
        """The order of the PMD huge page and where it came from ("THP 2048 kB", "hugetlb 2048 kB"),
        or None and why no source gave it. THP's hpage_pmd_size first; a kernel without THP
        (CONFIG_TRANSPARENT_HUGEPAGE off; PREEMPT_RT kernels cannot have it) has no
        transparent_hugepage directory, and then hugetlb's default huge page size, /proc/meminfo's
        Hugepagesize (the PMD size unless default_hugepagesz= says otherwise on the command line),
        stands in."""
        lacks = []
        try:
            size = int(self.read_text(self.sys(HPAGE_PMD_SIZE)).strip())
        except MissingInputError:
            lacks.append(
                f"no transparent huge pages (no {self.sys(HPAGE_PMD_SIZE)}: CONFIG_TRANSPARENT_HUGEPAGE off, as on PREEMPT_RT)"
            )
        except ValueError:
            lacks.append(f"{self.sys(HPAGE_PMD_SIZE)}: not a number")
        else:
            order = metrics.order_of(size, page_size)
            if order is not None:
                return order, f"THP {size // 1024} kB"
            lacks.append(f"{self.sys(HPAGE_PMD_SIZE)}: {size} is not a power-of-two number of {page_size}-byte pages")
        meminfo = self.proc("meminfo")
        try:
            kb = parse.parse_meminfo(self.read_text(meminfo)).get("Hugepagesize")
        except ShrinkdError as error:
            lacks.append(str(error))
        else:
            order = metrics.order_of(kb * 1024, page_size) if kb else None
            if order is not None:
                return order, f"hugetlb {kb} kB"
            if not kb:
                lacks.append(f"no hugetlb (no Hugepagesize in {meminfo}: CONFIG_HUGETLBFS off)")
            else:
                lacks.append(f"{meminfo}: Hugepagesize {kb} kB is no power-of-two number of {page_size}-byte pages")
        return None, " and ".join(lacks)

    @staticmethod
    def read_head(path: PathLike, size: int = 256) -> str:
        """The start of a file (the header of a large /proc file)."""
        try:
            with open(path, "rb") as handle:
                return handle.read(size).decode("ascii", errors="replace")
        except OSError as error:
            raise _missing(path, error) from None

    @staticmethod
    def read_text(path: PathLike) -> str:
        """A whole file at once (files read once, such as a sysfs attribute)."""
        try:
            with open(path, "rb") as handle:
                return handle.read().decode("ascii", errors="replace")
        except OSError as error:
            raise _missing(path, error) from None


class Reader:
    """The /proc files of a poll, kept open and re-read from offset 0: the one snapshot builder.

    /proc/buddyinfo must exist; the others are left out of the Snapshot when
    missing (and /proc/pressure/memory when PSI is disabled). /proc/zoneinfo
    (a few hundred lines; its watermarks and managed pages rarely change) is
    parsed again only when asked; in between, the last parse is reused.
    """

    OPTIONAL = ("zoneinfo", "vmstat", PRESSURE)

    def __init__(self, procfs: ProcFS, meminfo: bool = False) -> None:
        self.buddyinfo = OpenFile(procfs.proc("buddyinfo"))
        self.optional: Dict[str, Optional[OpenFile]] = {}
        for name in (*self.OPTIONAL, "meminfo") if meminfo else self.OPTIONAL:
            try:
                self.optional[name] = OpenFile(procfs.proc(name))
            except MissingInputError:
                self.optional[name] = None
        self._zoneinfo: Optional[Tuple[parse.ZoneInfo, ...]] = None

    def _text(self, name: str) -> Optional[Tuple[str, str]]:
        handle = self.optional.get(name)
        if handle is None:
            return None
        try:
            return handle.read(), handle.path
        except MissingInputError:
            if handle.disabled:
                return None
            raise

    def snapshot(self, zoneinfo: bool = True, counters: bool = True, keys: Optional[Sequence[str]] = None) -> Snapshot:
        """Read the files: `zoneinfo=False` reuses the last /proc/zoneinfo (if there is one);
        `counters=False` leaves out /proc/vmstat and PSI; `keys` picks /proc/vmstat counters (None: all)."""
        if zoneinfo or self._zoneinfo is None:
            text = self._text("zoneinfo")
            self._zoneinfo = parse.parse_zoneinfo(*text) if text else None
        vmstat = self._text("vmstat") if counters else None
        pressure = self._text(PRESSURE) if counters else None
        meminfo = self._text("meminfo")
        return Snapshot(
            buddyinfo=parse.parse_buddyinfo(self.buddyinfo.read(), self.buddyinfo.path),
            zoneinfo=self._zoneinfo,
            vmstat=parse.parse_vmstat(vmstat[0], vmstat[1], keys) if vmstat else None,
            meminfo=parse.parse_meminfo(*meminfo) if meminfo else None,
            pressure=parse.parse_pressure(*pressure) if pressure else None,
        )

    def close(self) -> None:
        self.buddyinfo.close()
        for handle in self.optional.values():
            if handle is not None:
                handle.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Partial(Exception):
    """The kernel did part of the work (memory.reclaim's EAGAIN: could not reclaim all it was asked)."""


class Tunables:
    """The one place shrinkd writes to kernel control files (/proc/sys, /sys, PSI triggers).

    Paths come from ProcFS, so a test's fake /proc and /sys trees receive the
    writes. A test can subclass Tunables to make its fake tree react as the
    kernel would.
    """

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

    def arm(self, path: str, spec: str) -> int:
        """Arm a PSI trigger: open `path` read-write and non-blocking, write `spec` ended by a NUL
        byte (the kernel overwrites the last byte it copies: without the NUL the last digit is
        lost), and return the descriptor to poll for POLLPRI. Raises OSError (the caller says why);
        a file of non-zero size (a copy in a test tree, not the kernel's) cannot trigger: ENODEV.
        """
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if os.fstat(fd).st_size != 0:
                raise OSError(errno.ENODEV, "not a kernel pressure file")
            os.write(fd, spec.encode("ascii") + b"\0")
        except BaseException:
            os.close(fd)
            raise
        return fd
