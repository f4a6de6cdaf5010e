"""Backends: the ways shrinkd acts on the kernel, one module each, each declaring itself (its
SPEC: name, kind, options, what it needs) to the registry (registry.py), the one list of them:

- compact: per-node compaction (nodeN/compact) or /proc/sys/vm/compact_memory
- shrinkmem: the shrinkmem module's ioctl (shrink_all_memory())
- memory_reclaim: cgroup v2 memory.reclaim on the root cgroup
- node_reclaim: /sys/devices/system/node/nodeN/reclaim
- drop_caches: /proc/sys/vm/drop_caches (off unless enabled)

A reclaim that follows a compaction can run with vm.vfs_cache_pressure raised (cache_pressure.py).
A reclaim is asked for in parts and measured as it goes, so that it takes no more than its
size, whatever the backend does with a request (stepped.py).

Backends is the set detected now; detect() runs again when devices change
or the configuration is reloaded. Every write goes through procfs.Tunables.
What one action did is a Result (result.py).

The code that only acting runs (stepped.py, cache_pressure.py) is imported on the first reclaim
(or at start, when a killed run left vfs_cache_pressure raised): the idle daemon never holds it.
"""

from __future__ import annotations

import os

from ..errors import ActionError, MissingInputError, ShrinkdError
from ..parse import parse_vmstat
from ..procfs import ProcFS, Tunables
from . import registry
from .result import PGSTEAL, Result, pages_reclaimed
from .spec import COMPACT, RECLAIM

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, FrozenSet, List, Optional, Protocol

    from ..config import Config, Current
    from .cache_pressure import CachePressure

    class Backend(Protocol):
        name: str
        sized: bool

        def files(self) -> List[str]: ...

        def available(self, node: Optional[int] = None) -> bool: ...

        def describe(self) -> str: ...

    class ReclaimBackend(Backend, Protocol):
        def run(self, size: int, node: Optional[int]) -> Result: ...

    class CompactBackend(Backend, Protocol):
        def run(self, node: Optional[int]) -> Result: ...


__all__ = ["Backends", "Result", "Tunables", "pages_reclaimed", "registry"]

# vm.vfs_cache_pressure's value before a reclaim raised it, kept in the runtime directory meanwhile
SAVED_CACHE_PRESSURE = "vfs_cache_pressure.saved"


class Backends:
    def __init__(
        self,
        procfs: ProcFS,
        current: Current,
        tunables: Optional[Tunables] = None,
        page_size: int = 4096,
        keep_dir: Optional[str] = None,
    ) -> None:
        self.procfs = procfs
        self.current = current
        self.tunables = tunables or Tunables()
        self.page_size = page_size
        # vm.vfs_cache_pressure raised for a reclaim; its value before is kept in `keep_dir` meanwhile
        self.saved_cache_pressure = os.path.join(keep_dir, SAVED_CACHE_PRESSURE) if keep_dir else None
        self._cache_pressure: Optional[CachePressure] = None
        self.compactor: Optional[CompactBackend] = None
        self.reclaimers: List[ReclaimBackend] = []
        self.detect()

    @property
    def config(self) -> Config:
        return self.current.config

    @property
    def cache_pressure(self) -> CachePressure:
        """vm.vfs_cache_pressure's keeper, made (and its module imported) on first use."""
        if self._cache_pressure is None:
            from .cache_pressure import CachePressure

            self._cache_pressure = CachePressure(self.procfs, self.tunables, self.saved_cache_pressure)
        return self._cache_pressure

    def restore_cache_pressure(self) -> Optional[int]:
        """The vfs_cache_pressure a run that ended during a reclaim left saved, put back (CachePressure.
        restore_left); None, without loading the keeper's code, when no value was left."""
        if self.saved_cache_pressure is None or not os.path.lexists(self.saved_cache_pressure):
            return None
        return self.cache_pressure.restore_left()

    def detect(self) -> None:
        """Find what works on this kernel now, honouring the configuration's enabled list and preference
        (the backends are the registry's: a name that is no backend's is an error)."""
        config = self.config
        compactors = [spec for spec in registry.SPECS if spec.kind == COMPACT and config.backend_enabled(spec.name)]
        self.compactor = next((b for b in map(self._make, compactors) if b.available()), None)
        candidates: List[ReclaimBackend] = []
        for name in config.reclaim.prefer:
            if not config.backend_enabled(name):
                continue
            backend = self._make(registry.get(name))
            if backend.available():
                candidates.append(backend)
        self.reclaimers = candidates

    def _make(self, spec: registry.Spec) -> Any:
        return spec.make(self.procfs, self.tunables, self.config.backend_options(spec.name), self.page_size)

    def names(self) -> List[str]:
        return (["compact"] if self.compactor else []) + [backend.name for backend in self.reclaimers]

    def describe(self) -> str:
        parts = ([self.compactor.describe()] if self.compactor else []) + [b.describe() for b in self.reclaimers]
        return ", ".join(parts) if parts else "none"

    def kinds(self) -> FrozenSet[str]:
        """The kinds of action possible now: "compact" and/or "reclaim"."""
        kinds = set()
        if self.compactor is not None:
            kinds.add(COMPACT)
        if self.reclaimers:
            kinds.add(RECLAIM)
        return frozenset(kinds)

    def compact(self, node: Optional[int]) -> Result:
        if self.compactor is None:
            raise ActionError("compaction is not available")
        return self.compactor.run(node)

    def reclaim(
        self, size: int, node: Optional[int], backend: Optional[str] = None, cache_pressure: Optional[int] = None
    ) -> Result:
        """Reclaim at most `size` bytes (asked for in measured parts: stepped.py) with the first backend that
        works (or the one named), for `node` where it can aim;
        with `cache_pressure`, vm.vfs_cache_pressure is at least that meanwhile (dentries and inodes first)."""
        candidates = [b for b in self.reclaimers if backend is None or b.name == backend]
        if backend is not None and not candidates:
            raise ActionError(
                f"reclaim backend {backend} is not available (available: {', '.join(b.name for b in self.reclaimers) or 'none'})"
            )
        if self.config.reclaim.sync:
            os.sync()
        if cache_pressure is None:
            return self._reclaim(candidates, size, node, [])
        notes: List[str] = []
        with self.cache_pressure.raised(cache_pressure, notes) as raised:
            result = self._reclaim(candidates, size, node, notes)
        return result.replace(cache_pressure=cache_pressure) if raised else result

    def _reclaim(self, candidates: List[ReclaimBackend], size: int, node: Optional[int], notes: List[str]) -> Result:
        from .stepped import reclaim_in_steps

        failures: List[str] = list(notes)
        for candidate in candidates:
            if node is not None and not candidate.available(node):
                failures.append(f"{candidate.name}: not available for node {node}")
                continue
            try:
                result = reclaim_in_steps(candidate, size, node, self.pgsteal, self.page_size)
            except (ActionError, MissingInputError) as error:
                failures.append(f"{candidate.name}: {error}")
                continue
            return result.replace(failures=(*failures, *result.failures)) if failures else result
        raise ActionError("; ".join(failures) if failures else "no reclaim backend available")

    def pgsteal(self) -> Optional[int]:
        """The kernel's count of pages taken by reclaim (pgsteal_anon + pgsteal_file), None when unreadable."""
        try:
            counters = parse_vmstat(self.procfs.read_text(self.procfs.proc("vmstat")), keys=PGSTEAL)
        except ShrinkdError:
            return None
        return sum(counters[name] for name in PGSTEAL) if all(name in counters for name in PGSTEAL) else None
