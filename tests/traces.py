"""Record the fixture traces (tests/fixtures/traces/) in Debian kernels booted under QEMU.

`python -m tests.traces [--workload NAME ...]` boots Debian's 6.1 kernel (tests/vm.py)
once per workload, with the outcome study's data disk (tests/workloads.py). In the guest,
`shrinkd record --act` runs the real daemon (compaction and cgroup v2 memory.reclaim, on
the kernel's own files) with RECORD_CONFIG while the workload goes through its phases: a
quiet start, the workload building its state (`python -m tests.workloads guest NAME`) and
holding it while shrinkd acts, the workload ending (its memory freed), a quiet end. The
trace, what the guest printed and the configuration are kept in tests/fixtures/traces/.

compactable: fragmented, and every page in the way is movable (compaction helps);
unfixable: slab in nearly every page block (compaction cannot help; the ladder reclaims).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "traces"

# The defaults' costly-order rule and a huge-page rule on DMA32 (the zone a 1 GiB guest
# fragments, whatever it resolves to), polled every 1 to 2 s so that a short run sees
# several decisions. The rest is the defaults (the allocation_failures trigger included).
RECORD_CONFIG = """\
rules:
  - name: costly-order
    orders: [costly]
    extfrag_index: {trigger: 0.5, clear: 0.3}
    sustain: 2
  - name: huge-page
    zones: [DMA32]
    orders: [huge]
    unusable_index: {trigger: 0.8, clear: 0.5}
    sustain: 2
poll: {min_interval: 1, max_interval: 2}
psi: {wakeup: false}
guards: {cooldown: 15}
reclaim: {min: 8M, max_per_event: 32M, max_per_hour: 128M}
backends: {node_reclaim: {enabled: false}}
log: {target: stderr}
record: {interval: 5}
"""

GUEST = r"""
set -u
export PYTHONDONTWRITEBYTECODE=1
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
mount /dev/vda /mnt || { echo "FAIL: mount the data disk"; exit 1; }
wait_for() { for _ in $(seq 3000); do [ -e "$1" ] && return 0; sleep 0.2; done; return 1; }
"$PY" -m shrinkd record "$OUT/__NAME__.jsonl" --act --config "$OUT/record.yaml" &
RPID=$!
sleep __QUIET__
__START__
sleep __HOLD__
kill $WPIDS; wait $WPIDS 2>/dev/null
echo "workload ended"; cat /proc/buddyinfo
sleep __TAIL__
kill -TERM $RPID
wait $RPID
echo "record exit $?"
"""

START = (
    '"$PY" -m tests.workloads guest __NAME__ /mnt "$OUT/ready" & WPIDS=$!\n'
    'wait_for "$OUT/ready" || { echo "FAIL: workload not ready"; exit 1; }\n'
    'echo "workload ready"; cat /proc/buddyinfo\n'
)
FIXTURE_WORKLOADS = ("compactable", "unfixable")


def record(name: str, out: Path, quiet: int = 10, hold: int = 60, tail: int = 20) -> Path:
    from tests import vm
    from tests.workloads import data_disk

    run_dir = vm.new_run_dir(prefix=f"trace-{name}-")
    disk = data_disk(run_dir)
    (run_dir / "record.yaml").write_text(RECORD_CONFIG)
    script = (
        GUEST.replace("__NAME__", name)
        .replace("__TAIL__", str(tail))
        .replace("__QUIET__", str(quiet))
        .replace("__HOLD__", str(hold))
        .replace("__START__", START)
        .replace("__NAME__", name)
    )
    result = vm.run_in_vm(script, kernel="6.1", memory="1G", disks=[disk], out_dir=run_dir, timeout=2400).check()
    out.mkdir(parents=True, exist_ok=True)
    traces = sorted(run_dir.glob(f"{name}.jsonl*"))
    if not traces:
        raise RuntimeError(f"no trace written:\n{result.output[-4000:]}")
    for path in traces:
        shutil.copy(path, out / path.name)
    (out / f"{name}.yaml").write_text(RECORD_CONFIG)
    (out / f"{name}.log").write_text(result.output)
    shutil.rmtree(run_dir, ignore_errors=True)
    return out / f"{name}.jsonl"


# The journal fixture (tests/fixtures/journal/): journald in the guest, and shrinkd's events in it:
# a dry-run daemon that records, a --once run that acts (compaction, then reclaim through
# memory.reclaim for what is left), a reload, and SIGTERM.
JOURNAL_CONFIG = """\
rules:
  - {name: any-huge, zones: [DMA32], orders: [huge], unusable_index: {trigger: 0.001, clear: 0.0005}, sustain: 1}
reclaim: {min: 8M, max_per_event: 16M, max_per_hour: 64M}
psi: {wakeup: false}
log: {target: journal}
"""

JOURNAL_GUEST = r"""
set -u
export PYTHONDONTWRITEBYTECODE=1
mkdir -p /run/systemd/journal /var/log/journal
/lib/systemd/systemd-journald &
for _ in $(seq 120); do [ -S /run/systemd/journal/socket ] && break; sleep 0.5; done
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
"$PY" -m shrinkd run --once --config "$OUT/journal.yaml"
echo "once exit $?"
"$PY" -m shrinkd run --dry-run --config "$OUT/journal.yaml" &
DPID=$!
for _ in $(seq 600); do journalctl --no-pager -o cat _PID=$DPID | grep -q "started: " && break; sleep 0.5; done
sleep 10
kill -HUP $DPID
sleep 10
kill -TERM $DPID
wait $DPID
journalctl --sync 2>/dev/null
journalctl --no-pager -o json SYSLOG_IDENTIFIER=shrinkd > "$OUT/journal.json"
for d in /var/log/journal /run/log/journal; do
    [ -d "$d" ] && [ -n "$(ls -A "$d")" ] && cp -r "$d" "$OUT/files" && break
done
journalctl --no-pager -o cat SYSLOG_IDENTIFIER=shrinkd
"""


def journal(out: Path) -> Path:
    from tests import vm

    run_dir = vm.new_run_dir(prefix="journal-")
    (run_dir / "journal.yaml").write_text(JOURNAL_CONFIG)
    result = vm.run_in_vm(JOURNAL_GUEST, kernel="6.1", memory="1G", out_dir=run_dir, timeout=2400).check()
    if not (run_dir / "files").is_dir():
        raise RuntimeError(f"no journal files:\n{result.output[-4000:]}")
    if out.exists():
        shutil.rmtree(out / "files", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run_dir / "files", out / "files")
    shutil.copy(run_dir / "journal.json", out / "journal.json")
    shutil.rmtree(run_dir, ignore_errors=True)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", action="append", choices=FIXTURE_WORKLOADS, help="default: all")
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--journal", type=Path, metavar="DIR", help="record the journal fixture into DIR instead")
    args = parser.parse_args(argv)
    if args.journal:
        print(journal(args.journal))
        return 0
    for name in args.workload or FIXTURE_WORKLOADS:
        print(record(name, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
