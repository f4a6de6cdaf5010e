"""`shrinkd status` as a user runs it: exit codes, one-line errors, the JSON contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from shrinkd import errors

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / "tests" / "fixtures" / "kernels" / "6.1-hog"


def shrinkd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shrinkd", *args], cwd=REPO, capture_output=True, text=True, check=False
    )


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    shutil.copytree(STATE / "proc", root)
    return root


def test_json_contract(proc: Path) -> None:
    result = shrinkd("status", "--json", "--proc-root", str(proc))
    assert result.returncode == 0, result.stderr
    document: Dict[str, Any] = json.loads(result.stdout)
    assert document["zones"], "no zones"
    for zone in document["zones"]:
        assert isinstance(zone["node"], int) and isinstance(zone["zone"], str)
        orders = len(zone["free_blocks"])
        assert orders == 11
        assert all(isinstance(n, int) for n in zone["free_blocks"])
        assert zone["free_pages"] == sum(n << o for o, n in enumerate(zone["free_blocks"]))
        for key in ("unusable_index", "extfrag_index"):
            assert len(zone[key]) == orders and all(isinstance(v, float) for v in zone[key])
        assert set(zone["watermarks"]) == {"min", "low", "high"}
        assert all(isinstance(v, int) for v in zone["watermarks"].values())
    assert document["psi"]["some"]["avg10"] >= 0
    assert [n["node"] for n in document["nodes"]] == [0]


def test_table_shows_zones_indexes_watermarks_and_psi(proc: Path) -> None:
    result = shrinkd("status", "--proc-root", str(proc))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Node 0, zone DMA32:" in out and "Node 0, zone DMA:" in out
    assert "watermarks min/low/high" in out
    assert "PSI memory avg10: some" in out
    # The hog state has no free huge-page block in DMA32: its order-9 index shows.
    dma32 = out[out.index("zone DMA32:") :]
    assert "order 9: unusable 1.000, extfrag 0.999" in dma32


def test_without_optional_files_status_still_works(proc: Path) -> None:
    for name in ("zoneinfo", "vmstat", "meminfo", "pressure/memory"):
        (proc / name).unlink()
    result = shrinkd("status", "--json", "--proc-root", str(proc))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert "watermarks" not in document["zones"][0] and "psi" not in document
    table = shrinkd("status", "--proc-root", str(proc))
    assert table.returncode == 0 and "PSI memory: not available" in table.stdout


BAD_INPUTS: List[tuple[str, str, int, str]] = [
    ("buddyinfo", "", errors.EXIT_MALFORMED, "buddyinfo: no zones"),
    ("buddyinfo", "Node 0, zone DMA 1 2 3\nNode 0, zone DMA32 1 2\n", errors.EXIT_MALFORMED, "buddyinfo:2: zone DMA32: 2 orders"),
    ("buddyinfo", "Node 0, zone DMA 1 two 3\n", errors.EXIT_MALFORMED, "buddyinfo:1: zone DMA: expected an integer, got 'two'"),
    ("buddyinfo", "Node 0, zone DMA 1 2 3\nNode 0, zone Nor", errors.EXIT_MALFORMED, "buddyinfo:2: zone Nor: no free-block counts"),
    ("zoneinfo", "Node 0, zone DMA\n  pages free 4\n", errors.EXIT_MALFORMED, "zoneinfo:1: zone DMA: no min"),
    ("vmstat", "nr_free_pages lots\n", errors.EXIT_MALFORMED, "vmstat:1: nr_free_pages: expected an integer"),
    ("meminfo", "MemTotal 12\n", errors.EXIT_MALFORMED, "meminfo:1: expected 'Key: value"),
    ("pressure/memory", "some avg10=1\n", errors.EXIT_MALFORMED, "pressure/memory:1: some: no avg60="),
]


@pytest.mark.parametrize(("name", "text", "code", "message"), BAD_INPUTS, ids=[c[3][:40] for c in BAD_INPUTS])
def test_bad_input_one_line_error(proc: Path, name: str, text: str, code: int, message: str) -> None:
    (proc / name).write_text(text)
    result = shrinkd("status", "--proc-root", str(proc))
    assert result.returncode == code
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"shrinkd: {proc / name}")
    assert message in lines[0]


def test_missing_buddyinfo_exit_4(proc: Path) -> None:
    (proc / "buddyinfo").unlink()
    result = shrinkd("status", "--proc-root", str(proc))
    assert result.returncode == errors.EXIT_MISSING
    assert result.stderr.strip() == f"shrinkd: {proc / 'buddyinfo'}: cannot read: No such file or directory"


def test_debug_shows_traceback(proc: Path) -> None:
    (proc / "buddyinfo").write_text("junk\n")
    result = shrinkd("status", "--debug", "--proc-root", str(proc))
    assert result.returncode == errors.EXIT_MALFORMED
    assert "Traceback" in result.stderr and "InputError" in result.stderr


def test_help_documents_exit_codes() -> None:
    result = shrinkd("status", "--help")
    assert result.returncode == 0
    assert "--proc-root DIR" in result.stdout and "--sys-root DIR" in result.stdout
    for code in range(6):
        assert f"\n  {code}  " in result.stdout


def test_pretty_without_json_is_a_usage_error(proc: Path) -> None:
    result = shrinkd("status", "--pretty", "--proc-root", str(proc))
    assert (result.returncode, result.stdout, result.stderr) == (2, "", "shrinkd: --pretty: only with --json (it indents the JSON)\n")


def test_usage_error_exit_2() -> None:
    assert shrinkd("status", "--no-such-flag").returncode == errors.EXIT_USAGE
    assert shrinkd().returncode == errors.EXIT_USAGE


def test_live_proc_of_this_machine() -> None:
    result = shrinkd("status", "--json")
    assert result.returncode == 0, result.stderr
    live = json.loads(result.stdout)
    ours = {(z["node"], z["zone"]) for z in live["zones"]}
    lines = Path("/proc/buddyinfo").read_text().splitlines()
    assert len(ours) == len(lines)


NO_RECLAIM = [
    "  node_reclaim: no nodeN/reclaim files (not in this kernel)",
    "  memory_reclaim: no memory.reclaim (cgroup v2 not mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified,"
    " or a kernel before 5.19)",
    "  shrinkmem: no shrinkmem device (the module is not loaded)",
    "  drop_caches: disabled in the configuration",
]


def test_reclaim_backends_and_huge_on_a_kernel_without_memory_reclaim_thp_or_the_module(
    proc: Path, tmp_path: Path
) -> None:
    # A 5.10 PREEMPT_RT board: cgroup v2 without memory.reclaim, no per-node reclaim, the module not loaded,
    # no transparent_hugepage directory. No daemon runs on a captured tree: status probes as `run` would.
    sys_root = tmp_path / "sys"
    (sys_root / "fs" / "cgroup").mkdir(parents=True)
    config = tmp_path / "shrinkd.yaml"
    config.write_text("psi: {wakeup: false}\n")
    result = shrinkd("status", "--proc-root", str(proc), "--sys-root", str(sys_root), "--config", str(config))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "huge = order 9 (hugetlb 2048 kB)" in lines
    start = lines.index(
        "Reclaim backends: none: reclaim is not possible, rules that may reclaim compact only"
        f" (as shrinkd run would find them with {config})"
    )
    assert lines[start + 1 : start + 5] == NO_RECLAIM
    document = json.loads(
        shrinkd("status", "--json", "--proc-root", str(proc), "--sys-root", str(sys_root), "--config", str(config)).stdout
    )
    assert document["huge"] == {"order": 9, "from": "hugetlb 2048 kB"}
    assert document["reclaim"]["backends"][2] == {
        "name": "shrinkmem", "why": "no shrinkmem device (the module is not loaded)"
    }
    # With memory.reclaim there, status names it as the backend shrinkd reclaims with.
    (sys_root / "fs" / "cgroup" / "memory.reclaim").write_text("")
    table = shrinkd("status", "--proc-root", str(proc), "--sys-root", str(sys_root), "--config", str(config)).stdout
    assert f"Reclaim backends: memory_reclaim (as shrinkd run would find them with {config})" in table.splitlines()


def test_huge_without_any_source_is_said_once_and_status_goes_on(proc: Path, tmp_path: Path) -> None:
    # No transparent huge pages and no hugetlb either: /proc/meminfo without Hugepagesize.
    meminfo = proc / "meminfo"
    meminfo.write_text("".join(line + "\n" for line in meminfo.read_text().splitlines() if not line.startswith("Hugepage")))
    sys_root = tmp_path / "sys"
    sys_root.mkdir()
    result = shrinkd("status", "--proc-root", str(proc), "--sys-root", str(sys_root))
    assert result.returncode == 0, result.stderr
    why = (
        f"no transparent huge pages (no {sys_root}/kernel/mm/transparent_hugepage/hpage_pmd_size:"
        f" CONFIG_TRANSPARENT_HUGEPAGE off, as on PREEMPT_RT) and no hugetlb (no Hugepagesize in {proc}/meminfo:"
        " CONFIG_HUGETLBFS off)"
    )
    assert f"huge = unknown: {why}; scores at order 9" in result.stdout.splitlines()
    assert "Traceback" not in result.stderr
