"""Per-node reclaim: /sys/devices/system/node/nodeN/reclaim (same syntax as memory.reclaim; merged in 2025)."""

from __future__ import annotations

import time

from ..procfs import Partial, ProcFS, Tunables
from .compact import node_files
from .result import Result
from .spec import RECLAIM, Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Mapping, Optional


class NodeReclaim:
    name = "node_reclaim"
    sized = True  # takes an amount: asked for in parts (stepped.py)

    def __init__(self, procfs: ProcFS, tunables: Tunables) -> None:
        self.tunables = tunables
        self.nodes = node_files(procfs, "reclaim")

    def files(self) -> List[str]:
        return [path for _, path in sorted(self.nodes.items())]

    def available(self, node: Optional[int] = None) -> bool:
        return node in self.nodes if node is not None else bool(self.nodes)

    def describe(self) -> str:
        return f"node_reclaim (nodes {','.join(map(str, sorted(self.nodes)))})"

    def run(self, size: int, node: Optional[int]) -> Result:
        """Reclaim `size` bytes from one node; for node None, the size split evenly over every node."""
        started = time.monotonic_ns()
        partial = False
        targets = [node] if node is not None else sorted(self.nodes)
        share = max(size // len(targets), 1)
        for target in targets:
            try:
                self.tunables.write(self.nodes[target], str(share))
            except Partial:
                partial = True
        return Result(
            backend=f"node{node}/reclaim" if node is not None else "node*/reclaim",
            duration_ns=time.monotonic_ns() - started,
            requested=size,
            partial=partial,
        )


def _make(procfs: ProcFS, tunables: Tunables, options: Mapping[str, Any], page_size: int) -> NodeReclaim:
    return NodeReclaim(procfs, tunables)


SPEC = Spec("node_reclaim", RECLAIM, "per-node reclaim", "no nodeN/reclaim files (not in this kernel)", _make)
