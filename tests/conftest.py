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
NEEDS_TEST_KERNELS = (
    "test_kmod_vm.py",
    "test_kmod_soak_vm.py",
    "test_upstream_series.py",
    "test_nohib_board_vm.py",
)
# The board sessions (tests/boards.py) serve both files: one group, so one worker runs them.
BOARDS = ("test_boards_vm.py", "test_lifecycle_vm.py", "test_busybox_init_vm.py")


# tryfirst: pytest-xdist reads the xdist_group marks in its own hook of the same name, which
# must see the marks added here.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Order: tests that boot nothing, the board sessions, the other guests, the module's guests.

    scripts/test.sh runs pytest with two workers (pytest-xdist, --dist loadgroup): each file
    that boots a guest is one group, so a module's shared boot happens once, in one worker,
    and at most two guests run at a time, one per worker (the board sessions one at a time
    then, BOARD_JOBS). The order within each group, and so each module's fixtures, is kept.
    """

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        if name in NEEDS_TEST_KERNELS:
            return 3
        if name in BOARDS:
            return 1
        return 2 if item.get_closest_marker("vm") else 0

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
            group = "boards" if item.path.name in BOARDS else item.path.stem
            item.add_marker(pytest.mark.xdist_group(group))
