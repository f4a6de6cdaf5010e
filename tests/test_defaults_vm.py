"""The built-in configuration in real kernels: quiet on a healthy system, compaction where it
suffices, and an allocation failure answered at once.

Debian's 6.1 and 6.12 kernels boot under QEMU with journald and a data disk, and `shrinkd run`
runs with no configuration file (the built-in defaults), while the guest goes through the
workloads of tests/workloads.py:

  healthy      page cache only: shrinkd must not act;
  compactable  page cache and fragmented anonymous memory (no free huge-page block left):
               shrinkd must compact and must not reclaim;
  a failure    a test module (tests/helpers/allocfail) takes every free huge-page block,
               then asks for one more without direct reclaim: the kernel logs `page
               allocation failure` and shrinkd reports it (allocation_failed) with its
               order, mode, zone and process.

The report is answered by a compaction even when the workload's own huge-page fallbacks
(vmstat counters the built-in allocation_failures trigger also counts) started a compaction
and its cooldown shortly before: a report after an action renews the trigger once its window
(10 s) has passed: the compaction starts well before a timed poll or a cooldown's end
could have brought it (bench/reaction.py measures how soon).

Where compaction cannot fix it (tests/workloads.py `unfixable`) the defaults reclaim a bounded
amount: tests/test_defaults_unfixable_vm.py. The raw /dev/kmsg records are kept as the
parser's fixtures (tests/fixtures/kmsg/).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from shrinkd import configload, parse
from shrinkd.journal import MESSAGE_IDS
from tests import vm
from tests.workloads import data_disk

pytestmark = pytest.mark.vm

COMMON = r"""
exec > >(tee "$OUT/log.txt") 2>&1
set -u
fail() { echo "FAIL: $*"; exit 1; }
step() { echo "== $(awk '{print $1}' /proc/uptime) $*"; }
wait_for() { local tries=$1; shift; for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }
logged() { journalctl -q -o cat SYSLOG_IDENTIFIER=shrinkd -g "$1"; }
more_than() { [ "$(logged "$1" | wc -l)" -gt "$2" ]; }  # more_than PATTERN N: over N lines logged match
mkdir -p /run/systemd/journal /var/log/journal
/lib/systemd/systemd-journald &
wait_for 120 test -S /run/systemd/journal/socket || fail "journald"
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
mount /dev/vda /mnt || fail "mount the data disk"
workload() {  # workload NAME: build it in the background, held until killed
    rm -f "$OUT/ready"
    $PY -m tests.workloads guest "$1" /mnt "$OUT/ready" &
    WPID=$!
    wait_for 2400 test -e "$OUT/ready" || fail "workload $1"
    cat /proc/buddyinfo
}
start_shrinkd() {
    $PY -m shrinkd run &
    DPID=$!
    wait_for 600 logged "^started: " || fail "shrinkd did not start"
}
finish() {
    kill -TERM "$DPID"; wait "$DPID"
    dd if=/dev/kmsg iflag=nonblock bs=8192 2>/dev/null | grep -a "page allocation failure" > "$OUT/kmsg-records.txt"
    journalctl --no-pager -o json SYSLOG_IDENTIFIER=shrinkd > "$OUT/journal.json"
    journalctl --no-pager -o cat SYSLOG_IDENTIFIER=shrinkd
    echo done > "$OUT/done"
}
"""

HEALTHY_COMPACTABLE_FAILURE = r"""
insmod "$OUT/allocfail/shrinkd_allocfail.ko" || fail "insmod allocfail"
step healthy
workload healthy
start_shrinkd
sleep 60
step "healthy done"
kill -TERM "$WPID"; wait "$WPID"
step compactable
workload compactable
wait_for 600 logged "^compacted node" || echo "no compaction for the fragmented state"
sleep 5
step failure
# The module takes every free huge-page block (silently) and then asks for one more, which
# fails: the kernel's report is what the daemon must answer.
before=$(logged "for allocation_failures" | wc -l)
echo 9 > /sys/module/shrinkd_allocfail/parameters/allocate && fail "the order-9 allocation succeeded"
wait_for 240 logged "^allocation failure reported by the kernel: order 9" || echo "no allocation_failed event"
wait_for 120 more_than "for allocation_failures" "$before" || echo "no compaction for the failure"
sleep 2
kill -TERM "$WPID"; wait "$WPID"
finish
"""

def boot(name: str, kernel: str, script: str, slab_files: int = 0, cpus: int = 2, allocfail: bool = True) -> Path:
    """One guest running COMMON + `script` with the data disk (`slab_files` for `unfixable`), and
    the allocation-failure test module built when `allocfail`; its run directory."""
    out = vm.new_run_dir(f"defaults-{name}-{kernel}-")
    if allocfail:
        vm.build_module(out, kernel, vm.REPO / "tests" / "helpers" / "allocfail", "shrinkd_allocfail")
    disk = data_disk(out, slab_files=slab_files)
    result = vm.run_in_vm(
        COMMON + script, kernel=kernel, memory="1G", cpus=cpus, disks=[disk], out_dir=out, timeout=2400
    )
    disk.unlink()
    print(f"guest ran {result.seconds:.0f} s; files in {out}")
    result.check()
    return out


@pytest.fixture(scope="module", params=["6.1", "6.12"])
def guest(request: pytest.FixtureRequest) -> Iterator[Path]:
    reason = vm.available()
    if reason is not None:
        pytest.skip(reason)
    yield boot("failure", request.param, HEALTHY_COMPACTABLE_FAILURE)


def events(out: Path) -> List[Dict[str, Any]]:
    return [e for e in vm.journal_entries(out / "journal.json") if e.get("SHRINKD_EVENT")]


def during(out: Path, start: str, end: str) -> List[Dict[str, Any]]:
    """The events between two `== UPTIME step` marks of the guest's log (monotonic seconds)."""
    marks = {
        line.split(" ", 2)[2]: float(line.split()[1]) * 1e6
        for line in (out / "log.txt").read_text().splitlines()
        if line.startswith("== ")
    }
    return [e for e in events(out) if marks[start] <= int(e["__MONOTONIC_TIMESTAMP"]) < marks[end]]


