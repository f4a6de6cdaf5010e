"""The daemon's trace and Prometheus textfile on the fake kernel: what they hold, read back with
prometheus_client's own parser; what happens when they cannot be written; what the daemon loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shrinkd.trace import read_trace

from .fakekernel import STATES, ScriptedKernel, Tree
from .test_daemon import RULES, daemon
from .test_journal import told

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def outputs(folder: Path, interval: float = 30) -> str:
    return RULES + (
        f"record: {{path: {folder}/trace.jsonl, interval: {interval}}}\n"
        f"prometheus: {{textfile: {folder}/shrinkd.prom, interval: {interval}}}\n"
    )


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path / "kernel")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    os.chmod(path, 0o755)
    return path


def parse(text: str) -> Tuple[Dict[str, str], Samples]:
    types: Dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def test_the_textfile_holds_the_kernel_s_indexes_and_the_actions(tree: Tree, folder: Path) -> None:
    kernel = ScriptedKernel(tree.proc, {"compact": ["6.1-frag3"], "memory.reclaim": ["6.1-frag1"]}, {"memory.reclaim": 23456})
    d, _, clock = daemon(tree, kernel, text=outputs(folder))
    d.start()
    try:
        d.tick()
        clock.now += 1
        d.tick()  # triggered: compaction, reclaim
        clock.now += 1
        d.tick()
    finally:
        d.close()
    types, samples = parse((folder / "shrinkd.prom").read_text())
    assert types == {
        "shrinkd_unusable_index": "gauge",
        "shrinkd_extfrag_index": "gauge",
        "shrinkd_free_blocks": "gauge",
        "shrinkd_free_pages": "gauge",
        "shrinkd_last_poll_timestamp_seconds": "gauge",
        "shrinkd_polls": "counter",
        "shrinkd_events": "counter",
        "shrinkd_actions": "counter",
        "shrinkd_action_failures": "counter",
        "shrinkd_reclaimed_bytes": "counter",
        "shrinkd_action_duration_seconds": "histogram",
        "shrinkd_start_time_seconds": "gauge",
        "shrinkd_build_info": "gauge",
    }
    # The last poll's state is frag1: every zone and order, the kernel's index as debugfs printed it.
    debugfs = (STATES / "6.1-frag1" / "debugfs" / "extfrag" / "unusable_index").read_text().split("\n")
    for line in filter(None, debugfs):
        words = line.split()
        node, zone, values = words[1].rstrip(","), words[3], words[4:]
        for order, value in enumerate(values):
            assert samples[("shrinkd_unusable_index", (("node", node), ("order", str(order)), ("zone", zone)))] == float(value)
    buddy = (STATES / "6.1-frag1" / "proc" / "buddyinfo").read_text().splitlines()[1].split()
    assert samples[("shrinkd_free_blocks", (("node", "0"), ("order", "9"), ("zone", "DMA32")))] == int(buddy[4 + 9])
    assert samples[("shrinkd_polls_total", ())] == 3
    assert samples[("shrinkd_events_total", (("event", "compacted"),))] == 1
    assert samples[("shrinkd_events_total", (("event", "cleared"),))] == 1
    assert samples[("shrinkd_actions_total", (("action", "compact"), ("backend", "node0/compact")))] == 1
    assert samples[("shrinkd_actions_total", (("action", "reclaim"), ("backend", "memory_reclaim")))] == 1
    assert samples[("shrinkd_reclaimed_bytes_total", (("backend", "memory_reclaim"),))] == 23456 * 4096
    assert samples[("shrinkd_action_duration_seconds_count", (("action", "reclaim"),))] == 1
    assert samples[("shrinkd_action_duration_seconds_bucket", (("action", "reclaim"), ("le", "+Inf")))] == 1
    assert samples[("shrinkd_build_info", (("version", "0.1.0"),))] == 1

    # The trace holds the same run: three polls, the events in order.
    recorded = read_trace([str(folder / "trace.jsonl")])
    assert len(recorded.polls) == 3
    assert [e.kind for e in recorded.events] == ["started", "triggered", "compacted", "reclaimed", "cleared"]
    assert recorded.events[3].fields["pages_reclaimed"] == 23456
    assert recorded.header["backends"] == [] and recorded.events[0].fields["backends"] == "compact,memory_reclaim"


def test_both_indexes_the_default_rules_watch_are_exported(tree: Tree, folder: Path) -> None:
    # The default rules watch the unusable index (huge order) and the fragmentation index (costly order).
    d, _, _ = daemon(tree, ScriptedKernel(tree.proc, {}), text=outputs(folder))
    d.start()
    try:
        d.tick()  # 6.1-hog, one poll: no action yet (sustain 2)
    finally:
        d.close()
    _, samples = parse((folder / "shrinkd.prom").read_text())
    for name in ("extfrag_index", "unusable_index"):
        debugfs = (STATES / "6.1-hog" / "debugfs" / "extfrag" / name).read_text().split("\n")
        for line in filter(None, debugfs):
            words = line.split()
            node, zone, values = words[1].rstrip(","), words[3], words[4:]
            for order, value in enumerate(values):
                labels = (("node", node), ("order", str(order)), ("zone", zone))
                assert samples[(f"shrinkd_{name}", labels)] == float(value), (name, zone, order)
    assert samples[("shrinkd_extfrag_index", (("node", "0"), ("order", "9"), ("zone", "DMA32")))] == 0.999


def test_a_dry_run_is_counted_apart_from_actions(tree: Tree, folder: Path) -> None:
    d, _, clock = daemon(tree, ScriptedKernel(tree.proc, {}), text=outputs(folder), dry_run=True)
    d.start()
    try:
        d.tick()
        clock.now += 1
        d.tick()  # triggered: would compact, would reclaim, would compact
    finally:
        d.close()
    _, samples = parse((folder / "shrinkd.prom").read_text())
    events = {dict(labels)["event"]: value for (name, labels), value in samples.items() if name == "shrinkd_events_total"}
    assert events["would_compact"] == 2 and events["would_reclaim"] == 1
    assert "compacted" not in events and "reclaimed" not in events
    assert not any(name in ("shrinkd_actions_total", "shrinkd_reclaimed_bytes_total") for name, _ in samples)


def test_written_at_a_bounded_rate(tree: Tree, folder: Path) -> None:
    d, _, clock = daemon(tree, ScriptedKernel(tree.proc, {}), text=outputs(folder, interval=30))
    d.start()
    try:
        d.tick()
        first = (folder / "shrinkd.prom").stat().st_ino
        for _ in range(5):
            clock.now += 5
            d.tick()
        assert (folder / "shrinkd.prom").stat().st_ino == first  # 25 s: not written again
        assert not (folder / "trace.jsonl").exists() or (folder / "trace.jsonl").stat().st_ino
        clock.now += 5
        d.tick()
        assert (folder / "shrinkd.prom").stat().st_ino != first  # 30 s: replaced (a new file)
    finally:
        d.close()


def test_an_unusable_directory_is_said_once_and_the_daemon_goes_on(tree: Tree, folder: Path) -> None:
    os.chmod(folder, 0o777)
    d, stream, clock = daemon(tree, ScriptedKernel(tree.proc, {}), text=outputs(folder, interval=1))
    d.start()
    try:
        for _ in range(4):
            d.tick()
            clock.now += 2
        said = [line for line in told(stream.getvalue()) if "not written" in line]
        assert said == [
            f"shrinkd: metrics not written: {folder}: writable by group or others (mode 0777): refusing to write there; trying again later",
            f"shrinkd: trace not written: {folder}: writable by group or others (mode 0777): refusing to write there; trying again later",
        ]
        assert list(folder.iterdir()) == []
        os.chmod(folder, 0o755)
        d.tick()
    finally:
        d.close()
    assert f"shrinkd: trace written again to {folder}/trace.jsonl" in stream.getvalue()
    assert len(read_trace([str(folder / "trace.jsonl")]).polls) == 5  # nothing lost meanwhile
    assert d.polls == 5 and "poll_failed" not in d.events


def test_reload_starts_and_stops_the_writers(tree: Tree, folder: Path) -> None:
    d, _, clock = daemon(tree, ScriptedKernel(tree.proc, {}))
    from .configs import config_from

    d.reload_config = lambda: config_from(outputs(folder))
    d.start()
    try:
        d.tick()
        assert not d.outputs.active and d.tell.observer is None
        d.reload()
        clock.now += 1
        d.tick()
        assert d.outputs.active
        d.reload_config = lambda: config_from(RULES)
        d.reload()
        assert not d.outputs.active and d.tell.observer is None
    finally:
        d.close()
    recorded = read_trace([str(folder / "trace.jsonl")])
    assert len(recorded.polls) == 1 and next(e.kind for e in recorded.events) == "reloaded"
    assert (folder / "shrinkd.prom").exists()


HEAVY = ("systemd", "pyudev", "psutil", "matplotlib", "numpy", "yaml", "prometheus_client", "dataclasses")

# `shrinkd run` as the packaged launcher starts it, with the trace and the textfile on, stopped
# by SIGTERM after a few polls; then the modules it had loaded.
RUN = """\
import os, signal, sys, threading
before = set(sys.modules)
timer = threading.Timer(float(sys.argv[1]), lambda: os.kill(os.getpid(), signal.SIGTERM))
timer.daemon = True
timer.start()
from shrinkd.cli import main
code = main(sys.argv[2:])
loaded = set(sys.modules) - before
print(" ".join(sorted(loaded)))
sys.exit(code)
"""


def test_the_daemon_loads_none_of_the_heavier_libraries(tree: Tree, folder: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(outputs(folder, interval=1))
    result = subprocess.run(
        [sys.executable, "-c", RUN, "4", "run", "--dry-run", "--config", str(config),
         "--proc-root", str(tree.proc), "--sys-root", str(tree.sys)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert {"shrinkd.daemon", "shrinkd.trace", "shrinkd.prom", "shrinkd.safefile"} <= loaded  # the writers ran
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []
    assert len(read_trace([str(folder / "trace.jsonl")]).polls) >= 1
    assert (folder / "shrinkd.prom").exists()
