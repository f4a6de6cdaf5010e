"""The shrinkmem module under a long loop of requests, reads and ioctls in a booted kernel
(tests/kmodsoak.py; bench/kmod_soak.py runs a longer one): documented outcomes only, its
counters adding up, no reference or slab object left behind, rmmod clean, a clean kernel log.

The kernel is Debian's 6.1, or with SHRINKD_TEST_KERNELS=1 the test kernel with lockdep and
KASAN (tests/testkernels.py kcfi-debug-export), whose reports the kernel-log filter catches;
SHRINKD_SOAK_KERNEL names another.
"""

from __future__ import annotations

from typing import Any, Dict

import pytest

from tests import kmodsoak, vm

pytestmark = pytest.mark.vm

ITERATIONS = 240  # about half of them reclaim requests; each takes up to a second or two under emulation and KASAN


def test_a_long_loop_leaves_the_module_as_it_found_it() -> None:
    reason = vm.available()
    if reason is not None:
        pytest.skip(reason)
    results, _ = kmodsoak.run(ITERATIONS, warm_up=100, timeout=2400)
    assert kmodsoak.problems(results) == [], kmodsoak.summary_table(results) if "at_end" in results else results
    outcomes: Dict[str, Dict[str, Any]] = results["outcomes"]
    # The loop did what it is for: requests of both kinds, reads, refusals and the concurrent process.
    for operation in ("ioctl_reclaim", "text_write", "info_and_read", "bad_write", "bad_ioctl", "concurrent_child"):
        assert sum(outcomes.get(operation, {}).values()) >= 3, (operation, outcomes)
    assert int(results["summary_at_end"]["pages_reclaimed"]) > 0


def test_the_judge_sees_a_leak_and_a_warning() -> None:
    """problems() is not blind: a cache that grew with the requests and a WARNING line both count."""
    slab = {"kmalloc-64": [1000, 1024, 64]}
    module = ["shrinkmem", "16384", "0", "-", "Live", "0x0"]
    clean: Dict[str, Any] = {
        "unexpected": [],
        "summary_loaded": {"calls": "0"},
        "summary_at_end": {"calls": "10"},
        "requests": 10,
        "requests_in_soak": 150,
        "at_end": {"slab": slab, "module": module},
        "after_warm_up": {"slab": slab},
        "coresize_loaded": 16384,
        "coresize_at_end": 16384,
        "rmmod": [0, ""],
        "kernel_log": ["shrinkmem: requested 1 MB, reclaimed 256 pages in 900 us"],
    }
    assert kmodsoak.problems(clean) == []
    # One object kept per request: 150 more, still there after rmmod.
    grown = {"kmalloc-64": [1150, 1152, 64]}
    leaky = dict(clean, at_end={"slab": grown, "module": module}, after_rmmod={"slab": grown})
    assert kmodsoak.problems(leaky) == ["slab cache kmalloc-64: 1000 -> 1150 objects"]
    # The kernel's churn (KASAN's quarantine, the block layer) up at the end and back after rmmod.
    churn = dict(clean, at_end={"slab": grown, "module": module}, after_rmmod={"slab": slab})
    assert kmodsoak.problems(churn) == []
    # A cache that was higher before the module was loaded than at the end.
    busy = dict(leaky, before_load={"slab": {"kmalloc-64": [1200, 1280, 64]}})
    assert kmodsoak.problems(busy) == []
    # The guest's processes mapped more (anon_vma in a CI run): not the module's.
    mapped = {"anon_vma": [351, 380, 104]}
    processes = dict(clean, at_end={"slab": mapped, "module": module}, after_rmmod={"slab": mapped})
    assert kmodsoak.problems(dict(processes, after_warm_up={"slab": {"anon_vma": [240, 260, 104]}})) == []
    warned = dict(clean, kernel_log=["WARNING: CPU: 0 PID: 1 at mm/vmscan.c:1 shrink_all_memory"])
    assert kmodsoak.problems(warned) == ["kernel log: WARNING: CPU: 0 PID: 1 at mm/vmscan.c:1 shrink_all_memory"]
