"""shrinkd run in a real kernel: Debian 6.1 under QEMU, with journald started in the guest.

One boot. The guest fills the page cache from an ext4 disk, fragments memory
(tests/capture.py's fragmenter and huge-page hog: every free block of order 9
or more taken, the rest in order-0 holes), and runs `shrinkd run --once` with
a rule that this state crosses, first without the shrinkmem module (reclaim
goes to the root cgroup's memory.reclaim) and then with it loaded. The
kernel's own index (debugfs extfrag/unusable_index) is read before and after
each run, as the oracle. Then the daemon runs in the background while the
module is removed and loaded again and a memory block goes offline and
online, and SIGTERM stops it. The host test reads the journal entries back.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from shrinkd.journal import MESSAGE_IDS
from shrinkd.shrinkmem import ABI_VERSION
from tests import vm
from tests.kernel_oracle import parse_debugfs_index

pytestmark = pytest.mark.vm

KERNEL = "6.1"

ONCE = """\
rules:
  - name: vm-huge
    zones: [DMA32]
    orders: [9]
    unusable_index: {trigger: 0.5, clear: 0.01}
    sustain: 1
# The module first, as a board without memory.reclaim has it (the built-in order puts it after
# memory.reclaim): the first run, without the module, falls back to memory.reclaim; the second uses it.
reclaim: {min: 16M, max_per_event: 64M, max_per_hour: 1G, prefer: [shrinkmem, memory_reclaim]}
psi: {wakeup: false}
log: {target: journal}
"""

# Nothing to act on: the daemon only watches devices, memory blocks and PSI.
QUIET = """\
rules: []
psi: {wakeup: true}
log: {target: journal}
"""

SCRIPT = r"""
exec > >(tee "$OUT/log.txt") 2>&1
set -u
export PYTHONDONTWRITEBYTECODE=1
fail() { echo "FAIL: $*"; exit 1; }
step() { echo "== $(date +%s.%N | cut -c1-14) $*"; }
wait_for() {  # wait_for TRIES COMMAND...: retry every half second
    local tries=$1; shift
    for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
    return 1
}
logged() { journalctl --no-pager -o cat _PID="$DPID" | grep -q "$1"; }  # by the background daemon

step journald
mkdir -p /run/systemd/journal /var/log/journal
/lib/systemd/systemd-journald &
wait_for 60 test -S /run/systemd/journal/socket || fail "journald did not start"

step named orders
$PY -m shrinkd check-config > "$OUT/check-config.txt" || fail "check-config"
$PY -m shrinkd status --json > "$OUT/status.json" || fail "status"
cat /sys/kernel/mm/transparent_hugepage/hpage_pmd_size > "$OUT/hpage_pmd_size.txt"
head -n 1 /proc/pagetypeinfo > "$OUT/pagetypeinfo.txt"
getconf PAGESIZE > "$OUT/pagesize.txt"

step cgroup2
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
test -e /sys/fs/cgroup/memory.reclaim || fail "no /sys/fs/cgroup/memory.reclaim"
ls /sys/devices/system/node/node0/ > "$OUT/node0.txt"

step page cache
DISK=""
for d in vda sda; do [ -b "/dev/$d" ] && DISK=/dev/$d && break; done
[ -n "$DISK" ] || fail "no disk"
mount "$DISK" /mnt || fail "mount $DISK"
dd if=/dev/zero of=/mnt/cache bs=1M count=250 status=none && sync
cat /mnt/cache > /dev/null

fragment() {
    rm -f /tmp/ready-f /tmp/ready-h
    $PY -c 'import sys; from pathlib import Path; from tests.capture import fragment; fragment(300, Path("/tmp/ready-f"))' &
    FPID=$!
    wait_for 600 test -e /tmp/ready-f || fail "fragmenter"
    $PY -c 'from pathlib import Path; from tests.capture import hog; hog(Path("/tmp/ready-h"))' &
    HPID=$!
    wait_for 600 test -e /tmp/ready-h || fail "hog"
}

once() {  # once NAME: fragment, read the kernel's index, run shrinkd once, read it again
    fragment
    cat /proc/buddyinfo
    grep -E '^(MemFree|Cached|AnonHugePages):' /proc/meminfo
    cp /sys/kernel/debug/extfrag/unusable_index "$OUT/$1-before.txt"
    step "shrinkd run --once ($1)"
    $PY -m shrinkd run --once --config "$OUT/once.yaml"
    echo $? > "$OUT/$1-rc.txt"
    cp /sys/kernel/debug/extfrag/unusable_index "$OUT/$1-after.txt"
    cat /proc/buddyinfo
    kill "$FPID" "$HPID"; wait "$FPID" "$HPID" 2>/dev/null
    cat /mnt/cache > /dev/null  # fill the cache again
}

