"""Reclaim through cgroup v2 memory.reclaim on the root cgroup (Linux 5.19 or later)."""

from __future__ import annotations

import os
import time

from ..procfs import Partial, ProcFS, Tunables
from .result import Result
from .spec import RECLAIM, Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Mapping, Optional

# Where the cgroup v2 root is mounted: alone (the unified layout) or beside
# v1 hierarchies (the hybrid layout).
_ROOTS = ("fs/cgroup", "fs/cgroup/unified")


def find(procfs: ProcFS) -> Optional[str]:
    """The root cgroup's memory.reclaim, or None (no cgroup v2, a kernel before 5.19, or memory on v1)."""
    for root in _ROOTS:
        path = os.path.join(procfs.sys(root), "memory.reclaim")
        if os.path.exists(path):
            return path
    return None


class MemoryReclaim:
    name = "memory_reclaim"
    sized = True  # takes an amount: asked for in parts (stepped.py)

    def __init__(self, procfs: ProcFS, tunables: Tunables) -> None:
        self.procfs = procfs
        self.tunables = tunables
        self.path = find(procfs)

    def files(self) -> List[str]:
        return [self.path] if self.path is not None else []

    def available(self, node: Optional[int] = None) -> bool:
        return self.path is not None

    def describe(self) -> str:
        return f"memory_reclaim ({self.path})"

    def run(self, size: int, node: Optional[int]) -> Result:
        """Reclaim `size` bytes system-wide (memory.reclaim has no node argument)."""
        assert self.path is not None
        started = time.monotonic_ns()
        partial = False
        try:
            self.tunables.write(self.path, str(size))
        except Partial:
            partial = True
        return Result(backend=self.name, duration_ns=time.monotonic_ns() - started, requested=size, partial=partial)


def _make(procfs: ProcFS, tunables: Tunables, options: Mapping[str, Any], page_size: int) -> MemoryReclaim:
    return MemoryReclaim(procfs, tunables)


SPEC = Spec(
    "memory_reclaim",
    RECLAIM,
    "cgroup v2 reclaim",
    "no memory.reclaim (cgroup v2 not mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified, or a kernel before 5.19)",
    _make,
)
