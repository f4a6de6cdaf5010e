"""shrinkd doctor on fake /proc, /sys, /boot and /lib/modules trees (the guest run checks a real kernel)."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from shrinkd import doctor
from shrinkd.procfs import ProcFS

from .fakekernel import REPO, STATES

UNIT = REPO / "packaging" / "systemd" / "shrinkd.service"


class Board:
    """A board's trees: a captured 6.1 /proc, a /sys with one node, /boot and /lib/modules."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc = root / "proc"
        shutil.copytree(STATES / "6.1-frag3" / "proc", self.proc)
        (self.proc / "sys" / "vm").mkdir(parents=True)
        (self.proc / "sys" / "kernel").mkdir(parents=True)
        (self.proc / "sys" / "kernel" / "osrelease").write_text("6.1.0-99-arm64\n")
        (self.proc / "sys" / "vm" / "compact_memory").write_text("")
        self.sys = root / "sys"
        node = self.sys / "devices" / "system" / "node" / "node0"
        node.mkdir(parents=True)
        (node / "compact").write_text("")
        (self.sys / "fs" / "cgroup").mkdir(parents=True)
        (self.sys / "fs" / "cgroup" / "memory.reclaim").write_text("")
        (self.sys / "kernel" / "mm" / "transparent_hugepage").mkdir(parents=True)
        (self.sys / "kernel" / "mm" / "transparent_hugepage" / "hpage_pmd_size").write_text("2097152\n")
        self.boot = root / "boot"
        self.boot.mkdir()
        self.modules = root / "modules"
        (self.modules / "6.1.0-99-arm64").mkdir(parents=True)
        (self.modules / "6.1.0-99-arm64" / "modules.dep").write_text("kernel/fs/ext4/ext4.ko:\n")
        self.dev = root / "dev"
        self.dev.mkdir()
        self.out = root / "out"
        self.out.mkdir()
        os.chmod(self.out, 0o755)

    def examine(self, config: str = "", unit: Optional[Path] = UNIT) -> doctor.Report:
        path = self.root / "shrinkd.yaml"
        path.write_text(config or "psi: {wakeup: false}\n")
        system = doctor.System(ProcFS(self.proc, self.sys), str(self.boot), str(self.modules), str(self.dev), live=False)
        return doctor.examine(system.procfs, str(path), str(unit) if unit else None, system)


@pytest.fixture
def board(tmp_path: Path) -> Board:
    return Board(tmp_path / "board")


def found(report: doctor.Report, status: Optional[str] = None) -> List[Tuple[str, str, str]]:
    return [(c.status, c.area, c.what) for c in report.checks if status is None or c.status == status]


def test_a_board_with_compaction_and_memory_reclaim_has_no_problems(board: Board) -> None:
    report = board.examine()
    assert found(report, doctor.FAIL) == []
    assert report.exit_code() == 0
    assert ("ok", "rules", "rule costly-order: acts by compact, then memory_reclaim") in found(report)
    assert ("ok", "rules", "rule huge-page: acts by compact, then memory_reclaim") in found(report)
    # The reclaim after a compaction raises vm.vfs_cache_pressure: the unit lets it.
    assert ("ok", "sandbox", "vfs_cache_pressure: /proc/sys/vm/vfs_cache_pressure writable") in found(report)
    assert ("ok", "orders", "rule huge-page: order huge = 9") in found(report)
    assert ("ok", "orders", "huge = order 9 (THP 2048 kB)") in found(report)
    # No module: said, and not a problem (the other reclaim backends are used).
    status, _, what = next(f for f in found(report) if f[1] == "module")
    assert status == "warn" and what == "shrinkmem not loaded; not installed for 6.1.0-99-arm64 (kmod/, or the shrinkmem-dkms package)"
    assert ("info", "options", f"kernel options unknown: no {board.proc}/config.gz, no {board.boot}/config-6.1.0-99-arm64") in found(report)


