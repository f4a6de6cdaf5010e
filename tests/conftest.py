"""Settings for the whole suite."""

from __future__ import annotations

from typing import List

import pytest
from hypothesis import settings

# Property tests check behaviour, never wall-clock time: no per-example deadline (a loaded
# CI machine or a slow emulated guest must not turn a correct run into a failure).
settings.register_profile("shrinkd", deadline=None)
settings.load_profile("shrinkd")


# Files whose tests need the test kernels (tests/testkernels.py, SHRINKD_TEST_KERNELS=1): last.
NEEDS_TEST_KERNELS = ("test_kmod_vm.py", "test_kmod_soak_vm.py")
# The board sessions (tests/boards.py) serve both files: a target's tests in both are one
# group ("boards-<target>"), so one worker runs that target's session, and the two workers
# run different targets side by side.
BOARDS = ("test_boards_vm.py", "test_lifecycle_vm.py")
# What each guest group costs, in QEMU CPU seconds as measured in a full run on this kind of
# machine (a scheduling hint, nothing asserts it): the groups start longest first, so that
# the two workers finish at about the same time. A group not listed starts last.
GROUP_SECONDS = {
    "boards-x86_64-6.12": 1500,
    "boards-x86_64-6.1": 1400,
    "boards-armhf-lpae-6.1": 1100,
    "boards-arm64-6.1": 900,
    "test_defaults_vm": 815,
    "boards-arm64-16k-6.12": 730,
    "test_daemon_vm": 551,
    "test_unit_vm": 404,
    "test_defaults_unfixable_vm": 345,
    "test_kernel_exact_vm": 173,
    "test_kmod_vm": 314,
    "test_kmod_soak_vm": 269,
}


# tryfirst: pytest-xdist reads the xdist_group marks in its own hook of the same name, which
# must see the marks added here.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Order: tests that boot nothing, then the guest groups longest first, the module's guests last.

    scripts/test.sh runs pytest with two workers (pytest-xdist, --dist loadgroup): each file
    that boots a guest is one group, and each board target's session one group across the two
    board files, so a module's shared boot happens once, in one worker, and at most two guests
    run at a time, one per worker. A worker takes the next group when it is nearly done with
    its own, so the longest groups go first (GROUP_SECONDS). The order within each group, and
    so each module's fixtures, is kept.
    """

    def group(item: pytest.Item) -> str:
        if item.path.name in BOARDS:
            params = getattr(item, "callspec", None)
            target = params.params.get("board") if params is not None else None
            return f"boards-{target}" if target else "boards"
        return item.path.stem

    def rank(item: pytest.Item) -> tuple[int, int]:
        name = item.path.name
        if name in NEEDS_TEST_KERNELS:
            return (2, -GROUP_SECONDS.get(group(item), 0))
        if item.get_closest_marker("vm"):
            return (1, -GROUP_SECONDS.get(group(item), 0))
        return (0, 0)

    # Tests over the test kernels without SHRINKD_TEST_KERNELS=1 have an empty parameter set:
    # deselected (counted in the summary) rather than reported as skipped one by one.
    empty = [
        item
        for item in items
        if any(str(mark.kwargs.get("reason", "")).startswith("got empty parameter set") for mark in item.iter_markers("skip"))
    ]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]
    items.sort(key=rank)
    for item in items:
        if item.get_closest_marker("vm") or item.path.name in NEEDS_TEST_KERNELS:
            item.add_marker(pytest.mark.xdist_group(group(item)))
