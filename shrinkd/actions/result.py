"""What one action did, and how many pages a reclaim took."""

from __future__ import annotations

from ..record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple

    from ..view import Observation

# The kernel's count of pages taken by reclaim, both LRU types (/proc/vmstat).
PGSTEAL = ("pgsteal_anon", "pgsteal_file")


class Result(Record):
    __slots__ = (
        "backend",
        "cache_pressure",
        "duration_ns",
        "failures",
        "pages_reclaimed",
        "pages_source",
        "partial",
        "requested",
        "requests",
    )

    def __init__(
        self,
        backend: str,
        duration_ns: int,
        requested: int = 0,
        pages_reclaimed: Optional[int] = None,
        partial: bool = False,
        failures: Tuple[str, ...] = (),
        cache_pressure: Optional[int] = None,
        requests: int = 1,
        pages_source: Optional[str] = None,
    ) -> None:
        self.backend = backend  # the control file or device used, e.g. "node0/compact", "shrinkmem"
        self.duration_ns = duration_ns
        self.requested = requested  # bytes asked for (reclaim)
        self.pages_reclaimed = pages_reclaimed  # as measured (stepped.py) or the backend reports it, else None
        self.partial = partial  # the kernel said it could not reclaim all it was asked
        self.failures = failures  # backends tried before this one, and why they failed
        self.cache_pressure = cache_pressure  # vm.vfs_cache_pressure during the reclaim, when raised
        self.requests = requests  # writes to the backend: a reclaim is asked for in parts (stepped.py)
        self.pages_source = pages_source  # where pages_reclaimed comes from: "backend" (its count) or "vmstat"


def pages_reclaimed(
    result: Optional[Result], before: Observation, after: Observation
) -> Tuple[Optional[int], Optional[str]]:
    """Pages reclaimed and where the number comes from: as the reclaim measured it part by part
    (the backend's own count, "backend", or pgsteal's growth, "vmstat"), else the growth of
    /proc/vmstat's pgsteal_anon + pgsteal_file around it ("vmstat"), else (None, None)."""
    if result is None:
        return None, None
    if result.pages_reclaimed is not None:
        return result.pages_reclaimed, result.pages_source or "backend"
    if all(name in before.vmstat and name in after.vmstat for name in PGSTEAL):
        return sum(after.vmstat[n] - before.vmstat[n] for n in PGSTEAL), "vmstat"
    return None, None