def test_kernel_options_come_from_config_gz_or_boot(board: Board) -> None:
    (board.boot / "config-6.1.0-99-arm64").write_text(
        "CONFIG_COMPACTION=y\n# CONFIG_PSI is not set\nCONFIG_MEMCG=y\nCONFIG_MODULES=y\nCONFIG_KPROBES=y\n"
    )
    report = board.examine()
    options = {what: status for status, area, what in found(report) if area == "options"}
    assert options["CONFIG_COMPACTION=y"] == "ok"
    assert options["CONFIG_PSI=n"] == "warn"
    assert options["CONFIG_NUMA=n"] == "warn"  # absent counts as not set
    with gzip.open(board.proc / "config.gz", "wt") as handle:
        handle.write("CONFIG_PSI=y\nCONFIG_PSI_DEFAULT_DISABLED=y\n")
    options = {what: status for status, area, what in found(board.examine()) if area == "options"}
    assert options["CONFIG_PSI=y"] == "ok" and options["CONFIG_PSI_DEFAULT_DISABLED=y"] == "warn"
    # psi=1 on the kernel's command line turns PSI on: nothing to warn about.
    (board.proc / "cmdline").write_text("BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro psi=1 quiet\n")
    options = {what: status for status, area, what in found(board.examine()) if area == "options"}
    assert options["CONFIG_PSI_DEFAULT_DISABLED=y"] == "ok"


def test_a_python_without_zlib_says_why_and_reads_the_options_from_boot(board: Board, monkeypatch: pytest.MonkeyPatch) -> None:
    # Buildroot's python3 without python3-zlib: `import gzip` raises ImportError.
    with gzip.open(board.proc / "config.gz", "wt") as handle:
        handle.write("CONFIG_PSI=y\n")
    (board.boot / "config-6.1.0-99-arm64").write_text("CONFIG_COMPACTION=y\n")
    monkeypatch.setitem(sys.modules, "gzip", None)
    report = board.examine()
    options = {what: status for status, area, what in found(report) if area == "options"}
    assert options["CONFIG_COMPACTION=y"] == "ok"
    assert options["CONFIG_PSI=n"] == "warn"  # /boot's file, not config.gz's
    why = f"{board.proc}/config.gz cannot be read: this Python has no gzip (import of gzip halted; None in sys.modules; built without zlib?)"
    assert options[f"{why}; the options below are {board.boot}/config-6.1.0-99-arm64's"] == "info"


def test_a_python_without_zlib_and_no_boot_config_says_so_in_one_line(board: Board, monkeypatch: pytest.MonkeyPatch) -> None:
    with gzip.open(board.proc / "config.gz", "wt") as handle:
        handle.write("CONFIG_PSI=y\n")
    monkeypatch.setitem(sys.modules, "gzip", None)
    options = [(status, what) for status, area, what in found(board.examine()) if area == "options"]
    assert options == [
        ("info", f"kernel options unknown: {board.proc}/config.gz cannot be read: this Python has no gzip (import of gzip"
                 f" halted; None in sys.modules; built without zlib?), no {board.boot}/config-6.1.0-99-arm64"),
    ]


def test_reclaim_backends_on_a_board_without_memory_reclaim_or_the_module(board: Board, monkeypatch: pytest.MonkeyPatch) -> None:
    # A 5.10 board: no memory.reclaim, no nodeN/reclaim, the module not loaded. The registry's probe is
    # read once, by the backend checks and the judgement alike.
    os.unlink(board.sys / "fs" / "cgroup" / "memory.reclaim")
    from shrinkd.actions import registry

    probes = []
    real = registry.probe

    def counted(*args: object, **kwargs: object) -> object:
        probes.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(registry, "probe", counted)
    report = board.examine()
    assert len(probes) == 1
    assert [(status, what) for status, area, what in found(report) if area == "reclaim"] == [
        ("warn", "reclaim backends: none: reclaim is not possible, rules that may reclaim compact only"),
        ("info", "node_reclaim: no nodeN/reclaim files (not in this kernel)"),
        ("info", "memory_reclaim: no memory.reclaim (cgroup v2 not mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified,"
                 " or a kernel before 5.19)"),
        ("info", "shrinkmem: no shrinkmem device (the module is not loaded)"),
        ("info", "drop_caches: disabled in the configuration"),
    ]
    # Compaction still acts: no failure, and the rules say they act by compaction alone.
    assert report.exit_code() == 0
    assert ("ok", "rules", "rule huge-page: acts by compact") in found(report)


