"""Settings for the whole suite."""

from __future__ import annotations

from typing import List

import pytest
from hypothesis import settings

# Property tests check behaviour, never wall-clock time: no per-example deadline (a loaded
# CI machine or a slow emulated guest must not turn a correct run into a failure).
settings.register_profile("shrinkd", deadline=None)
settings.load_profile("shrinkd")


# Files whose tests need the test kernels (tests/testkernels.py): they run last, so that a
# cold run's kernel build (started in the background by scripts/test.sh) overlaps the rest.
NEEDS_TEST_KERNELS = ("test_kmod_vm.py", "test_kmod_soak_vm.py")


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Tests that boot nothing first, then those that boot a guest, then those that need the test
    kernels; the order within each group (and so each module's fixtures) is kept."""

    def rank(item: pytest.Item) -> int:
        if item.path.name in NEEDS_TEST_KERNELS:
            return 2
        return 1 if item.get_closest_marker("vm") else 0

    items.sort(key=rank)
