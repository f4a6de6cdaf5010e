"""Kernel-exactness on captured states: every index equals what the kernel printed.

The states under tests/fixtures/kernels/ were captured by tests/capture.py from
Debian kernels under QEMU; their debugfs extfrag files are the expected values.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shrinkd import metrics, parse
from tests.capture import snapshot
from tests.kernel_oracle import mismatches, parse_debugfs_index, status_json

FIXTURES = Path(__file__).parent / "fixtures" / "kernels"
STATES = sorted(p for p in FIXTURES.iterdir() if (p / "debugfs").is_dir())
SEED = Path(__file__).parent / "fixtures" / "seed-3.3"


def test_fixtures_cover_the_planned_variety() -> None:
    names = {p.name for p in STATES}
    releases = {(p / "meta.txt").read_text().split()[1] for p in STATES}
    assert any(r.startswith("6.1.") for r in releases) and any(r.startswith("6.12.") for r in releases)
    assert any("numa" in n for n in names), "a two-node capture is missing"
    assert any(n.endswith("-hog") for n in names), "a state without free huge-page blocks is missing"
    # At least one state where the kernel reports real fragmentation (index in 0..1).
    positive = [
        v
        for p in STATES
        for row in parse_debugfs_index((p / "debugfs/extfrag/extfrag_index").read_text()).values()
        for v in row
        if v > 0
    ]
    assert positive, "no captured state has a positive fragmentation index"


@pytest.mark.parametrize("state", STATES, ids=[p.name for p in STATES])
def test_status_json_equals_kernel_debugfs(state: Path) -> None:
    assert mismatches(state) == []


@pytest.mark.parametrize("state", STATES, ids=[p.name for p in STATES])
def test_zoneinfo_free_matches_buddyinfo(state: Path) -> None:
    """zoneinfo's `pages free` is the zone's NR_FREE_PAGES; buddyinfo read at the same
    moment adds up to it, give or take pages moving on per-cpu lists (never more than
    a few hundred pages on these guests)."""
    buddy = parse.parse_buddyinfo((state / "proc/buddyinfo").read_text())
    zones = {(z.node, z.zone): z for z in parse.parse_zoneinfo((state / "proc/zoneinfo").read_text())}
    for zone in buddy.zones:
        info = zones[(zone.node, zone.zone)]
        assert abs(metrics.free_pages(zone.free) - info.free) <= 512, (zone, info)
        assert info.min < info.low < info.high
        assert info.managed <= info.present <= info.spanned


@pytest.mark.parametrize("state", [p for p in STATES if "numa" in p.name], ids=lambda p: p.name)
def test_two_nodes_are_reported(state: Path) -> None:
    document = status_json(state / "proc")
    assert {z["node"] for z in document["zones"]} == {0, 1}
    assert [n["node"] for n in document["nodes"]] == [0, 1]


# The original /dev/shrinkmem experiment (Linux 3.3, 497 MB): `free -m` printed these
# MemFree figures beside each buddyinfo snapshot.
SEED_FREE_MB = {"buddyinfo.0-before": 7, "buddyinfo.1-after-100": 173, "buddyinfo.2-after-512": 410}


@pytest.mark.parametrize("name", sorted(SEED_FREE_MB))
def test_seed_snapshots_free_memory_matches_free_m(name: str, tmp_path: Path) -> None:
    (tmp_path / "buddyinfo").write_text((SEED / name).read_text())
    document = status_json(tmp_path)
    assert [z["zone"] for z in document["zones"]] == ["DMA", "Normal"]
    assert all(len(z["free_blocks"]) == 11 for z in document["zones"])
    free_pages = sum(z["free_pages"] for z in document["zones"])
    assert free_pages * 4096 // 2**20 == SEED_FREE_MB[name]
    assert "watermarks" not in document["zones"][0]


def test_seed_reclaim_reduced_fragmentation_at_costly_order(tmp_path: Path) -> None:
    """After each reclaim the Normal zone had more memory usable at order 3."""
    values = []
    for name in sorted(SEED_FREE_MB):
        (tmp_path / "buddyinfo").write_text((SEED / name).read_text())
        normal = next(z for z in status_json(tmp_path)["zones"] if z["zone"] == "Normal")
        values.append(normal["unusable_index"][3])
    assert values[0] > values[1] > values[2]


def test_snapshot_saves_a_state_that_holds_still(tmp_path: Path) -> None:
    source = FIXTURES / "6.1-frag1"
    assert snapshot(tmp_path / "out", proc=source / "proc", debugfs=source / "debugfs", within=1) == 1
    for name in ("proc/buddyinfo", "debugfs/extfrag/unusable_index"):
        assert (tmp_path / "out" / name).read_text() == (source / name).read_text()


def test_snapshot_names_what_never_held_still(tmp_path: Path) -> None:
    source = FIXTURES / "6.1-frag1"
    debugfs = tmp_path / "debugfs"
    shutil.copytree(source / "debugfs", debugfs)
    (debugfs / "extfrag" / "extfrag_index").write_text("")  # a reading that gives nothing
    with pytest.raises(RuntimeError, match=r"held still over \d+ readings .*extfrag/extfrag_index"):
        snapshot(tmp_path / "out", proc=source / "proc", debugfs=debugfs, within=0.3)
    assert not (tmp_path / "out").exists()
