"""Pure parsers: the text of a /proc file in, typed values out.

Nothing here opens a file. Each parser takes the text and the name to use in
error messages (the path it was read from), and raises InputError naming that
file, the line and what is wrong.
"""

from __future__ import annotations

from .errors import InputError
from .record import Record

# The daemon keeps this module loaded: no typing, dataclasses or re at run time
# (each costs more resident memory than the parsers themselves; see record.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterator, List, Optional, Sequence, Tuple


class ZoneFree(Record):
    """One /proc/buddyinfo line: free blocks per order in one zone."""

    __slots__ = ("free", "node", "zone")

    def __init__(self, node: int, zone: str, free: Tuple[int, ...]) -> None:
        self.node = node
        self.zone = zone
        self.free = free


class BuddyInfo(Record):
    __slots__ = ("zones",)

    def __init__(self, zones: Tuple[ZoneFree, ...]) -> None:
        self.zones = zones

    @property
    def orders(self) -> int:
        """Number of page orders the kernel reports (11, 12, 14, ...)."""
        return len(self.zones[0].free)


class ZoneInfo(Record):
    """The fields shrinkd uses from one zone block of /proc/zoneinfo (pages)."""

    __slots__ = ("free", "high", "low", "managed", "min", "node", "present", "spanned", "zone")

    def __init__(
        self, node: int, zone: str, free: int, min: int, low: int, high: int, spanned: int, present: int, managed: int
    ) -> None:
        self.node = node
        self.zone = zone
        self.free = free
        self.min = min
        self.low = low
        self.high = high
        self.spanned = spanned
        self.present = present
        self.managed = managed


class PsiLine(Record):
    __slots__ = ("avg10", "avg60", "avg300", "total")

    def __init__(self, avg10: float, avg60: float, avg300: float, total: int) -> None:
        self.avg10 = avg10
        self.avg60 = avg60
        self.avg300 = avg300
        self.total = total


class Pressure(Record):
    """/proc/pressure/memory. `full` is None when the kernel has no such line."""

    __slots__ = ("full", "some")

    def __init__(self, some: PsiLine, full: Optional[PsiLine]) -> None:
        self.some = some
        self.full = full


class Snapshot(Record):
    """One reading of the kernel's memory state. Optional parts are None when absent or not read."""

    __slots__ = ("buddyinfo", "meminfo", "pressure", "vmstat", "zoneinfo")

    def __init__(
        self,
        buddyinfo: BuddyInfo,
        zoneinfo: Optional[Tuple[ZoneInfo, ...]],
        vmstat: Optional[Dict[str, int]],
        meminfo: Optional[Dict[str, int]],
        pressure: Optional[Pressure],
    ) -> None:
        self.buddyinfo = buddyinfo
        self.zoneinfo = zoneinfo
        self.vmstat = vmstat
        self.meminfo = meminfo
        self.pressure = pressure


def zone_header(line: str) -> Optional[Tuple[int, str, str]]:
    """Split `Node N, zone NAME rest...` into (N, NAME, rest); None for any other line."""
    head, comma, rest = line.partition(",")
    node = head.split()
    if not comma or len(node) != 2 or node[0] != "Node" or not _small_number(node[1]):
        return None
    zone = rest.split(None, 2)
    if len(zone) < 2 or zone[0] != "zone":
        return None
    return int(node[1]), zone[1], zone[2] if len(zone) > 2 else ""


def _small_number(token: str) -> bool:
    """ASCII digits, fewer than ten: str.isdigit() alone also takes what int() refuses (a
    superscript two; more than 4300 digits)."""
    return token.isascii() and token.isdigit() and len(token) < 10


