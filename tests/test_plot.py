"""shrinkd plot: the PNG's size and what its axes hold, from a trace recorded in a guest (with the rules'
indexes and levels from its configuration) and from journal events; the picture docs/tools.md shows."""

from __future__ import annotations

import datetime
import shlex
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from shrinkd import configload, metrics, plot
from shrinkd.conditions import IndexCondition
from shrinkd.config import Current
from shrinkd.policy import Policy
from shrinkd.trace import Trace, read_trace

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


# ---------------------------------------------------------------------------
# The rules' indexes and levels, from the configuration the trace ran with.

RECORDED = TRACES / "compactable.jsonl"  # tests/fixtures/traces/README.md: recorded in a Debian 6.1 guest
RECORDED_CONFIG = TRACES / "compactable.yaml"  # the configuration that daemon ran with


def index_axes(figure: Any) -> Dict[str, Any]:
    """The index panels by title (a condition's name: rule:metric)."""
    return {ax.get_title(loc="left"): ax for ax in figure.get_axes() if ":" in ax.get_title(loc="left")}


def levels_of(ax: Any) -> Dict[str, List[float]]:
    """The horizontal lines of a panel by label: their y values."""
    return {
        str(line.get_label()): list(line.get_ydata())
        for line in ax.get_lines()
        if str(line.get_label()).startswith(("trigger ", "clear "))
    }


def test_each_rule_s_index_is_drawn_with_the_configuration_s_levels() -> None:
    trace = read_trace([str(RECORDED)])
    config = configload.load([RECORDED_CONFIG])
    found, notes = plot.watched(trace, config, str(RECORDED_CONFIG))
    assert notes == []
    figure = plot.from_trace(trace, width=10, height=12, indexes=found)
    panels = index_axes(figure)
    expected = {}
    for rule in config.rules:
        for kind, level in (("unusable_index", rule.unusable_index), ("extfrag_index", rule.extfrag_index)):
            if level is not None:
                expected[f"{rule.name}:{kind}"] = (level.trigger / 1000, level.clear / 1000)
    assert list(panels) == list(expected)  # the fixture's two rules: costly-order, huge-page
    for name, (trigger, clear) in expected.items():
        assert levels_of(panels[name]) == {f"trigger {trigger:g}": [trigger] * 2, f"clear {clear:g}": [clear] * 2}
        texts = [text.get_text() for text in panels[name].texts]
        assert texts == [f"trigger {trigger:g}", f"clear {clear:g}"]  # labelled on the panel, not only in the legend
    # The zone panels come first, as without a configuration.
    titles = [ax.get_title(loc="left") for ax in figure.get_axes()]
    assert titles[: -len(panels)] == ["node 0, zone DMA", "node 0, zone DMA32"]


