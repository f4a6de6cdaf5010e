"""A fake kernel for the daemon's tests: /proc and /sys trees that answer writes.

/proc holds states captured from a Debian 6.1 kernel (tests/fixtures/kernels);
ScriptedKernel swaps in the next captured state when shrinkd writes a control
file, as compaction and reclaim would change the free lists.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from shrinkd.actions import Tunables
from shrinkd.procfs import ProcFS

REPO = Path(__file__).resolve().parent.parent
STATES = REPO / "tests" / "fixtures" / "kernels"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedKernel(Tunables):
    """Writes go to the fake tree; a write to a file named in `script` then installs the next /proc state,
    and one named in `steal` adds that many pages to /proc/vmstat's pgsteal_file, as reclaim counts them."""

    def __init__(self, proc: Path, script: Dict[str, List[str]], steal: Optional[Dict[str, int]] = None) -> None:
        self.proc = proc
        self.script = script
        self.steal = steal or {}
        self.writes: List[Tuple[str, str]] = []
        self.hook: Optional[Callable[[str], None]] = None

    def write(self, path: str, value: str) -> None:
        super().write(path, value)
        name = Path(path).name
        self.writes.append((name, value))
        if self.hook is not None:
            self.hook(name)
        states = self.script.get(name)
        if states:
            install(self.proc, states.pop(0))
        if name in self.steal:
            vmstat = self.proc / "vmstat"
            lines = vmstat.read_text().splitlines()
            for n, line in enumerate(lines):
                key, value = line.split()
                if key == "pgsteal_file":
                    lines[n] = f"{key} {int(value) + self.steal[name]}"
            vmstat.write_text("\n".join(lines) + "\n")


def install(proc: Path, state: str) -> None:
    """The free lists and zone counters of a captured state (vmstat and PSI stay: they are running totals)."""
    for name in ("buddyinfo", "zoneinfo"):
        shutil.copy(STATES / state / "proc" / name, proc / name)


def zoneinfo_free(state: str, zone: str = "DMA32") -> int:
    """`pages free` of a zone in a captured /proc/zoneinfo."""
    lines = (STATES / state / "proc" / "zoneinfo").read_text().splitlines()
    start = next(n for n, line in enumerate(lines) if line.split()[-1:] == [zone] and line.startswith("Node"))
    return next(int(line.split()[2]) for line in lines[start:] if line.split()[:2] == ["pages", "free"])


class Tree:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc = root / "proc"
        self.sys = root / "sys"
        shutil.copytree(STATES / "6.1-hog" / "proc", self.proc)
        (self.proc / "sys" / "vm").mkdir(parents=True)
        for name in ("compact_memory", "drop_caches"):
            (self.proc / "sys" / "vm" / name).write_text("")
        (self.proc / "sys" / "vm" / "vfs_cache_pressure").write_text("100\n")
        node = self.sys / "devices" / "system" / "node" / "node0"
        node.mkdir(parents=True)
        (node / "compact").write_text("")
        (self.sys / "fs" / "cgroup").mkdir(parents=True)
        (self.sys / "fs" / "cgroup" / "memory.reclaim").write_text("")
        self.procfs = ProcFS(self.proc, self.sys)

    def control(self, relative: str) -> str:
        return (self.root / relative).read_text()
