"""The one view of the zones: a Snapshot reduced to what decisions and status show.

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
    from typing import Dict, Optional, Tuple

    from .procfs import Snapshot


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
    """One poll's view: the zones by (node, zone name), the /proc/vmstat counters read, PSI avg10s."""

    __slots__ = ("psi_full", "psi_some", "vmstat", "zones")

    def __init__(
        self,
        zones: Dict[Tuple[int, str], ZoneView],
        vmstat: Dict[str, int],
        psi_some: Optional[float],
        psi_full: Optional[float],
    ) -> None:
        self.zones = zones
        self.vmstat = vmstat
        self.psi_some = psi_some
        self.psi_full = psi_full

    def psi(self, kind: str) -> Optional[float]:
        return self.psi_some if kind == "some" else self.psi_full


def observe(snapshot: Snapshot) -> Observation:
    """Reduce a Snapshot to the zone view and the counters (the only builder of ZoneView)."""
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
    )
