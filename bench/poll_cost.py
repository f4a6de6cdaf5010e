"""Cost of one shrinkd poll cycle against the bare cost of reading the same /proc files.

Both run in this process, in the same run, alternating in rounds so that both see
the same machine state:
  bare:     pread() of buddyinfo, zoneinfo, vmstat and pressure/memory from offset 0,
            on files kept open (the kernel's own work of generating the text);
  poll:     the daemon's regular poll, as Daemon.tick does it with the built-in
            configuration: read and parse what the decisions need (procfs.Reader:
            buddyinfo always; vmstat (the counters picked) and PSI when the policy
            needs them, which the built-in allocation-failure watch does every poll;
            zoneinfo only when a condition needs it fresh, else every ten minutes), metrics
            (view.observe: the kernel-exact indexes), decide (Policy.evaluate);
  full:     the same with every file read and parsed afresh (the daemon's poll once
            a minute and around actions).
Prints microseconds per cycle (median over rounds), the split of the full poll into
its steps and per file, and the ratios to bare (target: at most 2x).

    python bench/poll_cost.py [--cycles N] [--rounds N] [--proc-root DIR] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from shrinkd import configload, parse  # noqa: E402
from shrinkd.config import Current  # noqa: E402
from shrinkd.errors import ShrinkdError  # noqa: E402
from shrinkd.policy import Policy  # noqa: E402
from shrinkd.procfs import OpenFile, ProcFS, Reader  # noqa: E402
from shrinkd.view import observe  # noqa: E402

# The /proc/vmstat counters a poll picks with the built-in configuration (Policy.counter_keys).
KEYS = Policy(Current(configload.builtin())).counter_keys()

FILES = ("buddyinfo", "zoneinfo", "vmstat", "pressure/memory")
PARSERS: Dict[str, Callable[[str, str], object]] = {
    "buddyinfo": parse.parse_buddyinfo,
    "zoneinfo": parse.parse_zoneinfo,
    "vmstat": lambda text, source: parse.parse_vmstat(text, source, KEYS),  # as procfs.Reader does
    "pressure/memory": parse.parse_pressure,
}


class BareReader:
    """The same files, kept open, read with pread() from offset 0 until EOF: nothing else."""

    def __init__(self, procfs: ProcFS) -> None:
        self.fds: List[int] = []
        for name in FILES:
            try:
                self.fds.append(os.open(procfs.proc(name), os.O_RDONLY | os.O_CLOEXEC))
            except OSError:
                if name == "buddyinfo":
                    raise
        self.names = [name for name in FILES if os.path.exists(procfs.proc(name))]

    def read(self) -> int:
        total = 0
        for fd in self.fds:
            offset = 0
            while True:
                chunk = os.pread(fd, 65536, offset)
                if not chunk:
                    break
                offset += len(chunk)
            total += offset
        return total

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


def per_cycle_us(step: Callable[[], object], cycles: int) -> float:
    started = time.perf_counter()
    for _ in range(cycles):
        step()
    return (time.perf_counter() - started) / cycles * 1e6


def measure(procfs: ProcFS, cycles: int, rounds: int) -> Dict[str, float]:
    bare = BareReader(procfs)
    reader = Reader(procfs)
    page_size = os.sysconf("SC_PAGE_SIZE")
    policy = Policy(Current(configload.builtin()), page_size)
    clock = [0.0]

    needs_zoneinfo = policy.needs_zoneinfo()
    needs_counters = policy.needs_counters()

    def full() -> None:
        clock[0] += 1.0
        policy.evaluate(observe(reader.snapshot(keys=KEYS)), clock[0])

    def regular() -> None:
        clock[0] += 1.0
        policy.evaluate(
            observe(reader.snapshot(zoneinfo=needs_zoneinfo, counters=needs_counters, keys=KEYS)), clock[0]
        )

    snapshot = reader.snapshot(keys=KEYS)
    obs = observe(snapshot)

    def decide_only() -> None:
        clock[0] += 1.0
        policy.evaluate(obs, clock[0])

    steps: Dict[str, Callable[[], object]] = {
        "bare": bare.read,
        "regular": regular,
        "full": full,
        "read+parse": lambda: reader.snapshot(keys=KEYS),
        "metrics": lambda: observe(snapshot),
        "decide": decide_only,
    }
    for step in steps.values():  # warm up: imports, caches, first-call costs
        per_cycle_us(step, max(1, cycles // 10))
    samples: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            samples[name].append(per_cycle_us(step, cycles))
    result = {name: statistics.median(values) for name, values in samples.items()}
    # What a regular poll leaves to the garbage collector, and the most it holds at once: what
    # freezing start-up objects out of the collector (gc.freeze) could save.
    import gc
    import tracemalloc

    before = [stat["collections"] for stat in gc.get_stats()]
    for _ in range(1000):
        regular()
    result["gc per 1000 polls"] = sum(stat["collections"] for stat in gc.get_stats()) - sum(before)
    tracemalloc.start()
    regular()
    result["peak bytes per poll"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    bare.close()
    reader.close()
    for name in bare.names:  # where read+parse goes, file by file
        with OpenFile(procfs.proc(name)) as handle:
            text = handle.read()
            result[f"read {name}"] = statistics.median(per_cycle_us(handle.read, cycles) for _ in range(3))
        step = functools.partial(PARSERS[name], text, name)
        result[f"parse {name}"] = statistics.median(per_cycle_us(step, cycles) for _ in range(3))
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=2000, help="cycles per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds, alternating bare and shrinkd (default 7)")
    parser.add_argument("--proc-root", default="/proc", help="read /proc files under DIR (default /proc)")
    parser.add_argument("--quick", action="store_true", help="a few cycles only (checks the script, not the machine)")
    args = parser.parse_args(argv)
    if args.quick:
        args.cycles, args.rounds = 20, 2
    procfs = ProcFS(args.proc_root, "/sys")
    try:
        result = measure(procfs, args.cycles, args.rounds)
    except (OSError, ShrinkdError) as error:
        print(f"poll_cost: {error}", file=sys.stderr)
        return 4
    sizes = {name: len(procfs.read_text(procfs.proc(name))) for name in FILES if os.path.exists(procfs.proc(name))}
    print(f"poll_cost: kernel {platform.release()}, Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"files: {', '.join(f'{name} ({size} B)' for name, size in sizes.items())}")
    print(f"cycles: {args.cycles} per round, {args.rounds} rounds, median per cycle")
    print(f"bare read (4 files):  {result['bare']:10.1f} us/cycle")
    print(f"shrinkd regular poll: {result['regular']:10.1f} us/cycle")
    print(f"shrinkd full poll:    {result['full']:10.1f} us/cycle")
    print(f"  read+parse:         {result['read+parse']:10.1f} us")
    print(f"  metrics:            {result['metrics']:10.1f} us")
    print(f"  decide:             {result['decide']:10.1f} us")
    for name in FILES:
        if f"read {name}" in result:
            print(f"    {name + ':':18s} read+decode {result[f'read {name}']:7.1f} us, parse {result[f'parse {name}']:7.1f} us")
    print(f"garbage collections per 1000 regular polls: {result['gc per 1000 polls']:.0f}")
    print(f"memory allocated at most during one regular poll: {result['peak bytes per poll'] / 1024:.0f} KiB")
    print(f"ratio regular/bare:   {result['regular'] / result['bare']:10.2f}x (target <= 2x)")
    print(f"ratio full/bare:      {result['full'] / result['bare']:10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
