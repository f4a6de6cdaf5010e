"""Kernel-exactness live: fragment memory in real kernels under QEMU, capture, compare.

The same capture as the committed fixtures (tests/capture.py), made afresh in this
run, so a kernel update that changed the formulas or the file formats shows here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import vm
from tests.capture import PLANS, capture
from tests.kernel_oracle import mismatches, parse_debugfs_index

pytestmark = pytest.mark.vm


# 6.1 with two NUMA nodes; Debian's 6.12 is captured and compared the same way in the
# x86_64-6.12 board session (tests/boards.py, tests/test_boards_vm.py).
@pytest.mark.parametrize("plan", ["6.1-numa"])
def test_live_capture_matches_kernel(plan: str, tmp_path: Path) -> None:
    reason = vm.available()
    if reason is not None:
        pytest.skip(reason)
    states = capture(PLANS[plan], tmp_path)
    assert [s.name for s in states] == sorted(
        [f"{plan}-idle", f"{plan}-hog"] + [f"{plan}-frag{i + 1}" for i in range(len(PLANS[plan].fills_pct))]
    )
    for state in states:
        assert mismatches(state) == [], state.name
    # The last state really is fragmented: in some zone, most free memory is in blocks
    # below the huge-page order (9) by the kernel's own unusable index.
    hog = parse_debugfs_index((tmp_path / f"{plan}-hog" / "debugfs/extfrag/unusable_index").read_text())
    assert any(row[9] >= 0.5 for row in hog.values()), hog
