"""Allocation failures as the kernel reports them, and shrinkd's answer, in real kernels.

One boot per kernel (Debian 6.1 and 6.12 under QEMU), journald started in the guest. The
guest fragments memory (tests/workloads.py `compactable`: no free huge-page block left),
starts `shrinkd run` with the built-in defaults, takes the free huge-page blocks again
(shrinkd's own rules may have compacted meanwhile), then asks for an order-9 block with
GFP_NOWAIT through a test module (tests/helpers/allocfail): the allocation fails, the
kernel logs `page allocation failure: order:9`, and shrinkd, woken by its kernel log,
reports it (allocation_failed) and compacts for the allocation_failures trigger. The raw
/dev/kmsg record is kept: it is the parser's fixture (tests/fixtures/kmsg/).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from shrinkd import parse
from shrinkd.journal import MESSAGE_IDS
from tests import vm
from tests.workloads import data_disk

pytestmark = pytest.mark.vm

SCRIPT = r"""
exec > >(tee "$OUT/log.txt") 2>&1
set -u
fail() { echo "FAIL: $*"; exit 1; }
wait_for() { local tries=$1; shift; for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }
mkdir -p /run/systemd/journal /var/log/journal
/lib/systemd/systemd-journald &
wait_for 60 test -S /run/systemd/journal/socket || fail "journald"
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
mount /dev/vda /mnt || fail "mount the data disk"
insmod "$OUT/allocfail/shrinkd_allocfail.ko" || fail "insmod allocfail"

$PY -m tests.workloads guest compactable /mnt "$OUT/ready" &
WPID=$!
wait_for 1200 test -e "$OUT/ready" || fail "workload"
cat /proc/buddyinfo

$PY -m shrinkd run > "$OUT/shrinkd.txt" 2>&1 &
DPID=$!
wait_for 240 grep -q "started: " "$OUT/shrinkd.txt" || wait_for 240 journalctl -q -o cat SYSLOG_IDENTIFIER=shrinkd -g "started: " || fail "shrinkd did not start"
sleep 10  # shrinkd's own rules may compact the fragmented state meanwhile: take the huge-page blocks again
$PY -m tests.capture hog "$OUT/hog-ready" &
HPID=$!
wait_for 600 test -e "$OUT/hog-ready" || fail "hog"
awk '{print $1}' /proc/uptime > "$OUT/failed-at.txt"
echo 9 > /sys/module/shrinkd_allocfail/parameters/allocate && fail "the order-9 allocation succeeded"
wait_for 120 journalctl -q -o cat SYSLOG_IDENTIFIER=shrinkd -g "^compacted" || echo "no compaction seen"
sleep 2
kill -TERM "$DPID"; wait "$DPID"
kill -TERM "$WPID" "$HPID"; wait "$WPID" "$HPID"
dd if=/dev/kmsg iflag=nonblock bs=8192 2>/dev/null | grep -a "page allocation failure" > "$OUT/kmsg-records.txt"
journalctl --no-pager -o json SYSLOG_IDENTIFIER=shrinkd > "$OUT/journal.json"
journalctl --no-pager -o cat SYSLOG_IDENTIFIER=shrinkd
echo done > "$OUT/done"
"""


@pytest.fixture(scope="module", params=["6.1", "6.12"])
def guest(request: pytest.FixtureRequest) -> Iterator[Path]:
    reason = vm.available()
    if reason is not None:
        pytest.skip(reason)
    kernel: str = request.param
    out = vm.new_run_dir(f"failures-{kernel}-")
    vm.build_module(out, kernel, vm.REPO / "tests" / "helpers" / "allocfail", "shrinkd_allocfail")
    disk = data_disk(out)
    result = vm.run_in_vm(SCRIPT, kernel=kernel, memory="1G", disks=[disk], out_dir=out, timeout=1500)
    disk.unlink()
    print(f"guest ran {result.seconds:.0f} s; files in {out}")
    result.check()
    yield out


def test_the_kernel_s_report_parses(guest: Path) -> None:
    records = [line for line in (guest / "kmsg-records.txt").read_text().splitlines() if line]
    assert records, "the kernel logged no allocation failure"
    failure = parse.allocation_failure(parse.parse_kmsg_record(records[-1].encode()))
    assert failure is not None
    assert failure.order == 9 and "GFP_NOWAIT" in failure.mode
    assert failure.process == "bash"  # the shell that wrote to the module parameter


def test_the_failure_is_an_event_with_its_fields(guest: Path) -> None:
    journal = vm.journal_entries(guest / "journal.json")
    failed = [e for e in journal if e.get("SHRINKD_EVENT") == "allocation_failed" and e["SHRINKD_SOURCE"] == "kernel_log"]
    assert len(failed) == 1, [e["MESSAGE"] for e in journal]
    event = failed[0]
    assert event["MESSAGE_ID"] == MESSAGE_IDS["allocation_failed"]
    assert (event["SHRINKD_ORDER"], event["SHRINKD_PROCESS"]) == ("9", "bash")
    assert event["SHRINKD_ZONE"] in ("Normal", "DMA32")  # GFP_NOWAIT: up to Normal, or DMA32 where Normal is absent
    print(event["MESSAGE"])


def test_shrinkd_compacts_at_once_for_the_failure(guest: Path) -> None:
    journal = vm.journal_entries(guest / "journal.json")
    failed = next(e for e in journal if e.get("SHRINKD_EVENT") == "allocation_failed")
    compacted = [
        e for e in journal if e.get("SHRINKD_EVENT") == "compacted" and e["SHRINKD_TRIGGER"] == "allocation_failures"
    ]
    assert compacted, [e["MESSAGE"] for e in journal]
    # The kernel log woke shrinkd: it compacted long before its next timed poll (the built-in slowest
    # poll is 120 s), and before anything else was logged for it.
    failed_at = float((guest / "failed-at.txt").read_text()) * 1e6
    started_at = int(compacted[0]["__MONOTONIC_TIMESTAMP"]) - float(compacted[0]["SHRINKD_DURATION_MS"]) * 1000
    reaction = (started_at - failed_at) / 1e6
    print(f"allocation failure -> compaction started after {reaction:.2f} s (software-emulated guest)")
    assert int(failed["__MONOTONIC_TIMESTAMP"]) <= int(compacted[0]["__MONOTONIC_TIMESTAMP"])
    assert reaction < 30
    kinds = [e["SHRINKD_EVENT"] for e in journal if e.get("SHRINKD_EVENT")]
    assert kinds.index("allocation_failed") < kinds.index("compacted")