def reclaims_follow_compactions_that_fell_short(found: List[Dict[str, Any]]) -> None:
    """Never a reclaim where the compaction before it was enough: each one follows a compaction of
    its own ladder (same trigger) that left the value over the condition's clear level."""
    ladder = [e for e in found if e["SHRINKD_EVENT"] in ("compacted", "reclaimed") and "SHRINKD_TRIGGER" in e]
    shown = [e["MESSAGE"] for e in ladder]
    for before, event in zip(ladder, ladder[1:]):
        if event["SHRINKD_EVENT"] == "reclaimed":
            assert before["SHRINKD_EVENT"] == "compacted" and before["SHRINKD_TRIGGER"] == event["SHRINKD_TRIGGER"], shown
            assert float(before["SHRINKD_AFTER"]) > float(before["SHRINKD_CLEAR"]), shown


def test_a_healthy_system_is_left_alone(guest: Path) -> None:
    acted = [e["MESSAGE"] for e in during(guest, "healthy", "healthy done") if e["SHRINKD_EVENT"] != "started"]
    assert acted == []


def test_compactable_fragmentation_is_compacted_before_any_reclaim(guest: Path) -> None:
    found = during(guest, "compactable", "failure")
    shown = [e["MESSAGE"] for e in found]
    assert "compacted" in [e["SHRINKD_EVENT"] for e in found], shown
    # Usually one compaction fixes this state (0.71 -> 0.03 in the outcome study on Debian 6.1)
    # and nothing is reclaimed. It is not always compactable when the daemon gets to it: one 6.12
    # boot's compactions left it at 0.70, and one 6.1 boot's first compaction took it from 0.855
    # to 0.960. The ladder then reclaims, and only then.
    reclaims_follow_compactions_that_fell_short(found)


def test_the_kernel_s_report_parses(guest: Path) -> None:
    records = [line for line in (guest / "kmsg-records.txt").read_text().splitlines() if line]
    assert records, "the kernel logged no allocation failure"
    failure = parse.allocation_failure(parse.parse_kmsg_record(records[-1].encode()))
    assert failure is not None
    # 6.1 names the mode GFP_NOWAIT; 6.12.117's GFP_NOWAIT has __GFP_NOWARN, so the module asks
    # for its flag alone, which that kernel prints by name.
    assert failure.order == 9 and ("GFP_NOWAIT" in failure.mode or "__GFP_KSWAPD_RECLAIM" in failure.mode)
    assert failure.process == "bash"  # the shell that wrote to the module parameter


def test_the_failure_is_answered_by_a_compaction(guest: Path) -> None:
    found = events(guest)
    reported = next(
        i for i, e in enumerate(found) if e["SHRINKD_EVENT"] == "allocation_failed" and e["SHRINKD_SOURCE"] == "kernel_log"
    )
    # The huge-page rule may act in the same poll (the module held every free huge-page block):
    # what is checked is the allocation_failures trigger's own answer, a compaction.
    after = [
        e
        for e in found[reported:]
        if e["SHRINKD_EVENT"] in ("compacted", "reclaimed") and e.get("SHRINKD_TRIGGER") == "allocation_failures"
    ]
    assert after and after[0]["SHRINKD_EVENT"] == "compacted", [e["MESSAGE"] for e in found[reported:]]
    # Woken by the kernel's log and not held back by a cooldown: the compaction starts long before
    # the next timed poll could come (the built-in slowest is 120 s) or a cooldown end (60 s). Timed
    # from the kernel's own record of the failure (printk's clock, the guest's monotonic clock), not
    # from the write to the module, whose taking of every free block is the module's own time.
    reported_at = int(found[reported]["SHRINKD_KERNEL_TIME_US"]) / 1e6
    started_at = (int(after[0]["__MONOTONIC_TIMESTAMP"]) - float(after[0]["SHRINKD_DURATION_MS"]) * 1000) / 1e6
    print(f"allocation failure -> compaction started after {started_at - reported_at:.2f} s (software-emulated guest)")
    assert started_at - reported_at < configload.builtin().poll.max_interval / 4


def test_the_failure_is_an_event_with_its_fields(guest: Path) -> None:
    failed = [
        e for e in events(guest) if e["SHRINKD_EVENT"] == "allocation_failed" and e["SHRINKD_SOURCE"] == "kernel_log"
    ]
    assert len(failed) == 1, [e["MESSAGE"] for e in events(guest)]
    event = failed[0]
    assert event["MESSAGE_ID"] == MESSAGE_IDS["allocation_failed"]
    assert (event["SHRINKD_ORDER"], event["SHRINKD_PROCESS"]) == ("9", "bash")
    # GFP_NOWAIT may use zones up to Normal; a 1 GB x86 guest has DMA and DMA32 only.
    assert event["SHRINKD_ZONE"] == "DMA32"
    print(event["MESSAGE"])
