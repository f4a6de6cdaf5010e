"""Allocation failures (the kernel's log and /proc/vmstat), prediction, and how often the daemon wakes.

The kernel's own records are in tests/fixtures/kmsg/ (captured from Debian's kernels by
tests/test_defaults_vm.py); the older and interleaved formats below are as kernels printed
them in public bug reports (cited beside each). The live behaviour is in tests/test_defaults_vm.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from shrinkd import parse
from shrinkd.conditions import AllocationFailures, Exhaustion
from shrinkd.errors import InputError
from shrinkd.events import notice_text
from shrinkd.kmsg import KernelLog
from shrinkd.policy import COMPACT, Policy, Step
from shrinkd.view import highest_zone

from .configs import current
from .fakekernel import ScriptedKernel, Tree, install
from .test_daemon import daemon
from .test_policy import BOTH, FRAGMENTED, HEALTHY, kinds, normal

REPO = Path(__file__).resolve().parent.parent
CAPTURED = sorted((REPO / "tests" / "fixtures" / "kmsg").glob("*.txt"))


# -- the kernel's records -------------------------------------------------------------------


@pytest.mark.parametrize("path", CAPTURED, ids=lambda p: p.name)
def test_records_captured_from_debian_kernels(path: Path) -> None:
    """Each file: a raw /dev/kmsg record, then the order, mode and process it reports."""
    record, order, mode, process = path.read_text().splitlines()[:4]
    failure = parse.allocation_failure(parse.parse_kmsg_record(record.encode()))
    assert failure is not None
    assert (str(failure.order), failure.mode, failure.process) == (order, mode, process)


def test_kmsg_record_format() -> None:
    record = parse.parse_kmsg_record(b"4,2817,1403817034,-;bash: hello\n SUBSYSTEM=x\n")
    assert (record.level, record.seq, record.ts_usec, record.message) == (4, 2817, 1403817034, "bash: hello")
    assert parse.parse_kmsg_record(b"12,1,2,c;x").level == 4  # facility bits removed
    for bad in (b"no semicolon", b"4,2;short head", b"a,b,c,-;not numbers"):
        with pytest.raises(InputError) as caught:
            parse.parse_kmsg_record(bad)
        assert str(caught.value).startswith("/dev/kmsg: expected")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # earlyoom issue #220, Linux 5.9.
        (
            "earlyoom: page allocation failure: order:0, mode:0x800(GFP_NOWAIT), nodemask=(null),cpuset=/,mems_allowed=0",
            (0, "0x800(GFP_NOWAIT)", "earlyoom", "Normal"),
        ),
        # node_exporter issue #2990, a 3.10 kernel: a period, and no flag names.
        ("node_exporter: page allocation failure. order:5, mode:0xd0", (5, "0xd0", "node_exporter", "Normal")),
        # dCache issue #3787, Linux 4.9: two CPUs' lines interleaved, the process name on another line.
        ("page allocation failure: order:0, mode:0x2080020(GFP_ATOMIC)", (0, "0x2080020(GFP_ATOMIC)", "", "Normal")),
    ],
)
def test_allocation_failure_formats(message: str, expected: Tuple[int, str, str, str]) -> None:
    failure = parse.allocation_failure(parse.KmsgRecord(4, 1, 99, message))
    assert failure is not None
    assert (failure.order, failure.mode, failure.process, failure.zone) == expected


def test_other_messages_are_not_failures() -> None:
    for message in (
        "shrinkmem: reclaimed 100 MB",
        "page allocation failure: order:x",
        "page allocation stalls for 10s",
    ):
        assert parse.allocation_failure(parse.KmsgRecord(4, 1, 1, message)) is None


def test_the_zone_a_request_may_use() -> None:
    assert parse.gfp_zone("0xcc0(GFP_KERNEL)") == "Normal"
    assert parse.gfp_zone("0x100cca(GFP_HIGHUSER_MOVABLE)") == "Movable"
    assert parse.gfp_zone("0x4(GFP_DMA32)") == "DMA32"
    assert parse.gfp_zone("0x40cc0(GFP_KERNEL|__GFP_COMP)|__GFP_DMA") == "DMA"
    # What this kernel has decides: no Movable or HighMem zone -> Normal; no Normal (arm64 with 1 GB) -> DMA.
    assert highest_zone("Movable", ["DMA", "DMA32", "Normal"]) == "Normal"
    assert highest_zone("Normal", ["DMA"]) == "DMA"
    assert highest_zone("HighMem", ["DMA", "Normal", "HighMem"]) == "HighMem"


@pytest.fixture
def log_pair() -> Iterator[Tuple[KernelLog, socket.socket]]:
    """A KernelLog reading a datagram socket: one record per read, as /dev/kmsg gives them."""
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    log = KernelLog("/dev/kmsg", fd=os.dup(ours.fileno()))
    ours.close()
    yield log, kernel
    log.close()
    kernel.close()


FAILURE = b"4,900,5000000,-;bash: page allocation failure: order:9, mode:0x800(GFP_NOWAIT), nodemask=(null)\n"


def test_kernel_log_keeps_the_failures_among_its_records(log_pair: Tuple[KernelLog, socket.socket]) -> None:
    log, kernel = log_pair
    for record in (
        b"6,898,4000000,-;usb 1-1: new device\n",
        FAILURE,
        b"garbage without a header",
        b"4,901,5000100,c;x\n",
    ):
        kernel.send(record)
    found = log.read()
    assert [(f.order, f.process, f.ts_usec) for f in found] == [(9, "bash", 5000000)]
    assert log.unreadable == 1
    assert log.read() == []  # nothing more pending


# -- the policy -------------------------------------------------------------------------------


def failure(order: int = 9) -> parse.AllocationFailure:
    return parse.AllocationFailure(order, "0x800(GFP_NOWAIT)", "Normal", "bash", 5000000)


ONLY_FAILURES = "rules: []\nfailures: {counters: [compact_fail, compact_stall, thp_fault_fallback]}\n"


def test_each_reported_failure_is_told_and_the_trigger_compacts_every_node() -> None:
    p = Policy(current(ONLY_FAILURES), 4096)
    plan = p.evaluate(normal(HEALTHY).replace(failures=(failure(),)), 0.0)
    assert kinds(plan) == ["allocation_failed", "triggered"]
    told = plan.notices[0]
    assert notice_text(told) == (
        "allocation failure reported by the kernel: order 9 in zone Normal for bash (mode 0x800(GFP_NOWAIT))"
    )
    assert dict(told.fields)["ORDER"] == "9" and dict(told.fields)["SOURCE"] == "kernel_log"
    (decision,) = plan.decisions
    assert decision.source.name == "allocation_failures" and decision.value == 1
    # Compaction of every node, and nothing more: a global trigger never reclaims.
    done: List[Step] = []
    while (step := p.next_step(decision, normal(HEALTHY), done, BOTH, 0.5)) is not None:
        done.append(step)
    assert done == [Step(COMPACT, node=None)]


def test_an_order_0_failure_is_told_but_does_not_trigger() -> None:
    p = Policy(current(ONLY_FAILURES), 4096)
    plan = p.evaluate(normal(HEALTHY).replace(failures=(failure(order=0),)), 0.0)
    assert kinds(plan) == ["allocation_failed"] and plan.decisions == ()


def test_the_trigger_clears_once_a_window_passes_without_a_failure() -> None:
    p = Policy(current(ONLY_FAILURES), 4096)
    assert kinds(p.evaluate(normal(HEALTHY).replace(failures=(failure(),)), 0.0)) == ["allocation_failed", "triggered"]
    assert kinds(p.evaluate(normal(HEALTHY), 9.0)) == []  # still within the 10 s window
    assert kinds(p.evaluate(normal(HEALTHY), 10.5)) == ["cleared"]


def test_counter_growth_is_told_per_counter_and_counts_toward_the_trigger() -> None:
    text = ONLY_FAILURES + "triggers:\n  allocation_failures: {counters: [compact_fail], count: 3}\n"
    p = Policy(current(text), 4096)
    assert kinds(p.evaluate(normal(HEALTHY, vmstat={"compact_fail": 10, "compact_stall": 50}), 0.0)) == []  # baseline
    plan = p.evaluate(normal(HEALTHY, vmstat={"compact_fail": 12, "compact_stall": 58}), 5.0)
    assert [notice_text(n) for n in plan.notices] == [
        "allocation failures counted by the kernel: compact_fail +2",
        "allocation failures counted by the kernel: compact_stall +8",
    ]
    assert plan.decisions == ()  # 2 of 3 (compact_stall is told but not counted by this trigger)
    plan = p.evaluate(normal(HEALTHY, vmstat={"compact_fail": 13, "compact_stall": 58}), 8.0)
    assert kinds(plan) == ["allocation_failed", "triggered"]  # 3 within 10 s


def test_a_report_after_an_action_is_answered_within_the_cooldown_once_a_window_has_passed() -> None:
    """Huge-page faults falling back (a counter) start a compaction and its 60 s cooldown; a failure the
    kernel then reports in its log is answered at once, not at the cooldown's end, and a stream of
    reports at most once per window (10 s); the counters alone wait out the cooldown."""
    p = Policy(current(), 4096)
    assert p.evaluate(normal(HEALTHY, vmstat={"thp_fault_fallback": 100}), 0.0).decisions == ()  # baseline
    plan = p.evaluate(normal(HEALTHY, vmstat={"thp_fault_fallback": 108}), 1.0)
    (decision,) = plan.decisions
    p.acted(decision, 1.0)  # compacted for the counter
    # More fallbacks within the cooldown: the trigger holds, no action.
    assert p.evaluate(normal(HEALTHY, vmstat={"thp_fault_fallback": 120}), 5.0).decisions == ()
    # The kernel reports a failure 30 s after the action: answered in that poll.
    plan = p.evaluate(normal(HEALTHY, vmstat={"thp_fault_fallback": 120}).replace(failures=(failure(),)), 31.0)
    (decision,) = plan.decisions
    assert decision.source.name == "allocation_failures"
    p.acted(decision, 31.0)
    # Another report 4 s later: within the window of that action, so it waits...
    later = normal(HEALTHY, vmstat={"thp_fault_fallback": 120})
    assert p.evaluate(later.replace(failures=(failure(),)), 35.0).decisions == ()
    assert p.evaluate(later, 38.0).decisions == ()
    # ...until 10 s after it, while the report is still within the trigger's window.
    assert len(p.evaluate(later, 41.0).decisions) == 1
    # Counter growth alone after an action waits for the cooldown's end.
    q = Policy(current(), 4096)
    q.evaluate(normal(HEALTHY, vmstat={"thp_fault_fallback": 100}), 0.0)
    (decision,) = q.evaluate(normal(HEALTHY, vmstat={"thp_fault_fallback": 108}), 1.0).decisions
    q.acted(decision, 1.0)
    growing = [(t, 108 + int(t)) for t in (20.0, 40.0, 55.0, 61.0)]
    acted = [t for t, value in growing if q.evaluate(normal(HEALTHY, vmstat={"thp_fault_fallback": value}), t).decisions]
    assert acted == [61.0]


def test_a_trigger_counter_must_be_watched() -> None:
    from shrinkd.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        current("failures: {counters: []}\n")
    assert str(caught.value) == (
        "test.yaml:1: triggers.allocation_failures.counters[0]: compact_fail is not in failures.counters (watched: none)"
    )


def test_the_default_trigger_is_on() -> None:
    (trigger,) = current().config.triggers
    assert isinstance(trigger, AllocationFailures)
    assert (trigger.min_order, trigger.watched, trigger.count, trigger.window) == (
        1,
        ("compact_fail", "thp_fault_fallback"),
        1,
        10.0,
    )


# -- prediction ---------------------------------------------------------------------------------


PREDICT = """
triggers: {allocation_failures: null}
rules:
  - {name: p, zones: [Normal], orders: [9], predict: {horizon: 60}, reclaim: false}
