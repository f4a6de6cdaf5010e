"""Capture fragmented memory states from real kernels, with the kernel's own indexes.

On the host, `python -m tests.capture [--out DIR] [--plan NAME ...] [--board TARGET ...]`
boots Debian kernels under QEMU (tests/vm.py; --board: a board target, booted on its
own Debian root file system with systemd) and, in each guest, fragments memory at
several fill levels and saves for each state:

    <state>/proc/{buddyinfo,zoneinfo,vmstat,meminfo,pressure/memory}
    <state>/debugfs/extfrag/{extfrag_index,unusable_index}
    <state>/meta.txt          kernel release, memory layout, fill level

The debugfs index files are read at the same moment as buddyinfo: every file is read,
then buddyinfo and both index files are read again, and the state is kept only when
both readings agree. The captured trees are the fixtures under tests/fixtures/kernels/
and the debugfs files are the expected values for `shrinkd status --json`.

Fragmentation: a process maps anonymous memory with transparent huge pages disabled
for that mapping (MADV_NOHUGEPAGE), touches every page, then frees every other page
(MADV_DONTNEED): each freed page's buddy stays in use, so the freed memory is left as
order-0 blocks.

In the guest the same module runs as `$PY -m tests.capture guest PLAN-JSON`.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from shrinkd.parse import parse_buddyinfo, parse_meminfo

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "kernels"
PROC_FILES = ("buddyinfo", "zoneinfo", "vmstat", "meminfo", "pressure/memory")
DEBUGFS_FILES = ("extfrag/extfrag_index", "extfrag/unusable_index")


@dataclass(frozen=True)
class Plan:
    """One boot: a kernel, a memory layout, and fragmenting fills, each a percentage of
    MemAvailable at its start (earlier fills stay in place, so they accumulate)."""

    name: str
    kernel: str
    memory: str = "1G"
    numa: Sequence[str] = ()
    fills_pct: Sequence[int] = ()
    hog: bool = True


PLANS = {
    "6.1": Plan("6.1", kernel="6.1", memory="1G", fills_pct=(30, 60, 90)),
    "6.1-numa": Plan("6.1-numa", kernel="6.1", memory="1G", numa=("512M", "512M"), fills_pct=(50, 90)),
    "6.12": Plan("6.12", kernel="6.12", memory="1G", fills_pct=(40, 90)),
}


# ---------------------------------------------------------------- guest side


def fragment(megabytes: int, ready: Path, every: int = 2) -> None:
    """Touch `megabytes` of anonymous memory, free one page in `every` (every other page by
    default), then hold the rest."""
    size = megabytes << 20
    page = mmap.PAGESIZE
    area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    area.madvise(mmap.MADV_NOHUGEPAGE)
    for offset in range(0, size, page):
        area[offset] = 1
    for offset in range(page, size, every * page):
        area.madvise(mmap.MADV_DONTNEED, offset, page)
    ready.write_text(f"{megabytes}\n")
    signal.pause()


def huge_page_order() -> Optional[int]:
    """The running kernel's PMD huge-page order (9 with 4 KiB pages, 11 with 16 KiB); None without THP."""
    size = Path("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
    if not size.exists():
        return None
    return (int(size.read_text()) // mmap.PAGESIZE).bit_length() - 1


def hog(ready: Path, hpage_order: int = 9, spare: int = 8) -> None:
    """Take every free block of the huge-page order or above as a transparent huge page.

    With THP defrag set to "never" a fault takes a free huge-page block when one
    exists and falls back to one base page otherwise, without compaction or reclaim,
    so the holes the fragmenters left stay as they are. `spare` faults more than the
    blocks counted make sure none is left; each of those falls back (thp_fault_fallback).
    """
    Path("/sys/kernel/mm/transparent_hugepage/defrag").write_text("never")
    buddy = parse_buddyinfo(Path("/proc/buddyinfo").read_text())
    blocks = sum(count << (order - hpage_order) for z in buddy.zones for order, count in enumerate(z.free)
                 if order >= hpage_order)
    chunk = mmap.PAGESIZE << hpage_order
    area = mmap.mmap(-1, (blocks + spare) * chunk + chunk, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    area.madvise(mmap.MADV_HUGEPAGE)
    # The mapping's start is page aligned; touch one byte per aligned huge-page span.
    start = -_address(area) % chunk
    for offset in range(start, start + (blocks + spare) * chunk, chunk):
        area[offset] = 1
    ready.write_text(f"{blocks}\n")
    signal.pause()


def _address(area: mmap.mmap) -> int:
    import ctypes

    return ctypes.addressof(ctypes.c_char.from_buffer(area))


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def snapshot(dest: Path, proc: Path = Path("/proc"), debugfs: Path = Path("/sys/kernel/debug"),
             within: float = 180.0) -> int:
    """Save the /proc files and the debugfs index files read at one moment (buddyinfo and the
    indexes the same before and after the other reads); returns the readings used. Memory
    settling after a workload (kswapd, kcompactd) can move the lists for a while, longer when
    the host is busy: readings go on for `within` seconds, spaced out up to half a second."""
    deadline = time.monotonic() + within
    attempt, pause, moved = 0, 0.05, ""
    while True:
        attempt += 1
        buddy = _read(proc / "buddyinfo")
        indexes = [_read(debugfs / name) for name in DEBUGFS_FILES]
        others = {name: _read(proc / name) for name in PROC_FILES if name != "buddyinfo"}
        indexes_again = [_read(debugfs / name) for name in DEBUGFS_FILES]
        moved = ", ".join(
            ([] if buddy == _read(proc / "buddyinfo") else ["buddyinfo"])
            + [name for name, a, b in zip(DEBUGFS_FILES, indexes, indexes_again) if a != b or not a]
        )
        if not moved:
            for name, text in [("proc/buddyinfo", buddy), *((f"proc/{n}", t) for n, t in others.items())]:
                if text:
                    (dest / name).parent.mkdir(parents=True, exist_ok=True)
                    (dest / name).write_text(text)
            for name, text in zip(DEBUGFS_FILES, indexes):
                (dest / "debugfs" / name).parent.mkdir(parents=True, exist_ok=True)
                (dest / "debugfs" / name).write_text(text)
            return attempt
        if time.monotonic() >= deadline:
            raise RuntimeError(f"buddyinfo and the indexes never held still over {attempt} readings in "
                               f"{within:.0f} s (last moved or empty: {moved})")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)


def guest(plan: Plan, out: Path) -> None:
    """Run in the guest: capture the idle state, then one state per fragmenting fill."""
    release = os.uname().release
    children: List[subprocess.Popen[bytes]] = []
    states = [("idle", 0)] + [(f"frag{i + 1}", pct) for i, pct in enumerate(plan.fills_pct)]
    hpage_order = huge_page_order()
    if plan.hog and hpage_order is not None:
        states.append(("hog", -1))
    total = 0
    try:
        for state, percent in states:
            if percent:
                ready = out / f".ready-{state}"
                if percent > 0:
                    available_kb = parse_meminfo(Path("/proc/meminfo").read_text())["MemAvailable"]
                    megabytes = available_kb * percent // 100 // 1024
                    command = ["fragment", str(megabytes), str(ready)]
                else:
                    megabytes, command = 0, ["hog", str(ready), "--order", str(hpage_order)]
                children.append(subprocess.Popen([sys.executable, "-m", "tests.capture", *command], cwd=REPO))
                while not ready.exists():
                    if children[-1].poll() is not None:
                        raise RuntimeError(f"fragmenter for {state} exited with {children[-1].returncode}")
                    time.sleep(0.2)
                ready.unlink()
                total += megabytes
            time.sleep(1)  # let per-cpu page lists drain into the buddy lists
            dest = out / f"{plan.name}-{state}"
            attempts = snapshot(dest)
            layout = f"numa {'+'.join(plan.numa)}" if plan.numa else "one node"
            (dest / "meta.txt").write_text(
                f"kernel {release}\nmemory {plan.memory} ({layout})\n"
                f"fragmenters touched {total} MB in all, then freed every other page\n"
                + ("huge-page blocks taken by a THP hog\n" if percent < 0 else "")
                + f"readings {attempts}\n"
            )
            print(f"captured {dest.name} after {attempts} reading(s)", flush=True)
    finally:
        for child in children:
            child.kill()


# ----------------------------------------------------------------- host side


def capture(plan: Plan, out: Path, timeout: float = 900) -> List[Path]:
    """Boot the plan's kernel and capture its states into `out`; returns the state folders."""
    from tests import vm

    run_dir = vm.new_run_dir(prefix=f"capture-{plan.name}-")
    script = f'"$PY" -m tests.capture guest {shlex.quote(plan_json(plan))} "$OUT"\n'
    result = vm.run_in_vm(script, kernel=plan.kernel, memory=plan.memory, numa=plan.numa,
                          out_dir=run_dir, timeout=timeout).check()
    kept = keep_states(result.out_dir, out)
    shutil.rmtree(run_dir, ignore_errors=True)
    return kept


def board_plan(target: str) -> Plan:
    """A board target's capture: idle, one fragmenting fill, and the huge-page hog."""
    from tests import vm

    return Plan(target, kernel=target, memory=vm.TARGETS[target].memory, fills_pct=(60,))


def plan_json(plan: Plan) -> str:
    return json.dumps({"name": plan.name, "kernel": plan.kernel, "memory": plan.memory,
                       "numa": list(plan.numa), "fills_pct": list(plan.fills_pct)})


def keep_states(found: Path, out: Path) -> List[Path]:
    """Copy the captured state folders under `found` into `out` (replacing states of the same name)."""
    states = sorted(p for p in found.iterdir() if p.is_dir() and (p / "meta.txt").exists())
    out.mkdir(parents=True, exist_ok=True)
    kept = []
    for state in states:
        target = out / state.name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(state, target)
        kept.append(target)
    return kept


def capture_board(target: str, out: Path, timeout: float = 3600) -> List[Path]:
    """Boot a board target (tests/vm.py Board: its own Debian root, systemd) and capture its states into `out`."""
    from tests import vm

    board = vm.Board(vm.TARGETS[target], vm.new_run_dir(prefix=f"capture-{target}-"))
    script = f'$PY -m tests.capture guest {shlex.quote(plan_json(board_plan(target)))} "$OUT/capture"\n'
    result = board.run([script], timeout=timeout)
    result.boots[0].check()
    kept = keep_states(board.dir / "capture", out)
    shutil.rmtree(board.dir, ignore_errors=True)
    return kept


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Capture fragmented memory states from Debian kernels under QEMU.")
    sub = parser.add_subparsers(dest="mode")
    host = sub.add_parser("host", help="boot kernels and capture (the default)")
    host.add_argument("--out", type=Path, default=FIXTURES, help=f"where the state folders go (default {FIXTURES})")
    host.add_argument("--plan", action="append", choices=sorted(PLANS), help="plans to run (default: all)")
    host.add_argument("--board", action="append", default=[], help="also capture this board target (tests/vm.py TARGETS)")
    frag = sub.add_parser("fragment", help="(guest) fragment MB of memory and hold it")
    frag.add_argument("megabytes", type=int)
    frag.add_argument("ready", type=Path)
    frag.add_argument("--every", type=int, default=2, help="free one page in this many (default 2)")
    hog_cmd = sub.add_parser("hog", help="(guest) take every free huge-page block and hold it")
    hog_cmd.add_argument("ready", type=Path)
    hog_cmd.add_argument("--order", type=int, default=9, help="the kernel's huge-page order (default 9)")
    hog_cmd.add_argument("--spare", type=int, default=8, help="faults beyond the free blocks counted (default 8)")
    run = sub.add_parser("guest", help="(guest) run one plan")
    run.add_argument("plan")
    run.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.mode == "fragment":
        fragment(args.megabytes, args.ready, args.every)
    elif args.mode == "hog":
        hog(args.ready, args.order, args.spare)
    elif args.mode == "guest":
        raw = json.loads(args.plan)
        guest(Plan(raw["name"], raw["kernel"], raw["memory"], tuple(raw["numa"]), tuple(raw["fills_pct"])), args.out)
    else:
        out = getattr(args, "out", FIXTURES)
        boards = getattr(args, "board", [])
        plans = getattr(args, "plan", None) or ([] if boards else sorted(PLANS))
        found = [state for name in plans for state in capture(PLANS[name], out)]
        found += [state for name in boards for state in capture_board(name, out)]
        for state in found:
            print(f"{state.relative_to(REPO) if state.is_relative_to(REPO) else state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