def test_the_levels_are_the_given_configuration_s_and_a_difference_from_the_recording_is_said(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(RECORDED_CONFIG.read_text().replace("{trigger: 0.8, clear: 0.5}", "{trigger: 0.7, clear: 0.45}"))
    trace = read_trace([str(RECORDED)])
    found, notes = plot.watched(trace, configload.load([other]), str(other))
    [huge] = [entry for entry in found if entry.name == "huge-page:unusable_index"]
    assert (huge.trigger, huge.clear) == (0.7, 0.45)
    assert levels_of(index_axes(plot.from_trace(trace, indexes=found))["huge-page:unusable_index"]) == {
        "trigger 0.7": [0.7, 0.7],
        "clear 0.45": [0.45, 0.45],
    }
    assert notes == [
        f"{other}: huge-page:unusable_index: the trace's events have trigger 0.800, clear 0.500; "
        "the levels drawn are this configuration's (0.700, 0.450)"
    ]


def test_the_daemon_s_warnings_about_a_rule_are_notes(tmp_path: Path) -> None:
    beyond = tmp_path / "beyond.yaml"
    beyond.write_text(
        "rules:\n"
        "  - {name: too-large, zones: [DMA32], orders: [12], unusable_index: {trigger: 0.9, clear: 0.5}}\n"
        "  - {name: huge-page, zones: [DMA32], orders: [huge], unusable_index: {trigger: 0.8, clear: 0.5}}\n"
    )
    found, notes = plot.watched(read_trace([str(RECORDED)]), configload.load([beyond]), str(beyond))
    assert [entry.name for entry in found] == ["huge-page:unusable_index"]
    assert notes == [f"{beyond}: rule too-large: order 12 is beyond this kernel's 11 orders; skipped"]


def daemon_values(trace: Trace, config_path: Path) -> Dict[Tuple[str, str], List[float]]:
    """Each index condition's value at each poll, from the daemon's own policy and the kernel-exact metrics."""
    policy = Policy(Current(configload.load([config_path])), trace.page_size, orders=trace.orders)
    values: Dict[Tuple[str, str], List[float]] = {}
    for poll in trace.polls:
        sources, _ = policy.sources(poll.obs)
        for condition, value in sources:
            if isinstance(condition, IndexCondition):
                zone = poll.obs.zones[(condition.zone_node, condition.zone)]
                formula = metrics.unusable_index if condition.kind == "unusable_index" else metrics.extfrag_index
                assert value == formula(zone.free, condition.order)
                values.setdefault((condition.name, condition.where()), []).append(value / 1000)
    return values


@pytest.mark.parametrize("name", ["compactable", "unfixable"])
def test_the_index_line_is_what_the_daemon_computes_from_the_trace_s_polls(name: str) -> None:
    trace = read_trace([str(TRACES / f"{name}.jsonl")])
    config = TRACES / f"{name}.yaml"
    found, _ = plot.watched(trace, configload.load([config]), str(config))
    figure = plot.from_trace(trace, indexes=found)
    drawn = {
        (title, str(line.get_label())): line
        for title, ax in index_axes(figure).items()
        for line in ax.get_lines()
        if str(line.get_label()).startswith("node ")
    }
    expected = daemon_values(trace, config)
    assert sorted(drawn) == sorted(expected)
    when = [datetime.datetime.fromtimestamp(trace.wall(poll.t)) for poll in trace.polls]
    for key, line in drawn.items():
        assert list(line.get_ydata()) == expected[key]
        assert list(line.get_xdata()) == when
    # What the daemon logged in the guest when its conditions triggered and cleared is the line's value at that poll.
    checked = 0
    for event in trace.events:
        if event.kind in ("triggered", "cleared") and "rule" in event.fields:
            fields = event.fields
            line = drawn[(fields["trigger"], f"node {fields['node']} zone {fields['zone']} order {fields['order']}")]
            at = max(i for i, poll in enumerate(trace.polls) if poll.t <= event.t)
            assert line.get_ydata()[at] == float(fields["value"])
            checked += 1
    assert checked >= 2


def test_the_command_draws_the_levels_with_config_and_says_in_one_line_when_it_cannot(tmp_path: Path) -> None:
    out = tmp_path / "levels.png"
    result = shrinkd("plot", str(RECORDED), "--config", str(RECORDED_CONFIG), "-o", str(out), "--dpi", "20")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"wrote {out} (240x272 pixels)\n"  # 12 x (3.2 x 4 panels + 0.8) inches
    result = shrinkd("plot", str(RECORDED), "-o", str(out), "--dpi", "20")
    assert result.returncode == 0
    assert result.stderr == (
        f"shrinkd: note: {RECORDED}: a trace holds no configuration: no trigger or clear levels drawn (give --config FILE)\n"
    )
    assert png_size(out) == (240, 144)  # the two zone panels only
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("rules:\n  - {name: normal-only, zones: [Normal], orders: [9], unusable_index: {trigger: 0.9, clear: 0.5}}\n")
    result = shrinkd("plot", str(RECORDED), "--config", str(elsewhere), "-o", str(out), "--dpi", "20")
    assert result.returncode == 0
    assert result.stderr == (
        f"shrinkd: note: {elsewhere}: no rule watches an unusable or fragmentation index in the trace's zones: "
        "no levels drawn\n"
    )
    result = shrinkd("plot", "--journal", "--config", str(RECORDED_CONFIG), "-o", str(out))
    assert (result.returncode, result.stderr) == (2, "shrinkd: --config goes with trace files, not --journal\n")


def damaged(tmp_path: Path, name: str, how: str) -> Tuple[Path, int]:
    """A copy of the recorded trace with its last line cut short, or a garbage line in the middle."""
    lines = RECORDED.read_text().splitlines(keepends=True)
    if how == "truncated":
        number = len(lines)
        lines[-1] = lines[-1][: len(lines[-1]) // 2]
    else:
        number = len(lines) // 2
        lines[number - 1] = '{"t": 1.0, "free": [[1, 2\n'
    path = tmp_path / name
    path.write_text("".join(lines))
    return path, number


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_a_damaged_trace_is_one_line_with_its_file_and_line(tmp_path: Path, how: str) -> None:
    path, number = damaged(tmp_path, f"{how}.jsonl", how)
    out = tmp_path / "x.png"
    result = shrinkd("plot", str(path), "--config", str(RECORDED_CONFIG), "-o", str(out))
    assert result.returncode == 2
    assert result.stderr.startswith(f"shrinkd: {path}:{number}: ") and result.stderr.count("\n") == 1
    assert ("truncated" if how == "truncated" else "not JSON") in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_a_bad_configuration_is_one_line_with_its_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    orders: [22]\n    unusable_index: {trigger: 0.8, clear: 0.5}\n")
    result = shrinkd("plot", str(RECORDED), "--config", str(bad), "-o", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"shrinkd: {bad}:3: ") and result.stderr.count("\n") == 1



# ---------------------------------------------------------------------------
# The picture in the docs: a real event, made by the command the docs give.

DOC = REPO / "docs" / "tools.md"
PICTURE = REPO / "docs" / "event.png"


def documented_command() -> List[str]:
    """The `shrinkd plot ... -o docs/event.png` line docs/tools.md gives to draw docs/event.png again."""
    [line] = [line for line in DOC.read_text().splitlines() if line.startswith("shrinkd plot ") and "docs/event.png" in line]
    return shlex.split(line)


def test_the_docs_picture_is_what_the_documented_command_draws_from_a_recorded_trace(tmp_path: Path) -> None:
    words = documented_command()
    assert words[:2] == ["shrinkd", "plot"]
    args = words[2:]
    at = args.index("-o")
    assert args[at + 1] == "docs/event.png"
    traces = [arg for arg in args if arg.endswith(".jsonl")]
    assert traces and all(Path(REPO, arg).parent == TRACES for arg in traces)  # a trace recorded in a guest kernel
    assert "--config" in args
    out = tmp_path / "event.png"
    args[at + 1] = str(out)
    result = shrinkd("plot", *args)
    assert (result.returncode, result.stderr) == (0, "")
    assert png_size(out) == png_size(PICTURE)
    assert PICTURE.stat().st_size < 100_000
