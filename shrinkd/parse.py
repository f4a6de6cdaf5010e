"""Pure parsers: the text of a /proc file in, typed values out.

Nothing here opens a file. Each parser takes the text and the name to use in
error messages (the path it was read from), and raises InputError naming that
file, the line and what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Tuple

from .errors import InputError

_ZONE_HEADER = re.compile(r"^Node\s+(\d+),\s*zone\s+(\S+)(.*)$")


@dataclass(frozen=True)
class ZoneFree:
    """One /proc/buddyinfo line: free blocks per order in one zone."""

    node: int
    zone: str
    free: Tuple[int, ...]


@dataclass(frozen=True)
class BuddyInfo:
    zones: Tuple[ZoneFree, ...]

    @property
    def orders(self) -> int:
        """Number of page orders the kernel reports (11, 12, 14, ...)."""
        return len(self.zones[0].free)


@dataclass(frozen=True)
class ZoneInfo:
    """The fields shrinkd uses from one zone block of /proc/zoneinfo (pages)."""

    node: int
    zone: str
    free: int
    min: int
    low: int
    high: int
    spanned: int
    present: int
    managed: int


@dataclass(frozen=True)
class PsiLine:
    avg10: float
    avg60: float
    avg300: float
    total: int


@dataclass(frozen=True)
class Pressure:
    """/proc/pressure/memory. `full` is None when the kernel has no such line."""

    some: PsiLine
    full: Optional[PsiLine]


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
        match = _ZONE_HEADER.match(line)
        if match is None:
            raise InputError(source, number, f"expected 'Node N, zone NAME counts...', got {line.strip()[:60]!r}")
        node, zone, rest = int(match.group(1)), match.group(2), match.group(3).split()
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
        match = _ZONE_HEADER.match(line)
        if match is not None:
            finish()
            current = (int(match.group(1)), match.group(2), number)
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


def parse_vmstat(text: str, source: str = "/proc/vmstat") -> Dict[str, int]:
    """Parse /proc/vmstat into a dict; every key is kept, known or not."""
    return _key_value_file(text, source, None)


def parse_meminfo(text: str, source: str = "/proc/meminfo") -> Dict[str, int]:
    """Parse /proc/meminfo; values are as printed (kB for most, counts for HugePages_*)."""
    return _key_value_file(text, source, ":")


def _psi_line(tokens: list[str], source: str, number: int) -> PsiLine:
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
