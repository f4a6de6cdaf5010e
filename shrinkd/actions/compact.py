"""Compaction: per node through /sys/devices/system/node/nodeN/compact, or
all nodes at once through /proc/sys/vm/compact_memory."""

from __future__ import annotations

import os
import time

from ..errors import ActionError
from ..procfs import ProcFS, Tunables
from .result import Result
from .spec import COMPACT, Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Mapping, Optional


def node_files(procfs: ProcFS, name: str) -> Dict[int, str]:
    """/sys/devices/system/node/nodeN/<name> for every node that has it."""
    base = procfs.sys("devices/system/node")
    found: Dict[int, str] = {}
    try:
        entries = list(os.scandir(base))
    except OSError:
        return found
    for entry in entries:
        if entry.name.startswith("node") and entry.name[4:].isdigit():
            path = os.path.join(entry.path, name)
            if os.path.exists(path):
                found[int(entry.name[4:])] = path
    return found


class Compact:
    name = "compact"

    def __init__(self, procfs: ProcFS, tunables: Tunables) -> None:
        self.procfs = procfs
        self.tunables = tunables
        # The node files exist on kernels built with CONFIG_NUMA (Debian's are),
        # compact_memory with CONFIG_COMPACTION.
        self.nodes = node_files(procfs, "compact")
        all_nodes = procfs.proc("sys/vm/compact_memory")
        self.all_nodes: Optional[str] = all_nodes if os.path.exists(all_nodes) else None

    def files(self) -> List[str]:
        return [path for _, path in sorted(self.nodes.items())] + ([self.all_nodes] if self.all_nodes else [])

    def available(self, node: Optional[int] = None) -> bool:
        return bool(self.nodes) or self.all_nodes is not None

    def describe(self) -> str:
        if self.nodes:
            return f"compact (nodes {','.join(map(str, sorted(self.nodes)))})"
        return "compact (compact_memory)"

    def run(self, node: Optional[int]) -> Result:
        """Compact one node (its own file, else all nodes) or, for node None, all nodes."""
        started = time.monotonic_ns()
        if node is not None and node in self.nodes:
            self.tunables.write(self.nodes[node], "1")
            backend = f"node{node}/compact"
        elif self.all_nodes is not None:
            self.tunables.write(self.all_nodes, "1")
            backend = "compact_memory"
        elif self.nodes:
            for path in self.nodes.values():
                self.tunables.write(path, "1")
            backend = "node*/compact"
        else:
            raise ActionError("no compaction control file (neither node*/compact nor /proc/sys/vm/compact_memory)")
        return Result(backend=backend, duration_ns=time.monotonic_ns() - started)


def _make(procfs: ProcFS, tunables: Tunables, options: Mapping[str, Any], page_size: int) -> Compact:
    return Compact(procfs, tunables)


SPEC = Spec("compact", COMPACT, "compaction", "no compaction files (CONFIG_COMPACTION)", _make)