def _lines(text: str) -> Iterator[Tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _int(token: str, source: str, line: int, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise InputError(source, line, f"{what}: expected an integer, got {token!r}") from None


def parse_buddyinfo(text: str, source: str = "/proc/buddyinfo") -> BuddyInfo:
    """Parse /proc/buddyinfo; every line must have the same number of orders."""
    zones = []
    orders: Optional[int] = None
    for number, line in _lines(text):
        header = zone_header(line)
        if header is None:
            raise InputError(source, number, f"expected 'Node N, zone NAME counts...', got {line.strip()[:60]!r}")
        node, zone, rest = header[0], header[1], header[2].split()
        if not rest:
            raise InputError(source, number, f"zone {zone}: no free-block counts (truncated line?)")
        free = tuple(_int(token, source, number, f"zone {zone}") for token in rest)
        if any(count < 0 for count in free):
            raise InputError(source, number, f"zone {zone}: negative free-block count")
        if orders is None:
            orders = len(free)
        elif len(free) != orders:
            raise InputError(source, number, f"zone {zone}: {len(free)} orders, earlier lines have {orders}")
        zones.append(ZoneFree(node, zone, free))
    if not zones:
        raise InputError(source, None, "no zones (empty or truncated file)")
    return BuddyInfo(tuple(zones))


_ZONEINFO_FIELDS = ("free", "min", "low", "high", "spanned", "present", "managed")


def parse_zoneinfo(text: str, source: str = "/proc/zoneinfo") -> Tuple[ZoneInfo, ...]:
    """Parse the per-zone page counts and watermarks of /proc/zoneinfo.

    Other lines (per-node stats, pagesets, counters) are skipped; only lines
    of exactly `key value` form with one of the wanted keys are read, so the
    pageset lines `high:  42` do not count as the watermark.
    """
    zones = []
    current: Optional[Tuple[int, str, int]] = None
    values: Dict[str, int] = {}

    def finish() -> None:
        if current is None:
            return
        node, zone, header_line = current
        missing = [field for field in _ZONEINFO_FIELDS if field not in values]
        if missing:
            raise InputError(source, header_line, f"zone {zone}: no {', '.join(missing)} (truncated block?)")
        zones.append(ZoneInfo(node, zone, **{field: values[field] for field in _ZONEINFO_FIELDS}))

    for number, line in _lines(text):
        header = zone_header(line)
        if header is not None:
            finish()
            current = (header[0], header[1], number)
            values = {}
            continue
        if current is None:
            raise InputError(source, number, f"expected 'Node N, zone NAME', got {line.strip()[:60]!r}")
        tokens = line.split()
        if tokens[:2] == ["pages", "free"] and len(tokens) == 3:
            key, value = "free", tokens[2]
        elif len(tokens) == 2 and tokens[0] in _ZONEINFO_FIELDS and tokens[0] != "free":
            key, value = tokens
        else:
            continue
        if key in values:
            # Keys repeat only inside the per-node stats block; the first is the zone's.
            continue
        values[key] = _int(value, source, number, f"zone {current[1]} {key}")
    finish()
    if not zones:
        raise InputError(source, None, "no zones (empty or truncated file)")
    return tuple(zones)


def _key_value_file(text: str, source: str, separator: Optional[str]) -> Dict[str, int]:
    values: Dict[str, int] = {}
    for number, line in _lines(text):
        if separator is not None:
            key, sep, rest = line.partition(separator)
            tokens = rest.split()
            if not sep or not tokens or len(tokens) > 2 or (len(tokens) == 2 and tokens[1] != "kB"):
                raise InputError(source, number, f"expected 'Key: value [kB]', got {line.strip()[:60]!r}")
            key = key.strip()
        else:
            tokens = line.split()
            if len(tokens) != 2:
                raise InputError(source, number, f"expected 'key value', got {line.strip()[:60]!r}")
            key, tokens = tokens[0], tokens[1:]
        values[key] = _int(tokens[0], source, number, key)
    if not values:
        raise InputError(source, None, "empty file")
    return values


def parse_vmstat(text: str, source: str = "/proc/vmstat", keys: Optional[Sequence[str]] = None) -> Dict[str, int]:
    """Parse /proc/vmstat: every counter, or only `keys` (those the kernel lacks are left out).

    A poll needs a dozen of /proc/vmstat's ~190 counters: finding those with
    str.find costs a small fraction of splitting every line, so with `keys`
    only the lines of those counters are read (and checked).
    """
    if keys is None:
        return _key_value_file(text, source, None)
    found: Dict[str, int] = {}
    for key in keys:
        at = text.find(key + " ")
        while at > 0 and text[at - 1] != "\n":
            at = text.find(key + " ", at + 1)
        if at < 0:
            continue
        end = text.find("\n", at)
        value = text[at + len(key) + 1 : end if end >= 0 else len(text)].strip()
        try:
            found[key] = int(value)
        except ValueError:
            line = text.count("\n", 0, at) + 1
            raise InputError(source, line, f"{key}: expected an integer, got {value[:20]!r}") from None
    return found


def parse_meminfo(text: str, source: str = "/proc/meminfo") -> Dict[str, int]:
    """Parse /proc/meminfo; values are as printed (kB for most, counts for HugePages_*)."""
    return _key_value_file(text, source, ":")


def parse_pageblock_order(text: str, source: str = "/proc/pagetypeinfo") -> int:
    """The page block order from the first line of /proc/pagetypeinfo (`Page block order: 9`)."""
    for number, line in _lines(text):
        key, sep, value = line.partition(":")
        if key.strip() == "Page block order" and sep:
            return _int(value.strip(), source, number, "Page block order")
        break
    raise InputError(source, 1, "expected 'Page block order: N' on the first line")


def _psi_line(tokens: List[str], source: str, number: int) -> PsiLine:
    fields: Dict[str, str] = {}
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep:
            raise InputError(source, number, f"{tokens[0]}: expected key=value, got {token!r}")
        fields[key] = value
    try:
        return PsiLine(float(fields["avg10"]), float(fields["avg60"]), float(fields["avg300"]), int(fields["total"]))
    except KeyError as missing:
        raise InputError(source, number, f"{tokens[0]}: no {missing.args[0]}=") from None
    except ValueError:
        raise InputError(source, number, f"{tokens[0]}: a value is not a number") from None


def parse_pressure(text: str, source: str = "/proc/pressure/memory") -> Pressure:
    """Parse a PSI file. Lines other than `some` and `full` are ignored."""
    some: Optional[PsiLine] = None
    full: Optional[PsiLine] = None
    for number, line in _lines(text):
        tokens = line.split()
        if tokens[0] == "some":
            some = _psi_line(tokens, source, number)
        elif tokens[0] == "full":
            full = _psi_line(tokens, source, number)
    if some is None:
        raise InputError(source, None, "no 'some' line")
    return Pressure(some, full)


class KmsgRecord(Record):
    """One /dev/kmsg record: `PRIO,SEQ,TS_USEC,FLAGS[,...];MESSAGE`, then ` KEY=value` lines."""

    __slots__ = ("level", "message", "seq", "ts_usec")

    def __init__(self, level: int, seq: int, ts_usec: int, message: str) -> None:
        self.level = level  # syslog level (the facility bits removed)
        self.seq = seq
        self.ts_usec = ts_usec  # microseconds since boot, the kernel's clock
        self.message = message


def parse_kmsg_record(data: bytes, source: str = "/dev/kmsg") -> KmsgRecord:
    """One record as read() from /dev/kmsg returns it (Documentation/ABI/testing/dev-kmsg)."""
    text = data.decode("utf-8", "replace")
    head, sep, rest = text.partition(";")
    fields = head.split(",")
    if not sep or len(fields) < 4:
        raise InputError(source, None, f"expected 'PRIO,SEQ,TS,FLAGS;MESSAGE', got {text[:60]!r}")
    try:
        prio, seq, ts_usec = int(fields[0]), int(fields[1]), int(fields[2])
    except ValueError:
        raise InputError(source, None, f"expected numbers before ';', got {head[:60]!r}") from None
    message = rest.split("\n", 1)[0]
    return KmsgRecord(prio & 7, seq, ts_usec, message)


class AllocationFailure(Record):
    """A `page allocation failure` the kernel reported (mm/page_alloc.c warn_alloc())."""

    __slots__ = ("mode", "order", "process", "ts_usec", "zone")

    def __init__(self, order: int, mode: str, zone: str, process: str, ts_usec: int) -> None:
        self.order = order
        self.mode = mode  # "0xcc0(GFP_KERNEL)"
        self.zone = zone  # the highest zone the request could use (from its GFP flags)
        self.process = process
        self.ts_usec = ts_usec


_FAILURE = "page allocation failure"


def allocation_failure(record: KmsgRecord) -> Optional[AllocationFailure]:
    """The failure a record reports, or None for any other message.

    The kernel prints `COMM: page allocation failure: order:N, mode:0xHEX(FLAGS), nodemask=...`
    (cpuset and mems_allowed follow; kernels before 4.9 wrote `failure. order:N, mode:0xHEX`
    without the flags); the GFP flags say which zones the request could use.
    """
    message = record.message
    at = message.find(_FAILURE)
    if at < 0:
        return None
    tail = message[at + len(_FAILURE) :]
    start = tail.find("order:")
    if start < 0 or start > 4:
        return None
    digits = tail[start + 6 :].split(",", 1)[0].strip()
    if not _small_number(digits):
        return None
    mode = ""
    start = tail.find("mode:")
    if start >= 0:
        mode = tail[start + 5 :].split(", ", 1)[0].split(",nodemask", 1)[0].strip()
    process = message[:at].rstrip(": ") if message[:at].endswith(": ") else ""
    return AllocationFailure(int(digits), mode, gfp_zone(mode), process, record.ts_usec)


def gfp_zone(mode: str) -> str:
    """The highest zone a request may use, as gfp_zone() picks it from the flags printed in `mode`
    (e.g. "0x100cca(GFP_HIGHUSER_MOVABLE)" -> "Movable"). Kernels without HighMem or Movable
    zones fall back to Normal, which the caller learns from /proc/buddyinfo."""
    flags = mode.partition("(")[2].rstrip(")").split("|")
    if "__GFP_DMA" in flags or "GFP_DMA" in flags:
        return "DMA"
    if "__GFP_DMA32" in flags or "GFP_DMA32" in flags:
        return "DMA32"
    if "GFP_HIGHUSER_MOVABLE" in flags or ("__GFP_HIGHMEM" in flags and "__GFP_MOVABLE" in flags):
        return "Movable"
    if "GFP_HIGHUSER" in flags or "__GFP_HIGHMEM" in flags:
        return "HighMem"
    return "Normal"
