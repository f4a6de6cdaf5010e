"""What a reclaim freed: one measure for the daemon's `reclaimed` events and `shrinkd reclaim`. Pure.

A backend that counts its own pages (the shrinkmem module) is believed; a reclaim through
the kernel's reclaim paths (memory.reclaim, per-node reclaim) is counted by /proc/vmstat's
pgsteal_anon + pgsteal_file; drop_caches frees clean caches without going through reclaim
(pgsteal does not move), so what it freed is the growth of the zones' free pages.
"""

from __future__ import annotations

from .actions.result import pages_reclaimed
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from .actions.result import Result
    from .view import Observation

# Backends whose effect is not counted by pgsteal: they free pages without reclaiming them.
UNCOUNTED = frozenset({"drop_caches"})
ORIGINS = {
    "backend": "counted by the backend",
    "vmstat": "counted from /proc/vmstat pgsteal_*",
    "free_pages": "the growth of free pages",
}


class Effect(Record):
    __slots__ = ("free_gain", "origin", "pages")

    def __init__(self, pages: Optional[int], origin: Optional[str], free_gain: int) -> None:
        self.pages = pages  # pages freed, as `origin` counts them (None: unknown)
        self.origin = origin  # "backend", "vmstat", "free_pages" or None
        self.free_gain = free_gain  # growth of free pages over all zones (negative: they fell)

    def short_of(self, requested: int, page_size: int) -> bool:
        """True when fewer bytes than `requested` were freed (or how many is unknown)."""
        return self.pages is None or self.pages * page_size < requested


def free_gain(before: Observation, after: Observation) -> int:
    """Free pages after minus before, over the zones seen both times."""
    return sum(
        after.zones[key].free_pages - zone.free_pages for key, zone in before.zones.items() if key in after.zones
    )


def reclaim_effect(result: Optional[Result], before: Observation, after: Observation) -> Effect:
    gain = free_gain(before, after)
    if result is not None and result.backend in UNCOUNTED and result.pages_reclaimed is None:
        return Effect(max(gain, 0), "free_pages", gain)
    pages, origin = pages_reclaimed(result, before, after)
    return Effect(pages, origin, gain)
