"""Client of the shrinkmem kernel module (/dev/shrinkmem, kmod/).

The binary interface is kmod/uapi/shrinkmem.h: the ioctl numbers and the
structure layouts below are built from it by hand (the _IOC encoding and
`struct` formats), and tests/test_uapi.py compiles a C program against the
header to check that they match.

    with ShrinkMem() as dev:
        result = dev.reclaim(25600)       # pages; blocks until done
        print(result.pages_reclaimed, result.duration_ns)
"""

from __future__ import annotations

import errno
import fcntl
import os
import platform
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from shrinkd.errors import ActionError, MissingInputError

DEVICE = "/dev/shrinkmem"

# SHRINKMEM_ABI_VERSION the client was written for.
ABI_VERSION = 2

METHOD_EXPORT = 1
METHOD_KPROBE = 2
METHOD_NAMES = {METHOD_EXPORT: "export", METHOD_KPROBE: "kprobe"}

# struct shrinkmem_reclaim.result: why a request ended early (0: it reclaimed all it asked for).
RESULT_INTERRUPTED = 0x1
RESULT_FROZEN = 0x2
RESULT_SHORT = 0x4

IOC_MAGIC = ord("Y")

# struct shrinkmem_reclaim and struct shrinkmem_info, field by field ("=": no implicit padding;
# the header pads explicitly).
RECLAIM_FIELDS = ("pages_requested", "pages_reclaimed", "duration_ns", "flags", "result")
RECLAIM_STRUCT = struct.Struct("=QQQII")
INFO_FIELDS = ("abi_version", "method", "max_pages", "page_size", "reserved")
INFO_STRUCT = struct.Struct("=IIQII")

_U64_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class IocLayout:
    """An architecture's ioctl number encoding (include/uapi/asm-generic/ioctl.h and overrides)."""

    size_bits: int
    none: int
    write: int
    read: int

    def encode(self, direction: int, type_: int, nr: int, size: int) -> int:
        if not 0 <= size < (1 << self.size_bits):
            raise ValueError(f"ioctl argument size {size} does not fit in {self.size_bits} bits")
        # _IOC(dir, type, nr, size): nr in bits 0-7, type in 8-15, size from bit 16, dir above it.
        return (direction << (16 + self.size_bits)) | (size << 16) | (type_ << 8) | nr


# asm-generic: x86, arm, arm64, riscv, s390, loongarch, ...
GENERIC_IOC = IocLayout(size_bits=14, none=0, write=1, read=2)
# alpha, mips, powerpc, sparc: 13 size bits and a 3-bit direction.
OLD_IOC = IocLayout(size_bits=13, none=1, write=4, read=2)


def ioc_layout(machine: Optional[str] = None) -> IocLayout:
    """The ioctl encoding of an architecture (`platform.machine()` by default)."""
    name = (machine if machine is not None else platform.machine()).lower()
    if name.startswith(("alpha", "mips", "ppc", "powerpc", "sparc")):
        return OLD_IOC
    return GENERIC_IOC


def ioctl_numbers(machine: Optional[str] = None) -> dict[str, int]:
    """SHRINKMEM_IOC_RECLAIM (_IOWR) and SHRINKMEM_IOC_INFO (_IOR) for an architecture."""
    layout = ioc_layout(machine)
    return {
        "SHRINKMEM_IOC_RECLAIM": layout.encode(layout.read | layout.write, IOC_MAGIC, 0x01, RECLAIM_STRUCT.size),
        "SHRINKMEM_IOC_INFO": layout.encode(layout.read, IOC_MAGIC, 0x02, INFO_STRUCT.size),
    }


_NUMBERS = ioctl_numbers()
IOC_RECLAIM = _NUMBERS["SHRINKMEM_IOC_RECLAIM"]
IOC_INFO = _NUMBERS["SHRINKMEM_IOC_INFO"]


@dataclass(frozen=True)
class ReclaimResult:
    pages_requested: int
    pages_reclaimed: int
    duration_ns: int
    result: int = 0  # RESULT_* bits: why the request ended early, 0 when it did not

    @property
    def interrupted(self) -> bool:
        """A fatal signal stopped the request part-way; pages_reclaimed is what it did until then."""
        return bool(self.result & RESULT_INTERRUPTED)

    @property
    def frozen(self) -> bool:
        """The system began freezing tasks (suspend, hibernation) and the request stopped part-way."""
        return bool(self.result & RESULT_FROZEN)