def test_reclaim_backends_a_board_has(board: Board) -> None:
    reclaim = [(status, what) for status, area, what in found(board.examine()) if area == "reclaim"]
    assert reclaim[0] == ("ok", "reclaim backends: memory_reclaim")
    assert ("info", "drop_caches: disabled in the configuration") in reclaim


def test_without_transparent_huge_pages_huge_comes_from_hugetlb(board: Board) -> None:
    # A PREEMPT_RT kernel: no transparent_hugepage directory; hugetlb's Hugepagesize (2048 kB) stands in.
    shutil.rmtree(board.sys / "kernel" / "mm" / "transparent_hugepage")
    report = board.examine()
    assert ("ok", "orders", "huge = order 9 (hugetlb 2048 kB)") in found(report)
    assert ("ok", "orders", "rule huge-page: order huge = 9") in found(report)
    assert found(report, doctor.FAIL) == []


def test_what_the_configuration_asks_for_and_the_board_lacks_is_a_problem(board: Board) -> None:
    os.unlink(board.sys / "devices" / "system" / "node" / "node0" / "compact")
    os.unlink(board.proc / "sys" / "vm" / "compact_memory")
    config = (
        "psi: {wakeup: false}\n"
        "rules:\n"
        "  - {name: blocks, orders: [pageblock], unusable_index: {trigger: 0.9, clear: 0.5}, reclaim: false}\n"
        "  - {name: deep, orders: [12], unusable_index: {trigger: 0.9, clear: 0.5}}\n"
        "triggers:\n"
        "  psi: {avg10: 20, clear: 5}\n"
        f"prometheus: {{textfile: {board.root}/unsafe/shrinkd.prom}}\n"
    )
    (board.root / "unsafe").mkdir(mode=0o777)
    os.chmod(board.root / "unsafe", 0o777)
    os.unlink(board.proc / "pressure" / "memory")
    report = board.examine(config)
    problems = found(report, doctor.FAIL)
    # The configuration's own problems are the judgement check-config and run share (shrinkd.judgement).
    assert problems == [
        ("fail", "psi", f"{board.proc}/pressure/memory: no PSI in this kernel (CONFIG_PSI)"),
        ("fail", "config", f"prometheus.textfile: {board.root}/unsafe: writable by group or others (mode 0777): refusing to write there"),
        ("fail", "config", "no rule in this configuration can act on this system"),
        ("fail", "sandbox", f"{board.root}/unsafe read-only under the unit"),
    ]
    warned = [what for status, area, what in found(report, doctor.WARN) if area == "config"]
    assert warned == [
        "rule blocks: this kernel has no pageblock order",
        "rule blocks: can never act here: nothing it watches exists",
        "rule deep: order 12 is beyond this kernel's 11 orders (0-10)",
        "rule deep: can never act here: nothing it watches exists",
    ]
    assert report.exit_code() == 2


def test_the_sandbox_check_reads_the_unit(board: Board, tmp_path: Path) -> None:
    config = "psi: {wakeup: false}\nprometheus: {textfile: /var/lib/prometheus/node-exporter/shrinkd.prom}\n"
    unit = tmp_path / "bare.service"
    unit.write_text("[Service]\nProtectSystem=strict\nReadWritePaths=-/proc/sys/vm/compact_memory\n")
    report = board.examine(config, unit)
    sandbox = [(status, what) for status, area, what in found(report) if area == "sandbox"]
    # The board's files, where they are on the board itself.
    assert ("fail", "compact: /sys/devices/system/node/node0/compact read-only under the unit") in sandbox
    assert ("ok", "compact: /proc/sys/vm/compact_memory writable") in sandbox
    assert ("fail", "memory_reclaim: /sys/fs/cgroup/memory.reclaim read-only under the unit") in sandbox
    assert ("fail", "/var/lib/prometheus/node-exporter read-only under the unit") in sandbox


