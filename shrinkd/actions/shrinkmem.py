"""Reclaim through the shrinkmem module (/dev/shrinkmem): the kernel's shrink_all_memory()."""

from __future__ import annotations

import os
import time

from .result import Result
from .spec import RECLAIM, Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Mapping, Optional

    from ..procfs import ProcFS, Tunables


class ShrinkMemBackend:
    name = "shrinkmem"
    sized = True  # takes an amount: asked for in parts (stepped.py)

    def __init__(self, device: str, page_size: int) -> None:
        self.device = device
        self.page_size = page_size

    def files(self) -> List[str]:
        return [self.device] if os.path.exists(self.device) else []

    def available(self, node: Optional[int] = None) -> bool:
        if not os.path.exists(self.device):
            return False  # checked first: the client (fcntl, struct, platform) loads only once the module is there
        from .. import shrinkmem

        return shrinkmem.available(self.device)

    def describe(self) -> str:
        return f"shrinkmem ({self.device})"

    def run(self, size: int, node: Optional[int]) -> Result:
        """Reclaim `size` bytes; shrink_all_memory() works on the local node's zonelist, whatever `node` is."""
        from ..shrinkmem import ShrinkMem

        pages = max(-(-size // self.page_size), 1)
        started = time.monotonic_ns()
        with ShrinkMem(self.device) as device:
            result = device.reclaim(pages)
        return Result(
            backend=self.name,
            duration_ns=time.monotonic_ns() - started,
            requested=size,
            pages_reclaimed=result.pages_reclaimed,
        )


def _make(procfs: ProcFS, tunables: Tunables, options: Mapping[str, Any], page_size: int) -> ShrinkMemBackend:
    return ShrinkMemBackend(options["device"], page_size)


SPEC = Spec(
    "shrinkmem",
    RECLAIM,
    "the shrinkmem module",
    "no shrinkmem device (the module is not loaded)",
    _make,
    options={"device": ("/dev/shrinkmem", None)},
)
