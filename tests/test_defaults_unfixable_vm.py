"""The built-in configuration where compaction cannot fix it: a bounded reclaim, and only then.

Debian's 6.1 kernel boots under QEMU with journald and a data disk, the guest builds
tests/workloads.py `unfixable` (reclaimable slab in nearly every page block of free memory),
and checks that this boot did build it: after one compact_memory the kernel's unusable index
at the huge-page order is still at or over the huge-page rule's trigger (the state varies from
boot to boot and from build to build: up to three builds are tried). Then `shrinkd run` runs
with no configuration file. The huge-page rule must compact first, find the index still over
its clear level, reclaim no more than the per-event limit at the raised vfs_cache_pressure
(most of the reclaimable slab goes), put the kernel's value back, and compact once more;
everything it reclaims stays under the hourly limit. Own file, so that it boots beside
tests/test_defaults_vm.py's guests (one group per file, tests/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from shrinkd import configload
from tests import vm
from tests.test_defaults_vm import boot, during, reclaims_follow_compactions_that_fell_short
from tests.workloads import SLAB_FILES

pytestmark = pytest.mark.vm

DEFAULTS = configload.builtin()
HUGE_PAGE = next(rule for rule in DEFAULTS.rules if rule.name == "huge-page")
assert HUGE_PAGE.unusable_index is not None
# as debugfs prints the index (the configuration holds thousandths)
TRIGGER, CLEAR = HUGE_PAGE.unusable_index.trigger / 1000, HUGE_PAGE.unusable_index.clear / 1000
WATCHED = "huge-page:unusable_index"
HUGE_ORDER = 9  # x86_64, 4 KiB pages

UNFIXABLE = r"""
step build
built=""
for attempt in 1 2 3; do
    workload unfixable
    echo 1 > /proc/sys/vm/compact_memory
    index=$($PY -m tests.workloads index __ORDER__)
    echo "build $attempt: unusable index at order __ORDER__ after compact_memory: $index"
    if awk -v i="$index" 'BEGIN { exit !(i >= __TRIGGER__) }'; then built=$attempt; break; fi
    kill -TERM "$WPID"; wait "$WPID"
done
[ -n "$built" ] || fail "three builds of unfixable were all fixed by compaction"
echo "$built" > "$OUT/builds"
$PY -m tests.workloads measure "$OUT/before.json"
step unfixable
start_shrinkd
# the event's last rung: compaction once more after the reclaim
wait_for 300 more_than "^compacted.*for __WATCHED__" 1 || echo "no compaction after a reclaim"
sleep 5
step "unfixable done"
$PY -m tests.workloads measure "$OUT/after.json"
cat /proc/sys/vm/vfs_cache_pressure > "$OUT/vfs_cache_pressure"
kill -TERM "$WPID"; wait "$WPID"
finish
"""


@pytest.fixture(scope="module")
def guest() -> Iterator[Path]:
    reason = vm.available()
    if reason is not None:
        pytest.skip(reason)
    script = (
        UNFIXABLE.replace("__ORDER__", str(HUGE_ORDER))
        .replace("__TRIGGER__", str(TRIGGER))
        .replace("__WATCHED__", WATCHED)
    )
    # One virtual CPU, as the outcome study's guests have: the one build tried with two left the
    # slab short of the holes (mid-sized free blocks took it), and compaction fixed that state.
    yield boot("unfixable", "6.1", script, slab_files=SLAB_FILES, cpus=1, allocfail=False)


def actions(out: Path) -> List[Dict[str, Any]]:
    return [e for e in during(out, "unfixable", "unfixable done") if e["SHRINKD_EVENT"] in ("compacted", "reclaimed")]


def test_compaction_first_then_a_bounded_reclaim_then_compaction(guest: Path) -> None:
    print(f"built in {(guest / 'builds').read_text().strip()} attempt(s)")
    ladder = [e for e in actions(guest) if e.get("SHRINKD_TRIGGER") == WATCHED]
    shown = [e["MESSAGE"] for e in ladder]
    print("\n".join(shown))
    assert [e["SHRINKD_EVENT"] for e in ladder[:3]] == ["compacted", "reclaimed", "compacted"], shown
    compacted, reclaimed = ladder[0], ladder[1]
    assert float(compacted["SHRINKD_AFTER"]) > CLEAR, shown  # compaction alone did not fix it
    assert 0 < int(reclaimed["SHRINKD_REQUESTED_BYTES"]) <= DEFAULTS.reclaim.max_per_event, shown
    # For what compaction could not move: dentries and inodes first, at the raised cache pressure,
    # and the kernel's own value (100) back afterwards.
    assert reclaimed["SHRINKD_VFS_CACHE_PRESSURE"] == str(DEFAULTS.reclaim.vfs_cache_pressure), shown
    assert (guest / "vfs_cache_pressure").read_text().strip() == "100"


def test_no_reclaim_where_the_compaction_before_it_was_enough(guest: Path) -> None:
    reclaims_follow_compactions_that_fell_short(actions(guest))


def test_everything_reclaimed_stays_within_the_limits(guest: Path) -> None:
    reclaims = [e for e in actions(guest) if e["SHRINKD_EVENT"] == "reclaimed"]
    asked = [int(e["SHRINKD_REQUESTED_BYTES"]) for e in reclaims]
    assert asked and max(asked) <= DEFAULTS.reclaim.max_per_event, asked
    assert sum(asked) <= DEFAULTS.reclaim.max_per_hour, asked
    before = json.loads((guest / "before.json").read_text())
    after = json.loads((guest / "after.json").read_text())
    discarded = max(before["cached_kb"] - after["cached_kb"], 0) << 10
    slab = (before["sreclaimable_kb"] >> 10, after["sreclaimable_kb"] >> 10)
    print(
        f"asked {sum(asked) >> 20} MiB in {len(asked)} reclaim(s); page cache discarded {discarded >> 20} MiB;"
        f" reclaimable slab {slab[0]} -> {slab[1]} MiB"
    )
    # memory.reclaim may take more than asked (76.8 and 108.5 MiB for 64 MiB seen in these guests):
    # the bound that holds is the hourly one.
    assert discarded <= DEFAULTS.reclaim.max_per_hour, (discarded, asked)
    # At the raised vfs_cache_pressure the dentries and inodes go first: most of the slab (88 -> 13 MiB
    # here; at the kernel's 100 the same 64 MiB reclaim took 89 -> 51 MiB in the outcome study).
    assert slab[1] * 3 <= slab[0], slab