once nomodule
step insmod
insmod "$OUT/kmod/shrinkmem.ko" || fail "insmod"
$PY -m shrinkd status --json > "$OUT/status-module.json" || fail "status with the module"
once module

step daemon
$PY -m shrinkd run --config "$OUT/quiet.yaml" &
DPID=$!
wait_for 120 logged "started: " || fail "daemon did not start"
rmmod shrinkmem || fail rmmod
wait_for 60 logged "removed shrinkmem" || echo "no event for the removal"
insmod "$OUT/kmod/shrinkmem.ko" || fail "insmod again"
wait_for 60 logged "added shrinkmem" || echo "no event for the load"
for block in $(ls -d /sys/devices/system/memory/memory* | sort -V -r); do
    if echo offline > "$block/state" 2>/dev/null; then
        basename "$block" > "$OUT/offlined.txt"
        wait_for 60 logged "$(basename "$block") offline"
        echo online > "$block/state"
        wait_for 60 logged "$(basename "$block") online"
        break
    fi
done
kill -0 "$DPID" || fail "daemon died"
start=$(date +%s%N)
kill -TERM "$DPID"
wait "$DPID"
echo $? > "$OUT/daemon-rc.txt"
echo $(( ($(date +%s%N) - start) / 1000000 )) > "$OUT/stop-ms.txt"

