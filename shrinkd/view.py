"""The one view of the zones (a Snapshot reduced to what decisions and status show), and what
successive views tell (Recent: rates, allocation failures, free blocks over time).

observe() is the only place a zone's free pages, watermarks and sizes are put
together, so `shrinkd status`, the policy, the events and the daemon all read
the same numbers. Pure: no I/O.

A zone's `free` is its /proc/buddyinfo row (free blocks per order), from which
every fragmentation index is computed; `free_pages` is the kernel's own free
page counter (NR_FREE_PAGES, /proc/zoneinfo's `pages free`), the number the
kernel compares with the watermarks, or the sum of the buddyinfo row when
/proc/zoneinfo cannot be read. The two differ by the pages moving on per-CPU
lists between the two reads (a few hundred at most on the captured kernels).
"""

from __future__ import annotations

from . import metrics
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Optional, Tuple

    from .parse import AllocationFailure, Snapshot


class ZoneView(Record):
    """One zone as shrinkd sees it. Sizes and watermarks are None without /proc/zoneinfo."""

    __slots__ = ("free", "free_pages", "managed", "marks", "node", "present", "spanned", "zone")

    def __init__(
        self,
        node: int,
        zone: str,
        free: Tuple[int, ...],
        free_pages: int,
        managed: Optional[int],
        marks: Optional[Dict[str, int]],
        present: Optional[int] = None,
        spanned: Optional[int] = None,
    ) -> None:
        self.node = node
        self.zone = zone
        self.free = free  # free blocks per order (/proc/buddyinfo)
        self.free_pages = free_pages  # NR_FREE_PAGES, else the buddyinfo sum
        self.managed = managed
        self.marks = marks  # {"min": pages, "low": pages, "high": pages}
        self.present = present
        self.spanned = spanned

    @property
    def buddy_pages(self) -> int:
        """The pages in the free blocks of `free`: what every fragmentation index divides by."""
        return metrics.free_pages(self.free)

    def headroom(self) -> Optional[Dict[str, int]]:
        """Free pages above each watermark (negative below it), as the kernel's watermark check sees them."""
        if self.marks is None:
            return None
        return {mark: self.free_pages - level for mark, level in self.marks.items()}


class Observation(Record):
    """One poll's view: the zones by (node, zone name), the /proc/vmstat counters read, PSI avg10s,
    and the allocation failures the kernel logged since the last poll."""

    __slots__ = ("failures", "psi_full", "psi_some", "vmstat", "zones")

    def __init__(
        self,
        zones: Dict[Tuple[int, str], ZoneView],
        vmstat: Dict[str, int],
        psi_some: Optional[float],
        psi_full: Optional[float],
        failures: Tuple[AllocationFailure, ...] = (),
    ) -> None:
        self.zones = zones
        self.vmstat = vmstat
        self.psi_some = psi_some
        self.psi_full = psi_full
        self.failures = failures

    def psi(self, kind: str) -> Optional[float]:
        return self.psi_some if kind == "some" else self.psi_full


def observe(snapshot: Snapshot, failures: Tuple[AllocationFailure, ...] = ()) -> Observation:
    """Reduce a Snapshot to the zone view and the counters (the only builder of ZoneView);
    `failures` are the allocation failures read from the kernel's log since the last poll."""
    info = {(z.node, z.zone): z for z in snapshot.zoneinfo or ()}
    zones: Dict[Tuple[int, str], ZoneView] = {}
    for row in snapshot.buddyinfo.zones:
        zi = info.get((row.node, row.zone))
        if zi is None:
            zones[(row.node, row.zone)] = ZoneView(
                row.node, row.zone, row.free, metrics.free_pages(row.free), None, None
            )
        else:
            zones[(row.node, row.zone)] = ZoneView(
                row.node,
                row.zone,
                row.free,
                zi.free,
                zi.managed,
                {"min": zi.min, "low": zi.low, "high": zi.high},
                zi.present,
                zi.spanned,
            )
    pressure = snapshot.pressure
    return Observation(
        zones=zones,
        vmstat=snapshot.vmstat or {},
        psi_some=pressure.some.avg10 if pressure is not None else None,
        psi_full=pressure.full.avg10 if pressure is not None and pressure.full is not None else None,
        failures=failures,
    )


ZONE_ORDER = ("DMA", "DMA32", "Normal", "HighMem", "Movable")


def highest_zone(allowed: str, zones: Iterable[str]) -> str:
    """Of the zones this kernel has, the highest a request allowed up to `allowed` can use
    (a GFP_HIGHUSER_MOVABLE request lands in Normal on a kernel with neither HighMem nor Movable)."""
    if allowed not in ZONE_ORDER:
        return allowed
    present = set(zones)
    for name in reversed(ZONE_ORDER[: ZONE_ORDER.index(allowed) + 1]):
        if name in present:
            return name
    return allowed


class Failure(Record):
    """An allocation failure the kernel reported, as the policy saw it: in its log (`order`, `mode`,
    `zone`, `process`) or as the growth of a /proc/vmstat counter (`counter`, `count`)."""

    __slots__ = ("count", "counter", "mode", "order", "process", "seen", "zone")

    def __init__(
        self,
        seen: float,
        count: int = 1,
        counter: str = "",
        order: Optional[int] = None,
        mode: str = "",
        zone: str = "",
        process: str = "",
    ) -> None:
        self.seen = seen  # the policy's clock when it saw it
        self.count = count
        self.counter = counter
        self.order = order
        self.mode = mode
        self.zone = zone
        self.process = process


class Recent:
    """What successive observations tell, kept by the policy and read by the conditions:
    counter rates, the allocation failures seen lately, and each zone's free blocks over time."""

    __slots__ = ("failures", "now", "rates", "samples")

    SAMPLES = 12  # per zone: enough for a trend over several polls, little memory

    def __init__(self) -> None:
        self.now = 0.0
        self.rates: Dict[str, float] = {}  # per second, over the last interval the counters were read
        self.failures: List[Failure] = []
        self.samples: Dict[Tuple[int, str], List[Tuple[float, Tuple[int, ...]]]] = {}

    def sample(self, obs: Observation, now: float) -> None:
        self.now = now
        for key, zone in obs.zones.items():
            series = self.samples.setdefault(key, [])
            series.append((now, zone.free))
            if len(series) > self.SAMPLES:
                del series[0]
        for key in [key for key in self.samples if key not in obs.zones]:
            del self.samples[key]

    def failures_since(self, since: float) -> List[Failure]:
        return [failure for failure in self.failures if failure.seen >= since]

    def forget_failures(self, before: float) -> None:
        self.failures = [failure for failure in self.failures if failure.seen >= before]
