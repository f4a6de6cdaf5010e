"""shrinkd replay over traces recorded in a Debian 6.1 guest (tests/traces.py, tests/fixtures/traces/).

The recorded events are the daemon's own decisions on the same polls: replaying the trace
with the configuration it was recorded with must give the same conditions at the same
moments. For other configurations, the expected conditions are worked out here from the
trace's free lists with a plain loop (sustain, then hysteresis), independent of the policy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from shrinkd import metrics, replay
from shrinkd.events import PLANNED
from shrinkd.trace import Poll, Trace, read_trace

from .configs import config_from
from .fakekernel import REPO
from .test_daemon import RULES as DAEMON_RULES
from .test_policy import FRAGMENTED, RULE, normal

TRACES = REPO / "tests" / "fixtures" / "traces"
WORKLOADS = sorted(path.stem for path in TRACES.glob("*.yaml"))


def load(name: str) -> Tuple[Trace, str]:
    files = sorted(str(path) for path in TRACES.glob(f"{name}.jsonl*"))
    return read_trace(files), (TRACES / f"{name}.yaml").read_text()


def conditions(items: List[Any], trace: Trace) -> List[Tuple[float, str, str, str]]:
    """(the poll's time, kind, trigger, where) of each triggered and cleared event."""
    polls = [poll.t for poll in trace.polls]
    return [
        (
            max(t for t in polls if t <= item.t),
            item.kind,
            str(item.fields["trigger"]),
            f"{item.fields.get('node')} {item.fields.get('zone')} {item.fields.get('order')}",
        )
        for item in items
        if item.kind in ("triggered", "cleared")
    ]


def shrinkd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shrinkd", *args], capture_output=True, text=True, check=False, cwd=REPO)


def test_the_fixtures_are_there() -> None:
    assert WORKLOADS, f"no traces in {TRACES}: record them with python -m tests.traces"


@pytest.mark.parametrize("name", WORKLOADS)
def test_replay_with_the_recording_configuration_finds_what_the_daemon_found(name: str) -> None:
    trace, text = load(name)
    outcome = replay.replay(trace, config_from(text))
    recorded = conditions(trace.events, trace)
    assert recorded, "the recording saw no condition: the fixture is not worth replaying"
    assert conditions(outcome.told, trace) == recorded
    # The trace is of a daemon that acted: it compacted, and the replay does too.
    assert outcome.totals()["compactions"] >= 1 and outcome.recorded()["compactions"] >= 1


@pytest.mark.parametrize("name", WORKLOADS)
def test_replay_is_deterministic(name: str) -> None:
    files = sorted(str(path) for path in TRACES.glob(f"{name}.jsonl*"))
    config = str(TRACES / f"{name}.yaml")
    first = shrinkd("replay", *files, "--config", config, "--json")
    second = shrinkd("replay", *reversed(files), "--config", config, "--json")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert json.loads(first.stdout)["polls"] == len(read_trace(files).polls)


def expected_conditions(trace: Trace, zone: Tuple[int, str], order: int, trigger: int, clear: int, sustain: int) -> List[Tuple[float, str]]:
    """When a condition on the unusable index would start and end: `sustain` polls at or over `trigger`,
    then until at or below `clear` (hysteresis)."""
    found = []
    count, active = 0, False
    for poll in trace.polls:
        index = metrics.unusable_index(poll.obs.zones[zone].free, order)
        count = count + 1 if index >= trigger else 0
        if not active and count >= sustain:
            active = True
            found.append((poll.t, "triggered"))
        elif active and index <= clear:
            active, count = False, 0
            found.append((poll.t, "cleared"))
    return found


@pytest.mark.parametrize("name", WORKLOADS)
@pytest.mark.parametrize(("trigger", "clear", "sustain"), [(0.5, 0.3, 1), (0.8, 0.6, 3), (0.95, 0.9, 2)])
def test_a_candidate_s_conditions_are_those_the_free_lists_say(name: str, trigger: float, clear: float, sustain: int) -> None:
    trace, _ = load(name)
    candidate = config_from(
        "rules:\n"
        f"  - {{name: c, zones: [DMA32], orders: [9], unusable_index: {{trigger: {trigger}, clear: {clear}}}, sustain: {sustain}, min_zone_size: 1M}}\n"
    )
    outcome = replay.replay(trace, candidate)
    found = [(t, kind) for t, kind, trigger, _ in conditions(outcome.told, trace) if trigger == "c:unusable_index"]
    assert found == expected_conditions(trace, (0, "DMA32"), 9, round(trigger * 1000), round(clear * 1000), sustain)


@pytest.mark.parametrize("name", WORKLOADS)
def test_a_candidate_s_limits_are_the_policy_s(name: str) -> None:
    trace, text = load(name)
    base = text.replace("reclaim: {min: 8M, max_per_event: 32M, max_per_hour: 128M}", "reclaim: {min: 4M, max_per_event: 4M, max_per_hour: 4M}")
    assert base != text
    capped = replay.replay(trace, config_from(base.replace("guards: {cooldown: 15}", "guards: {cooldown: 0}")))
    reclaims = [item for item in capped.told if item.kind == "reclaimed"]
    assert len(reclaims) <= 1 and all(item.fields["requested_bytes"] == 4 << 20 for item in reclaims)
    assert capped.totals()["reclaim_asked_bytes"] <= 4 << 20
    if reclaims:
        skipped = [item for item in capped.told if item.kind == "skipped"]
        assert any("hourly reclaim cap reached" in str(item.fields["reason"]) for item in skipped)
    # Without compaction in the backends assumed, no compaction is replayed.
    no_compaction = replay.replay(trace, config_from(text), backends=["memory_reclaim"])
    assert no_compaction.totals()["compactions"] == 0
    assert no_compaction.backends == ["memory_reclaim"]


def test_replay_cli_prints_the_events_and_both_totals() -> None:
    name = WORKLOADS[0]
    files = sorted(str(path) for path in TRACES.glob(f"{name}.jsonl*"))
    result = shrinkd("replay", *files, "--config", str(TRACES / f"{name}.yaml"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"replay of {', '.join(sorted(files, key=lambda f: read_trace([f]).header['segment']))}: ")
    assert any(" triggered: node 0 zone " in line for line in lines)
    assert any(line.split()[:1] == ["compactions"] for line in lines)
    document: Dict[str, Any] = json.loads(shrinkd("replay", *files, "--config", str(TRACES / f"{name}.yaml"), "--json").stdout)
    table = {line[:24].strip(): line[24:].split() for line in lines if line[:24].strip() in ("compactions", "reclaims")}
    assert table["compactions"] == [str(document["replay"]["compactions"]), str(document["recorded"]["compactions"])]
    assert table["reclaims"] == [str(document["replay"]["reclaims"]), str(document["recorded"]["reclaims"])]


def test_replay_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    name = WORKLOADS[0]
    data = (TRACES / f"{name}.jsonl").read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(data[:-10])
    result = shrinkd("replay", str(cut))
    lines = data[:-10].count(b"\n") + 1
    assert result.returncode == 2
    assert result.stderr == f"shrinkd: {cut}:{lines}: truncated: the last line is incomplete (the file was cut short)\n"
    assert cut.read_bytes() == data[:-10]  # nothing touched
    foreign = tmp_path / "buddyinfo"
    foreign.write_text("Node 0, zone DMA 1 2 3\n")
    result = shrinkd("replay", str(foreign))
    assert (result.returncode, result.stderr) == (2, f"shrinkd: {foreign}:1: not a shrinkd trace (no 'shrinkd-trace' header on the first line)\n")
    result = shrinkd("replay", str(TRACES / f"{name}.jsonl"), "--backends", "compact,teleport")
    assert (result.returncode, result.stderr.count("\n")) == (2, 1) and "teleport" in result.stderr


def test_replay_backs_off_as_the_daemon_does_after_steps_not_after_skips() -> None:
    text = RULE.format(sustain=1, reclaim="true", min="4M", max_event="64M", max_hour="256M")
    header = {"page_size": 4096, "orders": {"huge": 9, "pageblock": 9, "costly": 3}, "wall": 0.0, "clock": 0.0}
    trace = Trace(["made here"], header, [Poll(0.0, normal(FRAGMENTED)), Poll(1.0, normal(FRAGMENTED))])
    # Compaction and reclaim change nothing in the next poll: the ladder is judged and backs off.
    stepped = replay.replay(trace, config_from(text), ["compact", "memory_reclaim"])
    # A replay acts on nothing: its steps are a dry run's events.
    assert [item.kind for item in stepped.told] == [
        "triggered",
        "would_compact",
        "would_reclaim",
        "would_compact",
        "backed_off",
    ]
    header["recording"] = {}
    assert f"{'backed off':24s}{1:>14d}{0:>14d}" in replay.render(stepped, ["test.yaml"], quiet=True).splitlines()
    # With no backend the ladder is one skip: nothing ran, nothing to judge.
    skipped = replay.replay(trace, config_from(text), [])
    assert [item.kind for item in skipped.told] == ["triggered", "skipped"]


# -- the daemon's own ladder, recorded live and replayed ------------------------------------

# The daemon tests' rule on DMA32 at order 9 (sustain 2), with a short cooldown, recorded.
LIVE_CONFIG = DAEMON_RULES.replace("cooldown: 60", "cooldown: 5") + "record: {path: __PATH__, interval: 1}\n"


def test_a_trace_the_daemon_recorded_replays_to_the_actions_it_took(tmp_path: Path) -> None:
    """The daemon runs on a fake tree whose free lists change as it acts: each compaction brings the
    zone below its clear level and, as the kernel counts compaction, raises compact_fail (a counter
    the default allocation_failures trigger watches). Twice the zone fragments again between polls.
    Replaying the trace it recorded, with the same configuration, must take the same actions at the
    same polls: among other things the daemon restarts its counters after its own actions (rebase),
    so its own compactions do not count as allocation failures, and the replay must not count them."""
    import io

    from shrinkd.daemon import Daemon
    from shrinkd.journal import Journal

    from .fakekernel import Clock, ScriptedKernel, Tree, install

    tree = Tree(tmp_path / "kernel")
    folder = tmp_path / "trace"
    folder.mkdir(mode=0o755)
    path = folder / "live.jsonl"
    text = LIVE_CONFIG.replace("__PATH__", str(path))
    kernel = ScriptedKernel(tree.proc, {"compact": ["6.1-frag1", "6.1-frag1", "6.1-frag1"]})

    def compaction_counted(name: str) -> None:
        if name == "compact":
            vmstat = tree.proc / "vmstat"
            lines = [
                f"compact_fail {int(line.split()[1]) + 7}" if line.startswith("compact_fail ") else line
                for line in vmstat.read_text().splitlines()
            ]
            vmstat.write_text("\n".join(lines) + "\n")

    kernel.hook = compaction_counted
    clock = Clock()
    d = Daemon(
        tree.procfs, config_from(text), Journal("stderr", stream=io.StringIO()),
        tunables=kernel, clock=clock, page_size=4096, uevents=False, kernel_log=None,
    )
    live: List[Tuple[float, str]] = []
    d.start()
    try:
        for n in range(40):
            if n in (12, 25):
                install(tree.proc, "6.1-hog")  # fragmented again
            seen = len(d.events)
            d.tick()
            live += [(clock.now, kind) for kind in d.events[seen:] if kind in replay.ACTIONS]
            clock.now += 1
    finally:
        d.close()
    assert [kind for _, kind in live] == ["compacted"] * 3, "the daemon did not act as the scenario means"

    outcome = replay.replay(read_trace([str(path)]), config_from(text))
    # A replay writes nothing: its steps are a dry run's events (would_compact for compacted, ...).
    told_back = [(item.t, PLANNED.get(item.kind, item.kind)) for item in outcome.told]
    assert [(t, kind) for t, kind in told_back if kind in replay.ACTIONS] == live
    # And what it told on the way, event for event: conditions, actions, no allocation failure.
    told = ("triggered", "cleared", "compacted", "reclaimed", "skipped", "allocation_failed")
    recorded = [(event.t, event.kind) for event in read_trace([str(path)]).events if event.kind in told]
    assert told_back == recorded