"""


def with_blocks(count: int) -> List[int]:
    """Free blocks: 1000 order-0 pages and `count` order-9 blocks."""
    return [1000] + [0] * 8 + [count, 0]


def test_free_blocks_running_out_are_predicted_and_compacted_for() -> None:
    p = Policy(current(PREDICT), 4096)
    # 40 blocks, losing 2 every 10 s: a least-squares slope of -0.2/s; at 34, 34 / 0.2 = 170 s: beyond 60.
    for step, blocks in enumerate((40, 38, 36, 34)):
        plan = p.evaluate(normal(with_blocks(blocks)), 10.0 * step)
        assert plan.decisions == ()
    source = next(iter(p.watches))
    assert isinstance(source, Exhaustion) and p.watches[source].value == pytest.approx(170)
    assert source.text(170) == "170 s to the last free order-9 block"
    # Losing 8 every 10 s from there. At 26 (t = 40) the line through 40, 38, 36, 34, 26 falls
    # 0.32 a second: 26 / 0.32 = 81 s, beyond 60. At 18 (t = 50) it falls 740 / 1750 = 0.423 a
    # second: 18 / 0.423 = 42.6 s, within the horizon.
    assert p.evaluate(normal(with_blocks(26)), 40.0).decisions == ()
    assert p.watches[source].value == pytest.approx(81.25)
    plan = p.evaluate(normal(with_blocks(18)), 50.0)
    assert kinds(plan) == ["triggered"]
    (decision,) = plan.decisions
    assert decision.value == pytest.approx(18 / (740 / 1750))
    assert p.next_step(decision, normal(with_blocks(18)), [], BOTH, 51.0) == Step(COMPACT, node=0)
    # After compaction one observation cannot tell a trend: the ladder ends there.
    assert p.next_step(decision, normal(with_blocks(60)), [Step(COMPACT, node=0)], BOTH, 52.0) is None


def test_no_prediction_without_enough_polls_or_a_downward_trend() -> None:
    p = Policy(current(PREDICT), 4096)
    p.evaluate(normal(with_blocks(40)), 0.0)
    source = next(iter(p.watches))
    assert p.watches[source].value == float("inf")  # one poll: no trend yet
    for step, blocks in enumerate((40, 41, 40, 42, 41), start=1):
        p.evaluate(normal(with_blocks(blocks)), 10.0 * step)
    assert p.watches[source].value == float("inf")  # not shrinking
    assert source.text(float("inf")) == "no shortage in sight" and source.field(float("inf")) == "inf"


def test_no_block_left_is_a_prediction_of_zero() -> None:
    p = Policy(current(PREDICT), 4096)
    plan = p.evaluate(normal(FRAGMENTED), 0.0)
    assert kinds(plan) == ["triggered"] and plan.decisions[0].value == 0


# -- the daemon: woken by the kernel's log -------------------------------------------------------


def test_a_reported_failure_wakes_the_daemon_and_it_compacts_in_that_poll(
    tree: Tree, log_pair: Tuple[KernelLog, socket.socket]
) -> None:
    log, kernel_side = log_pair
    install(tree.proc, "6.1-idle")
    kernel = ScriptedKernel(tree.proc, {})
    d, _, clock = daemon(tree, kernel, text="rules: []\nlog: {target: stderr}\npsi: {wakeup: false}\n", kernel_log=log)
    d.start()
    try:
        d.tick()
        kernel_side.send(FAILURE)
        d.wait(3600)  # returns at once: the record is there
        assert d.wakes[-1][1] == "kernel_log"
        clock.now += 1
        d.tick()
    finally:
        d.close()
    assert d.events == ["started", "allocation_failed", "triggered", "compacted"]
    assert kernel.writes == [("compact_memory", "1")]
    assert d.wake_rates()["kernel_log"] > 0


def test_the_state_file_and_the_status_line_say_how_often_it_wakes(tree: Tree, tmp_path: Path) -> None:
    install(tree.proc, "6.1-idle")
    state = tmp_path / "status.json"
    d, _, clock = daemon(tree, text="log: {target: stderr}\npsi: {wakeup: false}\n", state_path=str(state))
    d.start()
    try:
        for cause in ("timer", "timer", "watchdog"):
            clock.now += 20
            d._woke(cause)
        d.tick()
    finally:
        d.close()
    written = json.loads(state.read_text())
    # 3 wakes over the 60 s since the start: 2 timer and 1 watchdog a minute.
    assert written["wakes_per_minute"] == {"timer": 2.0, "watchdog": 1.0}
    assert written["pid"] == os.getpid() and written["polls"] == 1
    names = {c["name"] for c in written["conditions"]}
    assert {"costly-order:extfrag_index", "huge-page:unusable_index", "huge-page:exhaustion"} <= names
    assert d.status_line().endswith("; wakes 3.0/min (timer 2.0, watchdog 1.0)")


def test_shrinkd_status_shows_the_running_daemon(tmp_path: Path) -> None:
    state = {
        "pid": os.getpid(),
        "uptime_s": 600.0,
        "polls": 12,
        "dry_run": False,
        "config": ["<built-in defaults>"],
        "backends": ["compact"],
        "wakes_per_minute": {"timer": 0.5, "kernel_log": 0.1},
        "worst": "",
        "last_action": "compaction of all nodes at 12:00:01",
        "conditions": [
            {
                "name": "huge-page:exhaustion",
                "where": "node 0 zone Normal order 9",
                "value": "240",
                "text": "240 s to the last free order-9 block",
                "active": False,
                "of_trigger": 1.25,
            }
        ],
    }
    (tmp_path / "status.json").write_text(json.dumps(state))
    env = {**os.environ, "RUNTIME_DIRECTORY": str(tmp_path)}
    run = [sys.executable, "-m", "shrinkd", "status"]
    table = subprocess.run(run, cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    assert "Daemon: pid " in table and "  wakes 0.6/min (timer 0.5, kernel_log 0.1)\n" in table
    assert (
        "  huge-page:exhaustion node 0 zone Normal order 9: 240 s to the last free order-9 block (125% of trigger)"
        in table
    )
    document = json.loads(
        subprocess.run([*run, "--json"], cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    )
    assert document["daemon"]["polls"] == 12
    # A state file whose process is gone is not shown.
    (tmp_path / "status.json").write_text(json.dumps({**state, "pid": 2**22 + 1}))
    document = json.loads(
        subprocess.run([*run, "--json"], cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    )
    assert "daemon" not in document


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path / "kernel")