def test_the_packaged_unit_lets_shrinkd_write_where_it_needs(board: Board) -> None:
    """The real unit, with the board's files at the real places."""
    settings = doctor.read_unit(str(UNIT))
    allowed = [p.lstrip("-") for v in settings["ReadWritePaths"] for p in v.split()]
    for path in ("/proc/sys/vm/compact_memory", "/sys/devices/system/node/node0/compact", "/sys/fs/cgroup/memory.reclaim",
                 "/var/lib/prometheus/node-exporter"):
        assert path in allowed
    assert settings["StateDirectory"] == ["shrinkd"]
    report = doctor.Report()
    doctor.sandbox(report, str(UNIT), {"compact": ["/proc/sys/vm/compact_memory"], "shrinkmem": ["/dev/shrinkmem"]},
                   ["/var/lib/prometheus/node-exporter/shrinkd.prom", "/var/lib/shrinkd/trace.jsonl"], "/dev/shrinkmem")
    assert [c.status for c in report.checks[1:]] == ["ok", "ok", "ok", "ok"], [c.what for c in report.checks]
    report = doctor.Report()
    doctor.sandbox(report, str(UNIT), {}, ["/srv/metrics/shrinkd.prom"], "/dev/shrinkmem")
    assert report.checks[-1].status == "fail"


def test_a_loaded_module_without_its_device_node_is_a_problem(board: Board) -> None:
    (board.sys / "module" / "shrinkmem").mkdir(parents=True)
    (board.sys / "class" / "misc" / "shrinkmem").mkdir(parents=True)
    (board.sys / "class" / "misc" / "shrinkmem" / "dev").write_text("10:123\n")
    (board.modules / "6.1.0-99-arm64" / "modules.dep").write_text("updates/dkms/shrinkmem.ko:\n")
    report = board.examine()
    module = [(status, what) for status, area, what in found(report) if area == "module"]
    assert module[0] == ("ok", f"shrinkmem loaded ({board.modules}/6.1.0-99-arm64/updates/dkms/shrinkmem.ko)")
    assert module[1] == ("fail", f"{board.dev}/shrinkmem: No such file or directory")
    assert report.exit_code() == 2
    # A regular file where the node should be is not the device.
    (board.dev / "shrinkmem").write_text("")
    module = [(status, what) for status, area, what in found(board.examine()) if area == "module"]
    assert module[1] == ("fail", f"{board.dev}/shrinkmem is not the shrinkmem device (10:123)")


def test_doctor_command_exit_code_and_json(board: Board) -> None:
    (board.root / "bad.yaml").write_text("rules:\n  - {orders: [14], unusable_index: {trigger: 0.9, clear: 0.5}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "shrinkd", "doctor", "--json", "--config", str(board.root / "bad.yaml"),
         "--proc-root", str(board.proc), "--sys-root", str(board.sys)],
        capture_output=True, text=True, check=False, cwd=REPO,
    )
    assert result.returncode == 2, result.stderr
    import json

    document = json.loads(result.stdout)
    assert document["fail"] >= 1
    assert {"area": "config", "status": "warn", "what": "rule rule0: order 14 is beyond this kernel's 11 orders (0-10)",
            "detail": "shrinkd run starts and says so"} in document["checks"]
    assert {"area": "config", "status": "fail", "what": "no rule in this configuration can act on this system",
            "detail": "shrinkd run refuses this configuration"} in document["checks"]
    text = subprocess.run(
        [sys.executable, "-m", "shrinkd", "doctor", "--config", str(board.root / "bad.yaml"),
         "--proc-root", str(board.proc), "--sys-root", str(board.sys)],
        capture_output=True, text=True, check=False, cwd=REPO,
    )
    assert re.search(r"^FAIL  config +no rule in this configuration can act on this system \(shrinkd run refuses", text.stdout, re.M)
    assert text.stdout.rstrip().endswith("problem(s): the configuration asks for what this system lacks; " + text.stdout.rstrip().split("; ")[-1])


def test_doctor_finds_memory_reclaim_where_the_backend_does(board: Board) -> None:
    # The hybrid layout: cgroup v2 at /sys/fs/cgroup/unified; the backend uses it, so doctor must too.
    os.unlink(board.sys / "fs" / "cgroup" / "memory.reclaim")
    (board.sys / "fs" / "cgroup" / "unified").mkdir()
    (board.sys / "fs" / "cgroup" / "unified" / "memory.reclaim").write_text("")
    report = board.examine()
    assert ("ok", "backend", f"memory_reclaim: {board.sys}/fs/cgroup/unified/memory.reclaim") in found(report)
    assert ("ok", "rules", "rule huge-page: acts by compact, then memory_reclaim") in found(report)
