"""The outcome study: what each way of fighting fragmentation buys, workload by workload, each from a fresh boot.

For every workload of tests/workloads.py and every strategy below, a Debian kernel boots under
QEMU (tests/vm.py) with a data disk, builds the workload's memory state, measures, applies the
strategy, measures again, then reads the workload's page cache again (refaults counted):

  nothing          measure again at once (the state as the workload left it)
  kernel-20        wait WINDOW seconds: the kernel alone, vm.compaction_proactiveness 20 (its default)
  kernel-90        the same with proactiveness raised to 90 (what a user would try first)
  compact          echo 1 > /proc/sys/vm/compact_memory
  drop-compact     sync; echo 3 > /proc/sys/vm/drop_caches; then compact
  reclaim-compact  200M to the root cgroup's memory.reclaim; then compact
  module-compact   echo 200 > /dev/shrinkmem (the shrinkmem module); then compact
  reclaim64-compact   64M (shrinkd's most per event) to memory.reclaim; then compact
  pressure64-compact  the same with vm.vfs_cache_pressure at 10000 meanwhile (as shrinkd does)
  shrinkd          `shrinkd run` with the built-in defaults for WINDOW seconds
  shrinkd-module   the same with the shrinkmem module loaded

Per run: free huge-page blocks (order 9) and costly-order blocks (order 3) before and after,
the kernel's own unusable index at order 9 (debugfs) of the largest zone, the page cache
discarded, refaults when the page cache is read again, CPU time of the daemon and the
actions it logged. Results are kept per run (JSON) under --results, so an interrupted study
resumes; the table is printed, and --docs writes docs/outcome.md (and the plot, when
matplotlib is installed).

    python bench/outcome.py [--workloads W ...] [--strategies S ...] [--window S] [--kernel 6.1] [--docs]
  python bench/outcome.py --measured --docs   # the table of the runs kept, booting nothing
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests import vm  # noqa: E402
from tests.workloads import SLAB_FILES, WORKLOADS, data_disk, index_of_largest_zone  # noqa: E402

STRATEGIES = (
    "nothing",
    "kernel-20",
    "kernel-90",
    "compact",
    "drop-compact",
    "reclaim-compact",
    "module-compact",
    "shrinkd",
    "shrinkd-module",
    "reclaim64-compact",
    "pressure64-compact",
)
HUGE, COSTLY = 9, 3
DEFAULT_RESULTS = Path(os.environ.get("SHRINKD_TEST_CACHE", "/var/cache/shrinkd-tests")) / "outcome"
MEMORY = "1G"

COMPACT = "echo 1 > /proc/sys/vm/compact_memory"
ACTIONS = {
    "nothing": "true",
    "kernel-20": "echo 20 > /proc/sys/vm/compaction_proactiveness; sleep $WINDOW",
    "kernel-90": "echo 90 > /proc/sys/vm/compaction_proactiveness; sleep $WINDOW",
    "compact": COMPACT,
    "drop-compact": f"sync; echo 3 > /proc/sys/vm/drop_caches; {COMPACT}",
    "reclaim-compact": f"echo 200M > /sys/fs/cgroup/memory.reclaim; {COMPACT}",
    "module-compact": f"echo 200 > /dev/shrinkmem; {COMPACT}",
    # One reclaim of shrinkd's per-event size, at the kernel's vfs_cache_pressure and at shrinkd's.
    "reclaim64-compact": f"echo 64M > /sys/fs/cgroup/memory.reclaim; {COMPACT}",
    "pressure64-compact": (
        "echo 10000 > /proc/sys/vm/vfs_cache_pressure; echo 64M > /sys/fs/cgroup/memory.reclaim;"
        f" echo 100 > /proc/sys/vm/vfs_cache_pressure; {COMPACT}"
    ),
    "shrinkd": "run_shrinkd",
    "shrinkd-module": "run_shrinkd",
}

SCRIPT = r"""
exec > "$OUT/log.txt" 2>&1
set -u
WINDOW=__WINDOW__
fail() { echo "FAIL: $*"; exit 1; }
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
mount /dev/vda /mnt || fail "mount the data disk"
__INSMOD__
run_shrinkd() {
    $PY -m shrinkd run > "$OUT/shrinkd.txt" 2>&1 &
    local pid=$!
    sleep "$WINDOW"
    read -r -a stat < "/proc/$pid/stat"
    echo "${stat[13]} ${stat[14]}" > "$OUT/shrinkd-ticks.txt"
    kill -TERM "$pid"; wait "$pid"
}
$PY -m tests.workloads guest __WORKLOAD__ /mnt "$OUT/ready" &
WPID=$!
for _ in $(seq 1200); do [ -e "$OUT/ready" ] && break; kill -0 $WPID || fail "workload died"; sleep 0.5; done
[ -e "$OUT/ready" ] || fail "workload not ready"
$PY -m tests.workloads measure "$OUT/before.json"
start=$(date +%s.%N)
__ACTION__
echo "$start $(date +%s.%N)" > "$OUT/action-times.txt"
$PY -m tests.workloads measure "$OUT/after.json"
$PY -m tests.workloads reread __WORKLOAD__ /mnt
$PY -m tests.workloads measure "$OUT/reread.json"
kill -TERM $WPID; wait $WPID
echo done > "$OUT/done"
"""


def suitable(free: Sequence[int], order: int) -> int:
    return sum(count << (o - order) for o, count in enumerate(free) if o >= order)


def summarize(run: Path) -> Dict[str, Any]:
    before = json.loads((run / "before.json").read_text())
    after = json.loads((run / "after.json").read_text())
    reread = json.loads((run / "reread.json").read_text())
    row: Dict[str, Any] = {}
    for name, state in (("before", before), ("after", after)):
        zones = state["buddyinfo"].values()
        row[f"huge_{name}"] = sum(suitable(free, HUGE) for free in zones)
        row[f"costly_{name}"] = sum(suitable(free, COSTLY) for free in zones)
        row[f"index_{name}"] = index_of_largest_zone(state, HUGE)
    row["cache_discarded_mb"] = max(before["cached_kb"] - after["cached_kb"], 0) / 1024
    row["refaults"] = reread["workingset_refault_file"] - after["workingset_refault_file"]
    row["refaults_during"] = after["workingset_refault_file"] - before["workingset_refault_file"]
    row["slab_dropped_mb"] = max(before["sreclaimable_kb"] - after["sreclaimable_kb"], 0) / 1024
    start, end = (float(t) for t in (run / "action-times.txt").read_text().split())
    row["seconds"] = end - start
    ticks = run / "shrinkd-ticks.txt"
    row["daemon_cpu_ms"] = sum(int(t) for t in ticks.read_text().split()) * 1000 / os.sysconf("SC_CLK_TCK") if ticks.exists() else None
    log = run / "shrinkd.txt"
    if log.exists():
        lines = log.read_text().splitlines()
        row["actions"] = [_message(line).split()[0] for line in lines if _is_action(line)]
    else:
        row["actions"] = None
    return row


def _message(line: str) -> str:
    """The message of one of the daemon's stderr lines ("TIME PRIORITY shrinkd: MESSAGE"; before the
    time and priority were added, "shrinkd: MESSAGE"), or "" for any other line."""
    _, found, message = line.partition("shrinkd: ")
    return message if found else ""


def _is_action(line: str) -> bool:
    words = _message(line).split()
    return bool(words) and words[0] in ("compacted", "reclaimed", "skipped")


def run_one(workload: str, strategy: str, window: int, kernel: str, results: Path, cpus: int = 2) -> Dict[str, Any]:
    target = results / kernel / workload / strategy
    if (target / "summary.json").exists():
        return dict(json.loads((target / "summary.json").read_text()))
    run_dir = vm.new_run_dir(f"outcome-{workload}-{strategy}-")
    disk = data_disk(run_dir, slab_files=SLAB_FILES if workload == "unfixable" else 0)
    insmod = ""
    if strategy.startswith("module") or strategy == "shrinkd-module":
        module = vm.build_module(run_dir, kernel)
        insmod = f'insmod {module} || fail "insmod"'
    action = ACTIONS[strategy]
    script = (
        SCRIPT.replace("__WINDOW__", str(window))
        .replace("__WORKLOAD__", workload)
        .replace("__ACTION__", action)
        .replace("__INSMOD__", insmod)
    )
    started = time.monotonic()
    result = vm.run_in_vm(script, kernel=kernel, memory=MEMORY, cpus=cpus, disks=[disk], out_dir=run_dir, timeout=3600)
    disk.unlink()
    if result.returncode != 0 or not (run_dir / "done").exists():
        log = (run_dir / "log.txt").read_text() if (run_dir / "log.txt").exists() else result.output[-3000:]
        raise vm.VMError(f"{workload}/{strategy} failed:\n{log[-3000:]}")
    row = summarize(run_dir)
    row.update(workload=workload, strategy=strategy, kernel=kernel, window=window, boot_s=time.monotonic() - started)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("before.json", "after.json", "reread.json", "shrinkd.txt", "log.txt"):
        if (run_dir / name).exists():
            shutil.copy(run_dir / name, target / name)
    (target / "summary.json").write_text(json.dumps(row, indent=1))
    shutil.rmtree(run_dir, ignore_errors=True)
    return row


def table(rows: List[Dict[str, Any]]) -> str:
    header = (
        "| workload | strategy | huge blocks before -> after | costly blocks before -> after | unusable index (order 9) "
        "| page cache discarded | slab dropped | refaults on re-read | daemon CPU | actions |"
    )
    lines = [header, "|" + "---|" * 10]
    for row in rows:
        index = "n/a" if row["index_before"] is None else f"{row['index_before']:.3f} -> {row['index_after']:.3f}"
        cpu = "" if row["daemon_cpu_ms"] is None else f"{row['daemon_cpu_ms']:.0f} ms"
        actions = "" if row["actions"] is None else (", ".join(row["actions"]) or "none")
        lines.append(
            f"| {row['workload']} | {row['strategy']} | {row['huge_before']} -> {row['huge_after']} "
            f"| {row['costly_before']} -> {row['costly_after']} | {index} | {row['cache_discarded_mb']:.0f} MB "
            f"| {row['slab_dropped_mb']:.0f} MB | {row['refaults']} | {cpu} | {actions} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: List[Dict[str, Any]], path: Path) -> bool:
    """Free huge-page blocks after each strategy, per workload (False without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    workloads = [w for w in WORKLOADS if any(r["workload"] == w for r in rows)]
    strategies = [s for s in STRATEGIES if any(r["strategy"] == s for r in rows)]
    figure, axes = plt.subplots(1, len(workloads), figsize=(4 * len(workloads), 4), sharey=True, squeeze=False)
    for axis, workload in zip(axes[0], workloads):
        values = [
            next((r["huge_after"] for r in rows if r["workload"] == workload and r["strategy"] == s), 0)
            for s in strategies
        ]
        axis.bar(range(len(strategies)), values)
        axis.set_xticks(range(len(strategies)), strategies, rotation=70, fontsize=8)
        axis.set_title(workload)
    axes[0][0].set_ylabel("free 2 MiB blocks after")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    return True


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--window", type=int, default=40, help="seconds the kernel or shrinkd get (default 40)")
    parser.add_argument("--kernel", default="6.1", help="kernel series (default 6.1)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help=f"where runs are kept (default {DEFAULT_RESULTS})")
    parser.add_argument("--again", action="store_true", help="run again what was already measured")
    parser.add_argument("--docs", action="store_true", help="write the table (and plot) into docs/outcome.md")
    parser.add_argument(
        "--jobs", type=int, default=1, help="guests at once, one virtual CPU each when more than one (default 1)"
    )
    parser.add_argument(
        "--measured", action="store_true", help="boot nothing: the table of the runs already kept (with --docs, into docs)"
    )
    args = parser.parse_args(argv)
    if args.again and args.measured:
        parser.error("--again and --measured exclude each other")
    pairs = [(workload, strategy) for workload in args.workloads for strategy in args.strategies]
    if args.measured:
        pairs = [(w, s) for w, s in pairs if (args.results / args.kernel / w / s / "summary.json").exists()]
        if not pairs:
            parser.error(f"no runs kept under {args.results / args.kernel} for these workloads and strategies")
    if args.again:
        for workload, strategy in pairs:
            shutil.rmtree(args.results / args.kernel / workload / strategy, ignore_errors=True)
    cpus = 1 if args.jobs > 1 else 2

    def one(pair: Tuple[str, str]) -> Dict[str, Any]:
        print(f"outcome: {pair[0]} / {pair[1]} ...", file=sys.stderr, flush=True)
        return run_one(pair[0], pair[1], args.window, args.kernel, args.results, cpus)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        rows = list(pool.map(one, pairs))
    text = table(rows)
    sys.stdout.write(text)
    if args.docs:
        docs = REPO / "docs" / "outcome.md"
        marker = "<!-- table -->"
        current = docs.read_text() if docs.exists() else f"# Outcome study\n\n{marker}\n{marker}\n"
        head, _, rest = current.partition(marker)
        _, _, tail = rest.partition(marker)
        docs.write_text(f"{head}{marker}\n{text}{marker}{tail}")
        if plot(rows, REPO / "docs" / "outcome.png"):
            print("wrote docs/outcome.md and docs/outcome.png", file=sys.stderr)
        else:
            print("wrote docs/outcome.md (no plot: matplotlib is not installed)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
