"""/proc/sys/vm/drop_caches: drops clean caches wholesale. A debugging tool: off unless enabled."""

from __future__ import annotations

import os
import time

from ..procfs import ProcFS, Tunables
from .result import Result
from .spec import RECLAIM, Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Mapping, Optional

MODES = {"pagecache": "1", "slab": "2", "both": "3"}


class DropCaches:
    name = "drop_caches"
    sized = False  # drops every clean cache at once: the amount cannot be chosen, nor capped

    def __init__(self, procfs: ProcFS, tunables: Tunables, what: str) -> None:
        self.tunables = tunables
        self.path = procfs.proc("sys/vm/drop_caches")
        self.mode = MODES[what]

    def files(self) -> List[str]:
        return [self.path] if os.path.exists(self.path) else []

    def available(self, node: Optional[int] = None) -> bool:
        return os.path.exists(self.path)

    def describe(self) -> str:
        return f"drop_caches ({self.mode})"

    def run(self, size: int, node: Optional[int]) -> Result:
        """Drop every clean cache of the configured kind (the size cannot be chosen); sync first."""
        started = time.monotonic_ns()
        os.sync()  # only clean pages are dropped
        self.tunables.write(self.path, self.mode)
        return Result(backend=self.name, duration_ns=time.monotonic_ns() - started, requested=size)


def _make(procfs: ProcFS, tunables: Tunables, options: Mapping[str, Any], page_size: int) -> DropCaches:
    return DropCaches(procfs, tunables, options["what"])


SPEC = Spec(
    "drop_caches",
    RECLAIM,
    "dropping caches",
    "no /proc/sys/vm/drop_caches",
    _make,
    options={"what": ("pagecache", tuple(MODES))},
    enabled=False,
)
