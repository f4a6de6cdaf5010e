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
        for cells in (line.split(" | ") for line in out.splitlines() if line.startswith("| 6.1 |") and len(line.split(" | ")) == 12)
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
    assert sum(1 for line in out.splitlines() if line.startswith("| 6.1 |") and " MB | " in line) == len(requests)
    result = subprocess.run(
        [sys.executable, "bench/reclaim_safety.py", "--measured", "--results", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1].endswith(f"no runs kept under {tmp_path} for kernels 6.1 6.12")


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
