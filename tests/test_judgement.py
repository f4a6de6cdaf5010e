"""One judgement of a configuration against a system (shrinkd.judgement), on fake /proc and /sys
trees holding a real 6.1 kernel's files, and as check-config, run and doctor give it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Tuple

import pytest

from shrinkd import judgement
from shrinkd.judgement import System, judge, read_system

from .configs import config_from
from .fakekernel import Tree
from .test_daemon_cli import roots, shrinkd
from .test_journal import told

REPO = Path(__file__).resolve().parent.parent
LEVEL = "unusable_index: {trigger: 0.9, clear: 0.5}"


def rule(name: str, zones: str = "[DMA32]", orders: str = "[9]") -> str:
    return f"  - {{name: {name}, zones: {zones}, orders: {orders}, {LEVEL}}}\n"


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path / "kernel")


def verdict_on(tree: Tree, text: str, dry_run: bool = False) -> judgement.Verdict:
    config = config_from(text)
    system, why = read_system(tree.procfs, config)
    assert system is not None, why
    return judge(config, system, judgement.output_problems(config), dry_run)


def test_the_system_as_read_from_the_kernel_s_files(tree: Tree) -> None:
    system, _ = read_system(tree.procfs, config_from())
    assert system is not None
    assert sorted(system.zones) == [(0, "DMA"), (0, "DMA32")]
    assert {orders for orders, _ in system.zones.values()} == {11}
    # compact and memory.reclaim are in the tree; this kernel has neither the module nor nodeN/reclaim.
    assert system.backends == {
        "compact": None, "shrinkmem": judgement.MISSING, "memory_reclaim": None, "node_reclaim": judgement.MISSING,
    }


def test_a_zone_typo_in_the_only_rule_can_never_act(tree: Tree) -> None:
    verdict = verdict_on(tree, "rules:\n" + rule("typo", zones="[Nromal]"))
    assert verdict.errors == ["no rule in this configuration can act on this system"]
    assert verdict.warnings == [
        "rule typo: zones Nromal: not a zone Linux has (DMA, DMA32, Normal, HighMem, Movable, Device)",
        "rule typo: can never act here: nothing it watches exists",
    ]
    assert verdict.notes == ["backend node_reclaim: not available on this system", "backend shrinkmem: not available on this system"]


def test_an_order_beyond_the_kernel_s_and_a_zone_it_lacks(tree: Tree) -> None:
    verdict = verdict_on(tree, "rules:\n" + rule("deep", orders="[12]") + rule("high", zones="[HighMem]"))
    assert verdict.errors == ["no rule in this configuration can act on this system"]
    assert "rule deep: order 12 is beyond this kernel's 11 orders (0-10)" in verdict.warnings
    assert "rule high: zones HighMem: not on this system (zones here: DMA, DMA32)" in verdict.warnings


def test_a_configuration_that_can_partly_act_gets_warnings_only(tree: Tree) -> None:
    verdict = verdict_on(tree, "rules:\n" + rule("good") + rule("typo", zones="[Nromal]"))
    assert verdict.errors == []
    assert "rule typo: can never act here: nothing it watches exists" in verdict.warnings


def test_an_output_in_a_directory_safefile_refuses(tree: Tree, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # as /tmp
    verdict = verdict_on(tree, "rules:\n" + rule("good") + f"record: {{path: {shared}/trace.jsonl}}\n")
    assert verdict.errors == [f"record.path: {shared}: writable by group or others (mode 1777): refusing to write there"]


def test_without_privileges_nothing_can_act_and_a_dry_run_only_warns() -> None:
    config = config_from("rules:\n" + rule("good"))
    refused = "not permitted: /proc/sys/vm/compact_memory not writable by uid 1000"
    system = System(
        {(0, "DMA32"): (11, 1 << 30)},
        {"huge": 9},
        {"compact": refused, "shrinkmem": judgement.MISSING, "memory_reclaim": refused, "node_reclaim": judgement.MISSING},
        1000,
    )
    real = judge(config, system, {})
    assert real.errors == ["no rule in this configuration can act on this system"]
    assert real.warnings == [
        f"backend compact: {refused}",
        f"backend memory_reclaim: {refused}",
        "running as uid 1000, not root: the kernel refuses shrinkd's writes",
        "rule good: no usable backend can act for it",
    ]
    dry = judge(config, system, {}, dry_run=True)
    assert dry.errors == []
    assert "a real run could not act: no backend is usable here" in dry.warnings
    # check-config and doctor judge as the daemon, which runs as root: privileges unchecked for a user.
    as_root = judge(config, system, {}, as_root=True)
    assert (as_root.errors, as_root.warnings, as_root.unchecked) == ([], [], ("privileges",))


def test_without_a_system_it_checks_what_it_can_and_says_what_it_could_not() -> None:
    verdict = judge(config_from("rules:\n" + rule("typo", zones="[Nromal]")), None, {})
    assert verdict.errors == ["no rule in this configuration can act: none names a zone Linux has"]
    assert verdict.unchecked == ("zones", "orders", "backends", "privileges")
    assert judgement.unchecked_line(verdict, "no system given") == (
        "not checked (no system given): zones, orders, backends, privileges"
    )


# -- as the commands give it ------------------------------------------------------------


def test_check_config_and_run_agree_on_a_configuration_that_can_never_act(tree: Tree, tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("rules:\n" + rule("typo", zones="[Nromal]") + "log: {target: stderr}\n")
    check = shrinkd("check-config", str(path), *roots(tree))
    assert check.returncode == 2
    assert check.stdout.splitlines()[0].startswith(f"{path}: 1 error(s), shrinkd run would refuse it (1 rules: typo;")
    assert "  error: no rule in this configuration can act on this system" in check.stdout.splitlines()
    offline = shrinkd("check-config", "--no-system", str(path))
    assert offline.returncode == 2
    assert offline.stdout.splitlines()[-1] == "  not checked (no system given): zones, orders, backends, privileges"
    run = shrinkd("run", "--once", "--config", str(path), *roots(tree))
    assert run.returncode == 2
    assert run.stderr == f"shrinkd: {path}: no rule in this configuration can act on this system\n"
    assert tree.control("sys/devices/system/node/node0/compact") == ""


def test_run_starts_on_a_configuration_that_can_partly_act_with_a_warning(tree: Tree, tmp_path: Path) -> None:
    path = tmp_path / "partly.yaml"
    path.write_text("rules:\n" + rule("good") + rule("deep", orders="[12]") + "log: {target: stderr}\n")
    run = shrinkd("run", "--once", "--dry-run", "--config", str(path), *roots(tree))
    assert run.returncode == 0, run.stderr
    lines = told(run.stderr)
    assert "shrinkd: configuration: rule deep: order 12 is beyond this kernel's 11 orders (0-10)" in lines
    assert lines.index("shrinkd: configuration: rule deep: can never act here: nothing it watches exists") > 0
    check = shrinkd("check-config", str(path), *roots(tree))
    assert check.returncode == 0
    assert "  warning: rule deep: order 12 is beyond this kernel's 11 orders (0-10)" in check.stdout.splitlines()


def test_an_empty_configuration_file_is_said(tree: Tree, tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n\n")
    check = shrinkd("check-config", str(path), *roots(tree))
    assert check.returncode == 0
    assert f"  warning: {path}: empty: the built-in defaults apply" in check.stdout.splitlines()
    run = shrinkd("run", "--once", "--dry-run", "--config", str(path), *roots(tree))
    assert f"shrinkd: configuration: {path}: empty: the built-in defaults apply" in told(run.stderr)


# -- the huge order without transparent huge pages ------------------------------------------


def no_hugetlb(tree: Tree) -> str:
    """Take hugetlb's Hugepagesize out of /proc/meminfo (the tree has no transparent_hugepage directory
    already: a kernel without THP); why `huge` is then unknown."""
    meminfo = tree.proc / "meminfo"
    meminfo.write_text("".join(f"{line}\n" for line in meminfo.read_text().splitlines() if not line.startswith("Hugepage")))
    return (
        f"no transparent huge pages (no {tree.sys}/kernel/mm/transparent_hugepage/hpage_pmd_size:"
        f" CONFIG_TRANSPARENT_HUGEPAGE off, as on PREEMPT_RT) and no hugetlb (no Hugepagesize in {tree.proc}/meminfo:"
        " CONFIG_HUGETLBFS off)"
    )


def test_without_transparent_huge_pages_huge_is_hugetlb_s_default_size(tree: Tree, tmp_path: Path) -> None:
    # A PREEMPT_RT kernel has no transparent huge pages: /proc/meminfo's Hugepagesize (2048 kB) says what huge is.
    assert not (tree.sys / "kernel" / "mm" / "transparent_hugepage").exists()
    assert tree.procfs.huge_order(4096) == (9, "hugetlb 2048 kB")
    path = tmp_path / "defaults.yaml"
    path.write_text("psi: {wakeup: false}\n")
    check = shrinkd("check-config", str(path), *roots(tree))
    assert check.returncode == 0, check.stdout
    lines = check.stdout.splitlines()
    assert lines[1:4] == ["  huge = order 9 (hugetlb 2048 kB)", "  rule costly-order: orders costly = 3", "  rule huge-page: orders huge = 9"]
    assert not any("huge order" in line for line in lines)


def test_with_no_huge_page_size_one_warning_and_the_rule_cannot_act(tree: Tree, tmp_path: Path) -> None:
    why = no_hugetlb(tree)
    assert tree.procfs.huge_order(4096) == (None, why)
    verdict = verdict_on(tree, "rules:\n" + rule("good") + rule("huge", orders="[huge]"))
    assert verdict.errors == []
    assert [text for text in verdict.warnings if "huge" in text] == [
        f"rule huge: this kernel has no huge order: {why}",
        "rule huge: can never act here: nothing it watches exists",
    ]
    # The built-in rules: costly-order acts, huge-page cannot; run says it once, with why, and polls on.
    path = tmp_path / "defaults.yaml"
    path.write_text("psi: {wakeup: false}\nlog: {target: stderr}\n")
    check = shrinkd("check-config", str(path), *roots(tree))
    assert check.returncode == 0
    assert f"  warning: rule huge-page: this kernel has no huge order: {why}" in check.stdout.splitlines()
    assert "  rule huge-page: orders huge = unknown on this kernel" in check.stdout.splitlines()
    run = shrinkd("run", "--once", "--dry-run", "--config", str(path), *roots(tree))
    assert run.returncode == 0, run.stderr
    lines = told(run.stderr)
    assert [line for line in lines if "huge order" in line] == [
        f"shrinkd: configuration: rule huge-page: this kernel has no huge order: {why}"
    ]
    assert "shrinkd: configuration: rule huge-page: can never act here: nothing it watches exists" in lines
    # A configuration whose only rule watches huge can never act: refused in one line, no traceback.
    path.write_text("rules:\n" + rule("huge", orders="[huge]") + "log: {target: stderr}\n")
    run = shrinkd("run", "--once", "--config", str(path), *roots(tree))
    assert (run.returncode, run.stderr) == (2, f"shrinkd: {path}: no rule in this configuration can act on this system\n")


def test_reclaim_backends_say_why_each_is_not_used() -> None:
    from shrinkd.actions.spec import Probe

    def probe(name: str, usable: bool, why: str = "", enabled: bool = True, paths: Tuple[str, ...] = ("/x",), writable: Tuple[str, ...] = ("/x",)) -> Probe:
        return Probe(name, "reclaim", name, enabled, paths, writable, usable, why)

    probes = [
        Probe("compact", "compact", "compaction", True, ("/c",), ("/c",), True, ""),
        probe("shrinkmem", False, "no shrinkmem device (the module is not loaded)", paths=(), writable=()),
        probe("node_reclaim", True),
        probe("memory_reclaim", False, "not writable by this user", writable=()),
        probe("drop_caches", False, "disabled in the configuration", enabled=False),
    ]
    prefer = ["shrinkmem", "memory_reclaim", "drop_caches"]
    found = judgement.reclaim_backends(probes, prefer)
    # In reclaim.prefer's order, then the others; compaction is no reclaim backend.
    assert found == [
        ("shrinkmem", "no shrinkmem device (the module is not loaded)"),
        ("memory_reclaim", "not writable by this user"),
        ("drop_caches", "disabled in the configuration"),
        ("node_reclaim", "not in reclaim.prefer"),
    ]
    assert judgement.reclaim_summary(found) == "none: reclaim is not possible, rules that may reclaim compact only"
    # Judged as root (status and doctor run by a user), a file present but not writable by the user counts.
    as_root = judgement.reclaim_backends(probes, prefer, as_root=True)
    assert judgement.reclaim_summary(as_root) == "memory_reclaim"
    assert judgement.reclaim_lines(as_root) == [
        "shrinkmem: no shrinkmem device (the module is not loaded)",
        "drop_caches: disabled in the configuration",
        "node_reclaim: not in reclaim.prefer",
    ]
    # The running daemon's own list decides what it has.
    assert dict(judgement.reclaim_backends(probes, prefer, used=["compact", "memory_reclaim"]))["memory_reclaim"] is None
