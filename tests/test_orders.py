"""Named orders (huge, pageblock, costly): the schema, how the running kernel resolves them, the policy,
and what status and check-config say. The live resolution on real kernels is in tests/test_daemon_vm.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from shrinkd import configload, metrics, parse
from shrinkd.errors import ConfigError, InputError
from shrinkd.policy import Policy
from shrinkd.procfs import ProcFS

from .configs import config_from, current
from .test_policy import FRAGMENTED, normal

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "kernels"
STATES = sorted(p for p in FIXTURES.iterdir() if (p / "proc" / "meminfo").exists())


def kernel_tree(
    root: Path, state: str = "6.1-idle", hpage_pmd_size: str = "2097152\n", pagetypeinfo: str = ""
) -> ProcFS:
    """A captured /proc with the two files the names come from."""
    shutil.copytree(FIXTURES / state / "proc", root / "proc")
    thp = root / "sys" / "kernel" / "mm" / "transparent_hugepage"
    thp.mkdir(parents=True)
    if hpage_pmd_size:
        (thp / "hpage_pmd_size").write_text(hpage_pmd_size)
    if pagetypeinfo:
        (root / "proc" / "pagetypeinfo").write_text(pagetypeinfo)
    return ProcFS(root / "proc", root / "sys")


PAGETYPEINFO_4K = (
    "Page block order: 9\nPages per block:  512\n\nFree pages count per migrate type at order       0 ...\n"
)
PAGETYPEINFO_16K = "Page block order: 11\nPages per block:  2048\n\n"


# -- the schema -----------------------------------------------------------------------


def test_a_rule_may_name_its_orders() -> None:
    loaded = config_from(
        "rules:\n  - {name: r, orders: [huge, 4, costly], unusable_index: {trigger: 0.9, clear: 0.5}}\n"
    )
    assert loaded.rules[0].orders == ("huge", 4, "costly")


def test_an_unknown_order_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        config_from("rules:\n  - name: r\n    orders: [giant]\n    unusable_index: {trigger: 0.9, clear: 0.5}\n")
    assert str(caught.value) == (
        "test.yaml:3: rules[0].orders[0]: must be an order (0 to 15) or one of huge, pageblock, costly, got 'giant'"
    )


def test_the_defaults_name_their_orders() -> None:
    assert [rule.orders for rule in configload.builtin().rules] == [("costly",), ("huge",)]


# -- what the kernel says ----------------------------------------------------------------


@pytest.mark.parametrize("state", STATES, ids=[p.name for p in STATES])
def test_page_size_of_a_captured_tree_is_the_kernel_s(state: Path, tmp_path: Path) -> None:
    # MemTotal is the sum of the zones' managed pages, in kB. A board's capture keeps the guest's
    # `getconf PAGESIZE` (pagesize.txt); x86_64 kernels have 4 KiB pages.
    recorded = state / "pagesize.txt"
    expected = int(recorded.read_text()) if recorded.exists() else 4096
    assert ProcFS(state / "proc", tmp_path).page_size() == expected


def test_page_size_from_meminfo_and_zoneinfo() -> None:
    assert metrics.page_size_of(981472, 245368) == 4096  # 6.1-idle
    assert metrics.page_size_of(981472, 245368 // 4) == 16384
    assert metrics.page_size_of(981472, 245367) is None  # not a whole number of bytes per page
    assert metrics.page_size_of(0, 0) is None


def test_order_of_a_block_size() -> None:
    assert metrics.order_of(2 << 20, 4096) == 9
    assert metrics.order_of(32 << 20, 16384) == 11
    assert metrics.order_of(512 << 20, 65536) == 13
    assert metrics.order_of(3 << 20, 4096) is None
    assert metrics.order_of(0, 4096) is None


def test_pageblock_order_from_pagetypeinfo() -> None:
    assert parse.parse_pageblock_order(PAGETYPEINFO_4K) == 9
    assert parse.parse_pageblock_order(PAGETYPEINFO_16K) == 11
    with pytest.raises(InputError) as caught:
        parse.parse_pageblock_order("Free pages count per migrate type\n")
    assert str(caught.value) == "/proc/pagetypeinfo:1: expected 'Page block order: N' on the first line"
    with pytest.raises(InputError):
        parse.parse_pageblock_order("Page block order: nine\n")


def test_named_orders_with_4k_pages(tmp_path: Path) -> None:
    procfs = kernel_tree(tmp_path, pagetypeinfo=PAGETYPEINFO_4K)
    assert procfs.named_orders(4096) == {"huge": 9, "pageblock": 9, "costly": 3}


def test_named_orders_with_16k_pages(tmp_path: Path) -> None:
    procfs = kernel_tree(tmp_path, hpage_pmd_size="33554432\n", pagetypeinfo=PAGETYPEINFO_16K)
    assert procfs.named_orders(16384) == {"huge": 11, "pageblock": 11, "costly": 3}
    assert procfs.huge_order(16384) == (11, "THP 32768 kB")  # what status and check-config say it came from


def test_without_thp_huge_comes_from_hugetlb_and_pageblock_needs_pagetypeinfo(tmp_path: Path) -> None:
    procfs = kernel_tree(tmp_path, hpage_pmd_size="")
    # /proc/meminfo's Hugepagesize: 2048 kB; /proc/pagetypeinfo absent (or unreadable: root only).
    assert procfs.named_orders(4096) == {"huge": 9, "pageblock": None, "costly": 3}


# -- the policy ------------------------------------------------------------------------------


RULE = "rules:\n  - {name: r, zones: [Normal], orders: [huge], unusable_index: {trigger: 0.9, clear: 0.5}}\n"


def test_the_policy_watches_the_order_a_name_stands_for() -> None:
    p = Policy(current(RULE), 4096, orders={"huge": 9, "pageblock": 9, "costly": 3})
    plan = p.evaluate(normal(FRAGMENTED), 0.0)
    assert [d.source.where() for d in plan.decisions] == ["node 0 zone Normal order 9"]


def test_a_name_this_kernel_cannot_resolve_is_skipped_once_with_a_warning() -> None:
    p = Policy(current(RULE), 4096, orders={"huge": None, "pageblock": None, "costly": 3})
    first = p.evaluate(normal(FRAGMENTED), 0.0)
    assert first.decisions == ()
    assert [n.message for n in first.notices] == ["rule r: this kernel has no huge order; skipped"]
    assert p.evaluate(normal(FRAGMENTED), 1.0).notices == ()


# -- what users see -----------------------------------------------------------------------------


def shrinkd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shrinkd", *args], cwd=REPO, capture_output=True, text=True, check=False
    )


def test_status_shows_the_named_orders(tmp_path: Path) -> None:
    procfs = kernel_tree(tmp_path, pagetypeinfo=PAGETYPEINFO_4K)
    roots = ["--proc-root", procfs.proc_root, "--sys-root", procfs.sys_root]
    document = json.loads(shrinkd("status", "--json", *roots).stdout)
    assert document["named_orders"] == {"huge": 9, "pageblock": 9, "costly": 3}
    assert document["hpage_order"] == 9
    table = shrinkd("status", *roots).stdout
    assert "Named orders: huge 9, pageblock 9, costly 3\n" in table


def test_check_config_shows_what_each_name_is_here(tmp_path: Path) -> None:
    procfs = kernel_tree(tmp_path, hpage_pmd_size="")
    (tmp_path / "proc" / "sys" / "vm").mkdir(parents=True)
    (tmp_path / "proc" / "sys" / "vm" / "compact_memory").write_text("")  # a backend: the rule can act
    path = tmp_path / "shrinkd.yaml"
    path.write_text("rules:\n  - {name: r, orders: [huge, pageblock, 5], unusable_index: {trigger: 0.9, clear: 0.5}}\n")
    result = shrinkd("check-config", str(path), "--proc-root", procfs.proc_root, "--sys-root", procfs.sys_root)
    assert result.returncode == 0, result.stderr
    lines: List[str] = result.stdout.splitlines()
    # An empty hpage_pmd_size: hugetlb's Hugepagesize says what huge is, and check-config says so.
    assert lines[1:3] == ["  huge = order 9 (hugetlb 2048 kB)", "  rule r: orders huge = 9, pageblock = unknown on this kernel, 5"]
