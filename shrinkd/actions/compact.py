"""Compaction: per node through /sys/devices/system/node/nodeN/compact, or
all nodes at once through /proc/sys/vm/compact_memory, after the per-CPU free lists
are brought down to their floor.

Per-CPU free lists: since Linux 6.7 each CPU's list of free pages grows with the frees it
sees (tuned by the kernel up to an eighth of the zone), and a page on it is not in the buddy
lists: it keeps its buddy from merging, and the compaction these files run (of the whole
zone, order -1) does not drain the lists. In a 6.12 guest with 16 KiB pages, 8,490 pages
(133 MB) sat on one CPU's list after a workload freed every other page of its memory, and
two compactions in a row left the unusable index at the huge-page order at 0.58. A write to
/proc/sys/vm/stat_refresh runs the kernel's per-CPU statistics refresh on every CPU, which
also lowers each list's limit by up to an eighth towards its floor and frees what is over it
(decay_pcp_high()); repeated until a write frees little, then compaction took the same state
to 0.18. On kernels without that decay (before 6.7) the first write frees next to nothing
and ends it. The pages freed are counted from /proc/zoneinfo's pageset `count:` lines.
"""

from __future__ import annotations

import os
import time

from ..errors import ActionError, ShrinkdError
from ..parse import parse_per_cpu_pages
from ..procfs import Partial, ProcFS, Tunables
from .result import Result

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple

# The per-CPU flush: at most this many writes to stat_refresh, and a write that frees fewer
# pages than FLUSH_ENOUGH ends it (the lists are at their floor, or the kernel has no decay).
FLUSH_WRITES = 32
FLUSH_ENOUGH = 64


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
        stat_refresh = procfs.proc("sys/vm/stat_refresh")
        self.stat_refresh: Optional[str] = stat_refresh if os.path.exists(stat_refresh) else None
        self.zoneinfo = procfs.proc("zoneinfo")

    def available(self) -> bool:
        return bool(self.nodes) or self.all_nodes is not None

    def describe(self) -> str:
        if self.nodes:
            return f"compact (nodes {','.join(map(str, sorted(self.nodes)))})"
        return "compact (compact_memory)"

    def per_cpu_pages(self) -> int:
        return parse_per_cpu_pages(ProcFS.read_text(self.zoneinfo), self.zoneinfo)

    def flush_per_cpu(self) -> Tuple[Optional[int], Optional[str]]:
        """Bring the per-CPU free lists down to their floor (see the module's docstring). Returns
        the pages freed from them, or None and why it could not be done (compaction runs anyway).
        A kernel without stat_refresh (built without SMP) has no per-CPU lists to flush: None, None."""
        if self.stat_refresh is None:
            return None, None
        try:
            before = left = self.per_cpu_pages()
            for _ in range(FLUSH_WRITES):
                self.tunables.write(self.stat_refresh, "1")
                now = self.per_cpu_pages()
                freed, left = left - now, now
                if freed < FLUSH_ENOUGH:
                    break
        except ShrinkdError as error:
            return None, f"per-CPU lists not flushed: {error}"
        except Partial:
            return None, f"per-CPU lists not flushed: {self.stat_refresh}: EAGAIN"
        return max(0, before - left), None

    def run(self, node: Optional[int]) -> Result:
        """Compact one node (its own file, else all nodes) or, for node None, all nodes, after
        flushing the per-CPU free lists."""
        started = time.monotonic_ns()
        per_cpu_freed, why = self.flush_per_cpu()
        notes = (why,) if why else ()
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
        return Result(
            backend=backend, duration_ns=time.monotonic_ns() - started, failures=notes, per_cpu_freed=per_cpu_freed
        )
