"""What one action did."""

from __future__ import annotations

from ..record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple


class Result(Record):
    __slots__ = ("backend", "duration_ns", "failures", "pages_reclaimed", "partial", "requested")

    def __init__(
        self,
        backend: str,
        duration_ns: int,
        requested: int = 0,
        pages_reclaimed: Optional[int] = None,
        partial: bool = False,
        failures: Tuple[str, ...] = (),
    ) -> None:
        self.backend = backend  # the control file or device used, e.g. "node0/compact", "shrinkmem"
        self.duration_ns = duration_ns
        self.requested = requested  # bytes asked for (reclaim)
        self.pages_reclaimed = pages_reclaimed  # as the backend reports it (shrinkmem), else None
        self.partial = partial  # the kernel said it could not reclaim all it was asked
        self.failures = failures  # backends tried before this one, and why they failed