step journal
journalctl --no-pager -o json SYSLOG_IDENTIFIER=shrinkd > "$OUT/journal.json"
journalctl --no-pager -o json MESSAGE_ID=__RECLAIMED__ > "$OUT/reclaimed.json"
journalctl --no-pager -o cat SYSLOG_IDENTIFIER=shrinkd
"""


@pytest.fixture(scope="module")
def guest() -> Iterator[Path]:
    reason = vm.available()
    if reason is not None:
        pytest.skip(reason)
    out = vm.new_run_dir("daemon-")
    vm.build_module(out, KERNEL)
    (out / "once.yaml").write_text(ONCE + TOOLS_CONFIG.replace("$OUT", str(out)))
    (out / "quiet.yaml").write_text(QUIET)
    tools_setup(out)
    disk = out / "cache.img"
    with open(disk, "wb") as image:
        image.truncate(512 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(disk)], check=True)
    result = vm.run_in_vm(
        SCRIPT.replace("__RECLAIMED__", MESSAGE_IDS["reclaimed"]) + TOOLS_SCRIPT,
        kernel=KERNEL,
        memory="1G",
        disks=[disk],
        out_dir=out,
    )
    disk.unlink()
    print(f"guest ran {result.seconds:.0f} s; files in {out}")
    result.check()
    yield out


def runs(out: Path) -> List[List[Dict[str, Any]]]:
    """The events of each shrinkd process, in order: the two `--once` runs, then the background daemon."""
    journal = vm.journal_entries(out / "journal.json")
    result: List[List[Dict[str, Any]]] = []
    current: List[Dict[str, Any]] = []
    for entry in journal:
        event = entry.get("SHRINKD_EVENT")
        if event == "started":
            current = [entry]
        elif current:
            current.append(entry)
            if event == "stopped":
                result.append(current)
                current = []
    return result


def kinds(run: List[Dict[str, Any]]) -> List[str]:
    return [entry["SHRINKD_EVENT"] for entry in run]


def first(run: List[Dict[str, Any]], event: str) -> Dict[str, Any]:
    return next(entry for entry in run if entry["SHRINKD_EVENT"] == event)


def actions(run: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [entry for entry in run if entry["SHRINKD_EVENT"] in ("compacted", "reclaimed")]


def dma32_order9(path: Path) -> float:
    return parse_debugfs_index(path.read_text())[(0, "DMA32")][9]


@pytest.mark.parametrize(("name", "index"), [("nomodule", 0), ("module", 1)])
def test_the_ladder_ran_and_the_watched_index_improved(guest: Path, name: str, index: int) -> None:
    assert (guest / f"{name}-rc.txt").read_text().strip() == "0"
    run = runs(guest)[index]
    # Compaction, reclaim for what it left, and (still above the clear level) compaction once more.
    assert kinds(run) == ["started", "triggered", "compacted", "reclaimed", "compacted", "stopped"]
    steps = actions(run)
    for earlier, later in zip(steps, steps[1:]):
        assert later["SHRINKD_BEFORE"] == earlier["SHRINKD_AFTER"]  # measured again between the rungs
    measured = [float(steps[0]["SHRINKD_BEFORE"])] + [float(step["SHRINKD_AFTER"]) for step in steps]
    before, after = dma32_order9(guest / f"{name}-before.txt"), dma32_order9(guest / f"{name}-after.txt")
    print(f"{name}: DMA32 unusable index at order 9: debugfs {before:.3f} -> {after:.3f}; shrinkd's rungs {measured}")
    for step in steps:
        print(f"  {step['MESSAGE']}")
    assert before >= 0.5  # the state crossed the trigger level
    assert after < before  # the kernel's own index, read before and after
    assert measured[-1] < measured[0]


def test_events_are_in_the_journal_with_their_fields(guest: Path) -> None:
    run = runs(guest)[0]
    for entry in run:
        assert entry["MESSAGE_ID"] == MESSAGE_IDS[entry["SHRINKD_EVENT"]]
        assert entry["SYSLOG_IDENTIFIER"] == "shrinkd"
        assert entry["_TRANSPORT"] == "journal"  # the native protocol, not stderr
    for entry in run[1:-1]:
        assert entry["SHRINKD_TRIGGER"] == "vm-huge:unusable_index"
        assert (entry["SHRINKD_NODE"], entry["SHRINKD_ZONE"], entry["SHRINKD_ORDER"]) == ("0", "DMA32", "9")
        assert (entry["SHRINKD_THRESHOLD"], entry["SHRINKD_CLEAR"]) == ("0.500", "0.010")
    compacted, reclaimed = first(run, "compacted"), first(run, "reclaimed")
    # Debian's 6.1 kernel is built with NUMA: node0/compact exists and is the one used.
    assert "compact" in (guest / "node0.txt").read_text().split()
    assert compacted["SHRINKD_BACKEND"] == "node0/compact"
    assert reclaimed["SHRINKD_BACKEND"] == "memory_reclaim"
    assert reclaimed["SHRINKD_PAGES_RECLAIMED_SOURCE"] == "vmstat" and int(reclaimed["SHRINKD_PAGES_RECLAIMED"]) > 0
    assert 16 << 20 <= int(reclaimed["SHRINKD_REQUESTED_BYTES"]) <= 64 << 20
    for entry in actions(run):
        assert float(entry["SHRINKD_DURATION_MS"]) > 0
        assert int(entry["SHRINKD_FREE_PAGES_BEFORE"]) > 0 and int(entry["SHRINKD_FREE_PAGES_AFTER"]) > 0


def test_named_orders_are_what_this_kernel_says(guest: Path) -> None:
    page_size = int((guest / "pagesize.txt").read_text())
    huge = (int((guest / "hpage_pmd_size.txt").read_text()) // page_size).bit_length() - 1
    pageblock = int((guest / "pagetypeinfo.txt").read_text().split(":")[1])
    print(f"kernel: page size {page_size}, PMD huge page order {huge}, page block order {pageblock}")
    status = json.loads((guest / "status.json").read_text())
    assert status["named_orders"] == {"huge": huge, "pageblock": pageblock, "costly": 3}
    assert status["page_size"] == page_size
    lines = (guest / "check-config.txt").read_text().splitlines()
    rules = [line for line in lines[1:] if line.startswith("  rule ")]
    assert rules == ["  rule costly-order: orders costly = 3", f"  rule huge-page: orders huge = {huge}"]
    # Where huge came from: THP's hpage_pmd_size in this kernel.
    sources = [line for line in lines[1:] if line.startswith("  huge = ")]
    assert sources == [f"  huge = order {huge} (THP {int((guest / 'hpage_pmd_size.txt').read_text()) // 1024} kB)"], lines
    # The rest are the judgement's notes: backends enabled that this guest lacks (nothing worse).
    assert all(line.startswith("  note: backend ") for line in lines[1:] if line not in rules + sources), lines


def test_the_module_backend_is_used_when_the_module_is_loaded(guest: Path) -> None:
    run = runs(guest)[1]
    assert "shrinkmem" in first(run, "started")["SHRINKD_BACKENDS"].split(",")
    reclaimed = first(run, "reclaimed")
    assert reclaimed["SHRINKD_BACKEND"] == "shrinkmem"
    assert reclaimed["SHRINKD_PAGES_RECLAIMED_SOURCE"] == "backend"
    assert int(reclaimed["SHRINKD_PAGES_RECLAIMED"]) > 0


def test_the_built_in_order_prefers_memory_reclaim_to_the_loaded_module(guest: Path) -> None:
    # bench/reclaim_safety.py (docs/outcome.md): for the same request shrink_all_memory() made the
    # system as a whole reclaim more than memory.reclaim did, in seven of eight kernel and load pairs.
    reclaim = json.loads((guest / "status-module.json").read_text())["reclaim"]
    assert reclaim["have"] == "memory_reclaim, shrinkmem", reclaim
    assert reclaim["from"] == "as shrinkd run would find them with <built-in defaults>", reclaim


def test_journalctl_filters_by_message_id(guest: Path) -> None:
    reclaimed = vm.journal_entries(guest / "reclaimed.json")
    assert [e["SHRINKD_BACKEND"] for e in reclaimed] == ["memory_reclaim", "shrinkmem"]


def test_the_daemon_follows_the_module_and_memory_blocks_and_stops_on_sigterm(guest: Path) -> None:
    run = runs(guest)[2]
    started = run[0]
    assert started["SHRINKD_PSI"] == "trigger"  # a real PSI trigger on /proc/pressure/memory
    changes = [
        (e.get("SHRINKD_REMOVED"), e.get("SHRINKD_ADDED"), e["SHRINKD_REASON"])
        for e in run
        if e["SHRINKD_EVENT"] == "backends_changed"
    ]
    assert changes == [("shrinkmem", None, "shrinkmem remove"), (None, "shrinkmem", "shrinkmem add")]
    block = (guest / "offlined.txt").read_text().strip()
    memory = [e["SHRINKD_BLOCKS"] for e in run if e["SHRINKD_EVENT"] == "memory_changed"]
    assert memory == [f"{block} offline", f"{block} online"]
    assert run[-1]["SHRINKD_EVENT"] == "stopped"
    assert (guest / "daemon-rc.txt").read_text().strip() == "0"
    print(f"stopped {int((guest / 'stop-ms.txt').read_text())} ms after SIGTERM (software-emulated guest)")


# -- the tools (docs/tools.md) on the same boot: the --once runs also keep a trace and a
# Prometheus textfile; at the end, doctor and history run in the guest, and the journal's
# files are kept for the host to read with systemd-python.

TOOLS_CONFIG = """\
record: {path: $OUT/tools/trace.jsonl, interval: 1}
prometheus: {textfile: $OUT/tools/shrinkd.prom, interval: 1}
"""

# Asks for what no x86 kernel has: order 11 (orders are 0-10 with 4 KiB pages).
LACKING = """\
rules:
  - {name: too-deep, orders: [11], unusable_index: {trigger: 0.9, clear: 0.5}}
