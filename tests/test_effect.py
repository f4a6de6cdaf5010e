"""What a reclaim freed (shrinkd.effect), measured on states captured from a real kernel."""

from __future__ import annotations

from pathlib import Path

from shrinkd.actions.result import Result
from shrinkd.effect import reclaim_effect
from shrinkd.procfs import ProcFS, Reader
from shrinkd.view import Observation, observe

from .fakekernel import STATES, zoneinfo_free

MB = 1 << 20


def observed(state: str, steal: int = 0) -> Observation:
    procfs = ProcFS(STATES / state / "proc", Path("/nonexistent"))
    with Reader(procfs) as reader:
        obs = observe(reader.snapshot(keys=["pgsteal_anon", "pgsteal_file"]))
    return obs.replace(vmstat={**obs.vmstat, "pgsteal_file": obs.vmstat["pgsteal_file"] + steal})


def test_drop_caches_is_measured_by_the_free_pages_it_gave_back() -> None:
    # drop_caches does not go through reclaim: pgsteal stays, free memory grows (hog -> idle).
    before, after = observed("6.1-hog"), observed("6.1-idle")
    effect = reclaim_effect(Result("drop_caches", 1, requested=8 * MB), before, after)
    gain = sum(after.zones[k].free_pages - z.free_pages for k, z in before.zones.items())
    assert gain >= zoneinfo_free("6.1-idle") - zoneinfo_free("6.1-hog") > 0
    assert (effect.pages, effect.origin, effect.free_gain) == (gain, "free_pages", gain)
    assert not effect.short_of(8 * MB, 4096)
    assert effect.short_of((gain + 1) * 4096, 4096)


def test_kernel_reclaim_is_counted_by_pgsteal_and_a_backend_count_is_believed() -> None:
    before, after = observed("6.1-hog"), observed("6.1-idle", steal=1000)
    by_vmstat = reclaim_effect(Result("memory_reclaim", 1, requested=8 * MB), before, after)
    assert (by_vmstat.pages, by_vmstat.origin) == (1000, "vmstat")
    assert by_vmstat.short_of(8 * MB, 4096) and not by_vmstat.short_of(1000 * 4096, 4096)
    own = reclaim_effect(Result("shrinkmem", 1, requested=8 * MB, pages_reclaimed=2048), before, after)
    assert (own.pages, own.origin) == (2048, "backend") and not own.short_of(8 * MB, 4096)
    assert reclaim_effect(None, before, after).short_of(1, 4096)  # unknown is short