@dataclass(frozen=True)
class ModuleInfo:
    abi_version: int
    method: str  # "export" or "kprobe" (or "unknown(N)" from a newer module)
    max_pages: int = 0
    page_size: int = 0


def _errno_text(error: OSError) -> str:
    code = error.errno
    if code is None:
        return str(error)
    name = errno.errorcode.get(code, f"errno {code}")
    return f"{name} ({os.strerror(code)})"


class ShrinkMem:
    """An open /dev/shrinkmem. Opening needs read-write access to the node; requests need CAP_SYS_ADMIN.

    Opening asks the module its ABI version (SHRINKMEM_IOC_INFO) and refuses a module
    that speaks another one, with an ActionError naming both versions.
    """

    def __init__(self, path: Union[str, Path] = DEVICE, *, check_abi: bool = True) -> None:
        self.path = str(path)
        self._fd: Optional[int] = None
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
                raise MissingInputError(
                    self.path, f"cannot open: {_errno_text(error)}; is the shrinkmem module loaded?"
                ) from None
            raise ActionError(f"{self.path}: cannot open: {_errno_text(error)}") from None
        if check_abi:
            try:
                self._check_abi()
            except BaseException:
                self.close()
                raise

    def _check_abi(self) -> None:
        buffer = bytearray(INFO_STRUCT.size)
        try:
            fcntl.ioctl(self._fileno(), IOC_INFO, buffer, True)
        except OSError as error:
            raise ActionError(
                f"{self.path}: cannot ask the shrinkmem module its ABI version (SHRINKMEM_IOC_INFO: "
                f"{_errno_text(error)}); this shrinkd needs ABI version {ABI_VERSION}"
            ) from None
        version = INFO_STRUCT.unpack(buffer)[0]
        if version != ABI_VERSION:
            raise ActionError(
                f"{self.path}: the loaded shrinkmem module speaks ABI version {version}, this shrinkd needs "
                f"version {ABI_VERSION}: load the module that came with this shrinkd"
            )

    def _fileno(self) -> int:
        if self._fd is None:
            raise ActionError(f"{self.path}: device is closed")
        return self._fd

    def reclaim(self, pages: int) -> ReclaimResult:
        """Reclaim up to `pages` pages (SHRINKMEM_IOC_RECLAIM); blocks until the kernel is done.

        A fatal signal stops the request between chunks: the result then has
        `interrupted` set and counts what was reclaimed until then. A handled signal
        (the daemon's SIGTERM) does not: its handler runs when the request ends.
        """
        if isinstance(pages, bool) or not isinstance(pages, int) or not 0 <= pages <= _U64_MAX:
            raise ValueError(f"pages must be an integer from 0 to 2**64-1, got {pages!r}")
        buffer = bytearray(RECLAIM_STRUCT.pack(pages, 0, 0, 0, 0))
        try:
            fcntl.ioctl(self._fileno(), IOC_RECLAIM, buffer, True)
        except OSError as error:
            raise ActionError(
                f"{self.path}: SHRINKMEM_IOC_RECLAIM of {pages} pages failed: {_errno_text(error)}"
            ) from None
        requested, reclaimed, duration_ns, _flags, result = RECLAIM_STRUCT.unpack(buffer)
        return ReclaimResult(requested, reclaimed, duration_ns, result)

    def info(self) -> ModuleInfo:
        """The module's ABI version, how it reaches shrink_all_memory(), its limit and page size."""
        buffer = bytearray(INFO_STRUCT.size)
        try:
            fcntl.ioctl(self._fileno(), IOC_INFO, buffer, True)
        except OSError as error:
            raise ActionError(f"{self.path}: SHRINKMEM_IOC_INFO failed: {_errno_text(error)}") from None
        abi_version, method, max_pages, page_size, _reserved = INFO_STRUCT.unpack(buffer)
        return ModuleInfo(abi_version, METHOD_NAMES.get(method, f"unknown({method})"), max_pages, page_size)

    def summary(self) -> dict[str, str]:
        """The module's read() summary as key -> value (calls, pages_reclaimed, last_result, ...)."""
        try:
            text = os.pread(self._fileno(), 4096, 0).decode("ascii", "replace")
        except OSError as error:
            raise ActionError(f"{self.path}: read failed: {_errno_text(error)}") from None
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        return fields

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> ShrinkMem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def available(path: Union[str, Path] = DEVICE) -> bool:
    """True when the device node exists and this process may open it read-write."""
    return os.path.exists(path) and os.access(path, os.R_OK | os.W_OK)