"""

TOOLS_SCRIPT = r"""
step tools
$PY -m shrinkd doctor --json > "$OUT/doctor.json"
echo $? > "$OUT/doctor-rc.txt"
$PY -m shrinkd doctor --config "$OUT/lacking.yaml" > "$OUT/doctor-lacking.txt"
echo $? > "$OUT/doctor-lacking-rc.txt"
$PY -m shrinkd history --json > "$OUT/history.json" 2> "$OUT/history-err.txt"
echo $? > "$OUT/history-rc.txt"
$PY -m shrinkd history --since=-1h
journalctl --sync 2>/dev/null
for d in /var/log/journal /run/log/journal; do
    [ -d "$d" ] && [ -n "$(ls -A "$d")" ] && cp -r "$d" "$OUT/journal-files" && break
done
"""


def tools_setup(out: Path) -> None:
    tools = out / "tools"
    tools.mkdir(mode=0o755)
    tools.chmod(0o755)
    (out / "lacking.yaml").write_text(LACKING)


def test_doctor_in_a_real_kernel(guest: Path) -> None:
    assert (guest / "doctor-rc.txt").read_text().strip() == "0", (guest / "doctor.json").read_text()
    checks = json.loads((guest / "doctor.json").read_text())["checks"]
    by_area: Dict[str, List[Dict[str, str]]] = {}
    for check in checks:
        by_area.setdefault(check["area"], []).append(check)
    module = [c["what"] for c in by_area["module"]]
    print("\n".join(f"{c['status']:5s} {c['area']:8s} {c['what']}" for c in checks))
    assert module[0].startswith("shrinkmem loaded")
    # The device node found by enumerating devices with pyudev, and what the module says of itself.
    node = next(c for c in by_area["module"] if c["what"] == "/dev/shrinkmem")
    assert node["status"] == "ok" and node["detail"].startswith("crw------- uid 0 gid 0, device 10:") and "found by udev" in node["detail"]
    assert f"reaches shrink_all_memory() by kprobe (the INFO ioctl says), ABI {ABI_VERSION}" in module[-1]
    assert any(c["what"].endswith("armed") and c["status"] == "ok" for c in by_area["psi"])
    backends = {c["what"].split(":")[0]: c["status"] for c in by_area["backend"]}
    assert backends["compact"] == "ok" and backends["memory_reclaim"] == "ok"
    options = {c["what"].split("=")[0]: c for c in by_area["options"]}
    assert options["CONFIG_COMPACTION"]["what"] == "CONFIG_COMPACTION=y"
    assert options["CONFIG_COMPACTION"]["detail"].endswith(f"from /boot/config-{vm.kernel_release(KERNEL)}")
    orders = {c["what"] for c in by_area["orders"]}
    assert "rule huge-page: order huge = 9" in orders
    lacking = (guest / "doctor-lacking.txt").read_text()
    assert (guest / "doctor-lacking-rc.txt").read_text().strip() == "2"
    # The judgement shared with check-config and run: the rule cannot act here, so no rule can.
    assert re.search(r"^WARN  config +rule too-deep: order 11 is beyond this kernel's 11 orders \(0-10\)", lacking, re.M)
    assert re.search(r"^FAIL  config +no rule in this configuration can act on this system", lacking, re.M), lacking


def test_history_reads_the_daemon_s_journal(guest: Path) -> None:
    """In the guest, and on the host from the journal's files: the events journalctl itself lists."""
    expected = [(e["SHRINKD_EVENT"], e["MESSAGE"]) for e in vm.journal_entries(guest / "journal.json") if "SHRINKD_EVENT" in e]
    assert (guest / "history-rc.txt").read_text().strip() == "0", (guest / "history-err.txt").read_text()
    in_guest = json.loads((guest / "history.json").read_text())
    assert [(e["event"], e["message"]) for e in in_guest["events"]] == expected
    result = subprocess.run(
        [sys.executable, "-m", "shrinkd", "history", "--json", "--directory", str(guest / "journal-files")],
        capture_output=True, text=True, check=False, cwd=vm.REPO,
    )
    assert result.returncode == 0, result.stderr
    on_host = json.loads(result.stdout)
    assert [(e["event"], e["message"]) for e in on_host["events"]] == expected
    totals = on_host["totals"]
    reclaimed = [e for e in vm.journal_entries(guest / "journal.json") if e.get("SHRINKD_EVENT") == "reclaimed"]
    assert totals["reclaims"] == len(reclaimed) >= 2  # one in each --once run
    assert totals["reclaimed_pages"] == sum(int(e["SHRINKD_PAGES_RECLAIMED"]) for e in reclaimed)
    compacted = [e for e in vm.journal_entries(guest / "journal.json") if e.get("SHRINKD_EVENT") == "compacted"]
    assert totals["compactions"] == len(compacted) >= 4


def test_the_once_runs_kept_a_trace_and_a_textfile(guest: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from shrinkd.trace import read_trace

    run = runs(guest)[1]  # the run with the module: its trace is the current file, the first run's is .1
    trace = read_trace([str(guest / "tools" / "trace.jsonl")])
    assert [(e.kind, e.message) for e in trace.events] == [(e["SHRINKD_EVENT"], e["MESSAGE"]) for e in run]
    assert len(trace.polls) == 1
    assert len(read_trace([str(guest / "tools" / "trace.jsonl.1")]).events) == len(runs(guest)[0])
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families((guest / "tools" / "shrinkd.prom").read_text())
        for s in family.samples
    }
    reclaimed = first(run, "reclaimed")
    assert samples[("shrinkd_actions_total", (("action", "reclaim"), ("backend", "shrinkmem")))] == 1
    assert samples[("shrinkd_actions_total", (("action", "compact"), ("backend", "node0/compact")))] == 2
    page_size = int((guest / "pagesize.txt").read_text())
    assert samples[("shrinkd_reclaimed_bytes_total", (("backend", "shrinkmem"),))] == int(reclaimed["SHRINKD_PAGES_RECLAIMED"]) * page_size
