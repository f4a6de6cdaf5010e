"""The benchmark scripts run and print well-formed figures (quick mode; no time is asserted)."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from tests.vm import REPO

NUMBER = r"(\d+(?:\.\d+)?)"
REACTION_RUN = REPO / "tests" / "fixtures" / "reaction"


def run_bench(*args: str, returncode: int = 0) -> str:
    result = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == returncode, result.stdout + result.stderr
    return result.stdout


def test_poll_cost_prints_both_costs_and_their_ratio() -> None:
    out = run_bench("bench/poll_cost.py", "--quick")
    figures: Dict[str, float] = {}
    for label in ("bare read (4 files)", "shrinkd regular poll", "shrinkd full poll", "read+parse", "metrics", "decide"):
        match = re.search(rf"^\s*{re.escape(label)}:\s+{NUMBER} us", out, re.M)
        assert match, f"no '{label}' figure in:\n{out}"
        figures[label] = float(match.group(1))
    assert all(value > 0 for value in figures.values()), out
    # The printed ratios are the quotients of the printed figures (to their rounding).
    for kind, label in (("regular", "shrinkd regular poll"), ("full", "shrinkd full poll")):
        ratio = re.search(rf"^ratio {kind}/bare:\s+{NUMBER}x", out, re.M)
        assert ratio, out
        expected = figures[label] / figures["bare read (4 files)"]
        assert float(ratio.group(1)) == pytest.approx(expected, rel=0.02, abs=0.01)
    for name in ("buddyinfo", "zoneinfo", "vmstat"):
        assert re.search(rf"{name} \(\d+ B\)", out), out
        assert re.search(rf"^\s+{name}:\s+read\+decode\s+{NUMBER} us, parse\s+{NUMBER} us$", out, re.M), out


def test_poll_cost_reads_the_given_proc_root() -> None:
    """--proc-root is honoured: the sizes printed are the fixture's files', and a missing root is an error."""
    fixture = REPO / "tests" / "fixtures" / "kernels" / "6.1-numa-frag2" / "proc"
    out = run_bench("bench/poll_cost.py", "--quick", "--proc-root", str(fixture))
    size = (fixture / "zoneinfo").stat().st_size
    assert f"zoneinfo ({size} B)" in out, out
    missing = subprocess.run(
        [sys.executable, "bench/poll_cost.py", "--quick", "--proc-root", "/nonexistent"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert missing.returncode != 0


@pytest.mark.skipif(shutil.which("earlyoom") is None, reason="earlyoom is not installed: run scripts/setup.sh")
def test_idle_prints_cpu_wakes_and_rss_for_each_process() -> None:
    out = run_bench("bench/idle.py", "--quick", "--outputs", "--baseline", str(REPO))
    rows: Dict[str, tuple[float, float, float, float, float]] = {}
    for name in ("shrinkd", "shrinkd\\+out", "baseline", "earlyoom", "nohang", "loop", "bare"):
        # CPU ms/min, wakes/min, ms/wake and faults/wake ("-" without a wake-up), RSS, USS and PSS MB
        match = re.search(rf"^{name}\s+{NUMBER}\s+{NUMBER}\s+(?:{NUMBER}|-)\s+(?:{NUMBER}|-)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$", out, re.M)
        assert match, f"no row for {name} in:\n{out}"
        rows[name] = tuple(float(match.group(n)) for n in (1, 2, 5, 6, 7))  # type: ignore[assignment]
    for name, (_, _, rss, uss, pss) in rows.items():
        assert rss > 1.0, (name, out)  # every process holds at least a megabyte: the figure is real
        assert 0 < uss <= pss <= rss, (name, out)  # psutil's USS and PSS, read for each process
    assert rows["earlyoom"][1] > 0, out  # earlyoom wakes ten times a second: its wake-ups are counted
    assert re.search(rf"^RSS shrinkd/bare: {NUMBER}x", out, re.M), out
    assert re.search(rf"^USS shrinkd/bare: {NUMBER}x; PSS shrinkd/bare: {NUMBER}x", out, re.M), out
    assert re.search(r"^CPU shrinkd/earlyoom: ", out, re.M), out
    assert re.search(rf"^shrinkd/baseline: CPU .*, RSS {NUMBER}x, USS {NUMBER}x", out, re.M), out
    ready = re.search(r"READY=1 x(\d+)", out)
    assert ready and int(ready.group(1)) == 3, out  # shrinkd, shrinkd+out and baseline


def test_reaction_report_of_a_real_run(tmp_path: Path) -> None:
    """The figures of a guest's run (tests/fixtures/reaction): every round answered, the median and
    maximum those of the rounds printed; with the compactions gone from the journal, no round is."""
    out = run_bench("bench/reaction.py", "--report", str(REACTION_RUN))
    rounds = [float(x) for x in re.findall(rf"compaction started {NUMBER} s after the report", out)]
    written = (REACTION_RUN / "failed-at.txt").read_text().split()
    assert len(rounds) == len(written) == 7, out
    assert all(0 < value < 60 for value in rounds), rounds
    summary = re.search(rf"to the compaction: median {NUMBER} s, max {NUMBER} s", out)
    assert summary, out
    assert float(summary.group(1)) == pytest.approx(statistics.median(rounds), abs=0.001)
    assert float(summary.group(2)) == pytest.approx(max(rounds), abs=0.001)

    (tmp_path / "failed-at.txt").write_text((REACTION_RUN / "failed-at.txt").read_text())
    lines = (REACTION_RUN / "journal.json").read_text().splitlines()
    kept = [line for line in lines if '"SHRINKD_EVENT":"compacted"' not in line]
    assert len(kept) < len(lines)
    (tmp_path / "journal.json").write_text("\n".join(kept) + "\n")
    out = run_bench("bench/reaction.py", "--report", str(tmp_path), returncode=1)
    assert out.count("no compaction") == 7, out


def test_the_outcome_study_tables_the_runs_kept_without_booting(tmp_path: Path) -> None:
    # A run kept by the study (tests/fixtures/outcome: unfixable with shrinkd's defaults, Debian 6.1).
    kept = REPO / "tests" / "fixtures" / "outcome"
    out = run_bench("bench/outcome.py", "--measured", "--results", str(kept))
    rows = [line for line in out.splitlines() if line.startswith("| unfixable")]
    assert rows == [
        "| unfixable | shrinkd | 31 -> 203 | 13026 -> 18065 | 0.852 -> 0.301 | 71 MB | 104 MB | 17751 | 7280 ms"
        " | compacted, reclaimed, compacted |"
    ]
    result = subprocess.run(
        [sys.executable, "bench/outcome.py", "--measured", "--results", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == f"outcome.py: error: no runs kept under {tmp_path / '6.1'} for these workloads and strategies"


def test_reclaim_safety_tables_the_runs_kept_without_booting(tmp_path: Path) -> None:
    # Runs kept by bench/reclaim_safety.py (tests/fixtures/reclaim_safety: Debian 6.1, three rounds of
    # each backend under each load): the summary is the per-request figures, reduced.
    kept = REPO / "tests" / "fixtures" / "reclaim_safety"
    requests = [
        row for load in ("cache", "swap") for row in json.loads((kept / "6.1" / load / "requests.json").read_text())
    ]
    out = run_bench("bench/reclaim_safety.py", "--measured", "--results", str(kept), "--kernels", "6.1")
    summary = {
        (cells[1], cells[2]): cells
        for cells in (
            line.split(" | ") for line in out.splitlines() if line.startswith("| x86_64 6.1 (4 KiB) |") and len(line.split(" | ")) == 12
        )
    }
    assert sorted(summary) == sorted({(r["load"], r["backend"]) for r in requests})
    for (load, backend), cells in summary.items():
        mine = [r for r in requests if (r["load"], r["backend"]) == (load, backend)]
        assert cells[3] == str(len(mine))
        assert cells[4] == f"{statistics.median(r['seconds'] for r in mine):.2f}"
        assert cells[5] == f"{statistics.median(r['pgsteal'] for r in mine):.0f}"
        below = sum(r["during"]["samples_below_min"] for r in mine)
        assert cells[6] == f"{below} of {sum(r['during']['samples'] for r in mine)}"
        assert cells[7] == str(min(r["during"]["lowest_free_over_min"] for r in mine))
        assert cells[8] == str(sum(r["allocstall"] for r in mine))
    # One line per request beside the summary.
    assert sum(1 for line in out.splitlines() if line.startswith("| x86_64 6.1 (4 KiB) |") and " MB | " in line) == len(requests)
    result = subprocess.run(
        [sys.executable, "bench/reclaim_safety.py", "--measured", "--results", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1].endswith(f"no runs kept under {tmp_path}")


def test_reclaim_safety_windows_count_what_fell_inside_them() -> None:
    from bench import reclaim_safety

    chunks = [(5, 2_000_000), (10, 4_000_000), (15, -1), (20, 8_000_000), (30, 1_000_000)]
    samples = [(9, [("0/DMA32", 900, 1000), ("0/DMA", 50, 10)]), (19, [("0/DMA32", 1300, 1000)]), (40, [("0/DMA32", 0, 1000)])]
    seen = reclaim_safety.window(chunks, samples, 10, 30)
    # From 10 up to 30: the chunks mapped at 10 and 20 (the one at 15 failed to map), the sample at 19.
    assert seen["chunks"] == 2 and seen["map_failures"] == 1
    assert seen["latency_ms"] == {"p50": 6.0, "p99": 8.0, "max": 8.0}
    assert (seen["samples"], seen["samples_below_min"], seen["deepest_below_min"]) == (1, 0, 0)
    earlier = reclaim_safety.window(chunks, samples, 0, 10)
    assert (earlier["samples_below_min"], earlier["deepest_below_min"], earlier["lowest_free_over_min"]) == (1, 100, -100)
    assert earlier["zones"] == {
        "0/DMA32": {"min": 1000, "lowest_over_min": -100, "median_over_min": -100},
        "0/DMA": {"min": 10, "lowest_over_min": 40, "median_over_min": 40},
    }
    assert reclaim_safety.percentiles([]) is None
    assert reclaim_safety.percentiles([float(v) for v in range(1, 201)]) == {"p50": 100.5, "p99": 198.0, "max": 200.0}


def test_reclaim_safety_board_script_keeps_clear_of_the_boards_mounts() -> None:
    from bench import reclaim_safety

    text = reclaim_safety.script(reclaim_safety.BOARD_SCRIPT, "swap", 200, 5)
    # A board's guest mounts $OUT at /mnt/out and the repository at /mnt/repo: the data disk (after
    # the root disk: /dev/vdb) goes elsewhere, and each load's results to a folder of their own.
    assert "mount /dev/vdb /data " in text and "/mnt" not in text
    assert '--out "$OUT/swap" --size 200 --rounds 5 --hog 448' in text and "--read-file /data/big.bin" in text
    assert "echo 768M > /sys/block/zram0/disksize" in text
    # Built once, in the board, against the running kernel's headers; later boots find it in $OUT/build.
    assert 'make -C "/lib/modules/$(uname -r)/build" M="$OUT/build/kmod" modules' in text
    assert "insmod $OUT/build/kmod/shrinkmem.ko" in text
    # The pressure helper comes from the host (the image has no C library headers).
    assert '--pressure "$OUT/build/pressure"' in text and "gcc" not in text
    # A rebuild of the module clears its own folder only, not the helper the host put beside it.
    assert 'rm -rf "$OUT/build/kmod"' in text and not re.search(r'rm -rf "\$OUT/build"\s', text)
    assert "__" not in text
    # The virtme-ng guest keeps its data disk at /mnt (/dev/vda) and the module built on the host.
    x86 = reclaim_safety.script(reclaim_safety.SCRIPT, "cache", 200, 3, "/run/shrinkmem.ko")
    assert "mount /dev/vda /mnt " in x86 and "--read-file /mnt/big.bin" in x86 and "insmod /run/shrinkmem.ko" in x86
    assert '--out "$OUT" --size 200 --rounds 3 --hog 0' in x86 and "make -C" not in x86 and "__" not in x86


def board_run(tmp_path: Path, target: str, pagesize: int, release: str) -> Path:
    """A board's run folder as its boots leave it: guest rows of the kept 6.1 runs, the board's page size and release."""
    kept = REPO / "tests" / "fixtures" / "reclaim_safety" / "6.1"
    out = tmp_path / f"run-{target}"
    for load in ("cache", "swap"):
        (out / load).mkdir(parents=True)
        guest_rows = [
            {k: v for k, v in row.items() if k not in ("kernel", "series", "load")}
            for row in json.loads((kept / load / "requests.json").read_text())
        ]
        (out / load / "requests.json").write_text(json.dumps(guest_rows))
        (out / load / "pagesize.txt").write_text(f"{pagesize}\n")
        (out / load / "uname.txt").write_text(f"{release}\n")
    return out


def test_reclaim_safety_tables_board_runs_beside_the_x86_ones(tmp_path: Path) -> None:
    from bench import reclaim_safety

    results = tmp_path / "results"
    shutil.copytree(REPO / "tests" / "fixtures" / "reclaim_safety" / "6.1", results / "6.1")
    for target, pagesize, release in (("arm64-16k-6.12", 16384, "6.12.57+deb13-arm64-16k"), ("arm64-6.1", 4096, "6.1.0-41-arm64")):
        run = board_run(tmp_path, target, pagesize, release)
        for load in ("cache", "swap"):
            rows = reclaim_safety.board_rows(run, target, load)
            assert {(r["arch"], r["page_kb"], r["kernel"], r["series"], r["load"]) for r in rows} == {
                ("arm64", pagesize // 1024, release, target, load)
            }
            (results / target / load).mkdir(parents=True)
            (results / target / load / "requests.json").write_text(json.dumps(rows))
    out = run_bench("bench/reclaim_safety.py", "--measured", "--results", str(results), "--kernels", "6.1", *reclaim_safety.BOARDS)
    summary = [line.split(" | ")[:3] for line in out.splitlines() if line.startswith("| ") and len(line.split(" | ")) == 12]
    # x86_64 first, then the boards by page size; within each, the loads and the backends in their order.
    kernels = ["| x86_64 6.1 (4 KiB)", "| arm64 6.1 (4 KiB)", "| arm64 6.12 (16 KiB)"]
    pairs = [[load, backend] for load in ("cache", "swap") for backend in ("shrinkmem", "memory_reclaim")]
    assert summary[1:] == [[kernel, *pair] for kernel in kernels for pair in pairs]
    requests = [line.split(" | ")[0] for line in out.splitlines() if " MB | " in line]
    per_kernel = len(requests) // 3
    assert requests == [kernel for kernel in kernels for _ in range(per_kernel)]
    # Every kernel kept unless told; only the kernels asked for when told.
    assert run_bench("bench/reclaim_safety.py", "--measured", "--results", str(results)) == out
    # Only the kernels asked for.
    out = run_bench("bench/reclaim_safety.py", "--measured", "--results", str(results), "--kernels", "arm64-6.1")
    assert {line.split(" | ")[0] for line in out.splitlines() if " MB | " in line} == {"| arm64 6.1 (4 KiB)"}


def test_reclaim_safety_refuses_an_unknown_kernel_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "bench/reclaim_safety.py", "--measured", "--results", str(tmp_path), "--kernels", "arm64-4.19"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].endswith(
        "--kernels: arm64-4.19 is neither a kernel series (6.1) nor a board target (arm64-6.1 arm64-16k-6.12)"
    )


def test_reclaim_safety_rounds_per_load() -> None:
    from bench import reclaim_safety

    # The swap load's requests vary more: five rounds of it, three of page cache only, unless told.
    assert reclaim_safety.rounds_per_load(None) == {"cache": 3, "swap": 5}
    assert reclaim_safety.rounds_per_load(2) == {"cache": 2, "swap": 2}


def test_reclaim_safety_builds_the_pressure_helper_static_and_says_what_compiler_is_missing(tmp_path: Path) -> None:
    import signal
    import time

    from bench import reclaim_safety

    helper = tmp_path / "build" / "pressure"
    reclaim_safety.build_pressure("amd64", helper)
    assert "statically linked" in subprocess.run(["file", str(helper)], capture_output=True, text=True, check=True).stdout
    log = tmp_path / "chunks.txt"
    process = subprocess.Popen([str(helper), "8", "2048", str(log)])
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert all(len(line.split()) == 2 and int(line.split()[1]) > 0 for line in log.read_text().splitlines())
    with pytest.raises(SystemExit) as stopped:
        reclaim_safety.build_pressure("mips64el", helper)
    assert str(stopped.value) == (
        "reclaim_safety.py: no C compiler for mips64el here (none known): install Debian's gcc-aarch64-linux-gnu for arm64"
    )


def test_reclaim_safety_tables_a_kept_board_run() -> None:
    # tests/fixtures/reclaim_safety/arm64-6.1: the arm64-6.1 board's page-cache run as kept (Debian
    # 6.1.0-57-arm64, 4 KiB pages, three rounds): its rows say where they ran, the table says so too.
    kept = REPO / "tests" / "fixtures" / "reclaim_safety"
    requests = json.loads((kept / "arm64-6.1" / "cache" / "requests.json").read_text())
    assert {(r["arch"], r["page_kb"], r["series"], r["kernel"]) for r in requests} == {("arm64", 4, "arm64-6.1", "6.1.0-57-arm64")}
    out = run_bench("bench/reclaim_safety.py", "--measured", "--results", str(kept), "--kernels", "arm64-6.1")
    summary = [line.split(" | ") for line in out.splitlines() if line.startswith("| arm64 6.1 (4 KiB) |") and len(line.split(" | ")) == 12]
    assert [cells[1:4] for cells in summary] == [
        ["cache", backend, str(sum(1 for r in requests if r["backend"] == backend))] for backend in ("shrinkmem", "memory_reclaim")
    ]
    assert sum(1 for line in out.splitlines() if line.startswith("| arm64 6.1 (4 KiB) |") and " MB | " in line) == len(requests)
