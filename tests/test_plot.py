"""shrinkd plot: the PNG's size and what its axes hold, from a trace recorded in a guest and from journal events."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from shrinkd import plot
from shrinkd.trace import read_trace

from .fakekernel import REPO

TRACES = REPO / "tests" / "fixtures" / "traces"


def png_size(path: Path) -> Tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def trace_files() -> List[str]:
    found = sorted(TRACES.glob("*.jsonl"))
    assert found, f"no traces in {TRACES}"
    return [str(found[0])]


def shrinkd(*args: str, env: Dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shrinkd", *args], capture_output=True, text=True, check=False, cwd=REPO, env=env)


def test_a_trace_plots_one_panel_per_zone_with_a_line_per_order(tmp_path: Path) -> None:
    files = trace_files()
    trace = read_trace(files)
    figure = plot.from_trace(trace, width=10, height=8)
    zones = [key for key in trace.polls[0].obs.zones if max(p.obs.zones[key].free_pages for p in trace.polls) > 0]
    axes = figure.get_axes()
    assert [ax.get_title(loc="left") for ax in axes] == [f"node {node}, zone {zone}" for node, zone in zones]
    orders = len(trace.polls[0].obs.zones[zones[0]].free)
    for ax, key in zip(axes, zones):
        lines = [line for line in ax.get_lines() if str(line.get_label()).startswith("order ")]
        assert [line.get_label() for line in lines] == [f"order {n}" for n in range(orders)]
        # Each order's line is the trace's free blocks of that order, poll by poll.
        for order, line in enumerate(lines):
            assert list(line.get_ydata()) == [p.obs.zones[key].free[order] for p in trace.polls]
        assert ax.get_ylabel() == "free blocks" and ax.get_yscale() == "symlog"
        # One vertical line per action on the zone's node (and per condition triggered in the zone).
        marks = [line for line in ax.get_lines() if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2]
        acted = [e for e in trace.events if e.kind in ("compacted", "reclaimed") and e.fields.get("node") in (None, key[0])]
        triggered = [e for e in trace.events if e.kind == "triggered" and e.fields.get("zone") in (None, key[1])]
        assert len(marks) == len(acted) + len(triggered)
    assert axes[-1].get_xlabel() == "time"
    out = tmp_path / "trace.png"
    result = shrinkd("plot", *files, "-o", str(out), "--width", "10", "--height", "8", "--dpi", "50")
    assert result.returncode == 0, result.stderr
    assert png_size(out) == (500, 400)
    assert result.stdout == f"wrote {out} (500x400 pixels)\n"


def journal_events() -> List[Dict[str, Any]]:
    base = {"trigger": "huge-page:unusable_index", "node": "0", "zone": "DMA32", "order": "9"}
    return [
        {"time": 1.7e9, "event": "triggered", **base, "value": "0.990"},
        {"time": 1.7e9 + 1, "event": "compacted", **base, "before": "0.990", "after": "0.700", "action": "compact"},
        {"time": 1.7e9 + 2, "event": "reclaimed", **base, "before": "0.700", "after": "0.400", "action": "reclaim"},
        {"time": 1.7e9 + 600, "event": "compacted", **base, "before": "0.950", "action": "compact", "dry_run": "1"},
    ]


def test_journal_events_plot_the_watched_value_before_and_after(tmp_path: Path) -> None:
    figure = plot.from_journal(journal_events(), width=8, height=4)
    [ax] = figure.get_axes()
    lines = {str(line.get_label()): list(line.get_ydata()) for line in ax.get_lines()}
    assert lines["huge-page:unusable_index before"] == [0.99, 0.7, 0.95]
    assert lines["huge-page:unusable_index after"] == [0.7, 0.4]
    assert ax.get_ylabel() == "watched value"
    out = tmp_path / "journal.png"
    plot.save(figure, str(out), dpi=40)
    assert png_size(out) == (320, 160)


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no compaction or reclaim with a measured value"):
        plot.from_journal(journal_events()[:1])
    result = shrinkd("plot", "-o", str(tmp_path / "x.png"))
    assert (result.returncode, result.stderr) == (2, "shrinkd: give trace files or --journal (one of the two)\n")
    result = shrinkd("plot", *trace_files(), "-o", str(tmp_path / "missing" / "x.png"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "cannot write" in result.stderr


def test_without_matplotlib_the_error_names_the_package(tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    (shim / "matplotlib").mkdir(parents=True)
    (shim / "matplotlib" / "__init__.py").write_text("raise ModuleNotFoundError('not installed', name='matplotlib')\n")
    env = {"PYTHONPATH": f"{shim}:{REPO}", "PATH": "/usr/bin:/bin"}
    result = shrinkd("plot", *trace_files(), "-o", str(tmp_path / "x.png"), env=env)
    assert result.returncode == 2
    assert result.stderr == (
        "shrinkd: shrinkd plot needs the Python module matplotlib: install Debian's python3-matplotlib "
        "(apt install python3-matplotlib) or matplotlib from PyPI (pip install matplotlib)\n"
    )
    assert not (tmp_path / "x.png").exists()
