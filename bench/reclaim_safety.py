"""Is shrink_all_memory() safe on a running system? The shrinkmem module against memory.reclaim of the same size, under load.

shrink_all_memory() was written for hibernation, with user space frozen: it runs with
PF_MEMALLOC (its own allocations may take pages below the min watermark) and sets the scan
control's hibernation_mode (no throttling). The root cgroup's memory.reclaim is the kernel's
interface for reclaim on a running system. This asks both for the same size while other
tasks allocate, in Debian kernels booted under QEMU (tests/vm.py, 1 GiB, 2 CPUs, no swap, as
most boards run): this machine's x86_64 kernels by series (6.1, 6.12: virtme-ng, one boot per
kernel and load), and the arm64 board targets (BOARDS: tests/vm.py Board, the target's Debian
kernel and root file system, one boot per load; the module built in the board against its
kernel's headers, the load's helper built here with Debian's cross compiler). ROUNDS rounds per
load, each round one request of each backend (the order alternating from round to round).

The load, started afresh for each request and settled for SETTLE seconds before it:
  a page-cache reader  `cat` of a file larger than memory, over and over: new page-cache pages
                       all the time, so free memory sits at the watermarks, held by kswapd;
  an allocator         bench/helpers/pressure.c: 2 MiB chunks of anonymous memory mapped,
                       touched a page at a time and unmapped in a ring of 128 MiB, each chunk's
                       fault time logged.

Per request, against the BASELINE seconds of the same load just before it:
  reclaimed     pages the backend reports (shrinkmem's read-back; memory.reclaim says only
                whether it got all it was asked: EAGAIN when not) and the pgsteal_* delta
  below min     /proc/zoneinfo sampled every 20 ms: samples with a zone's free pages under its
                min watermark, and the deepest such dip (pages)
  allocstall    vmstat allocstall_* delta: the load's tasks entering direct reclaim
  oom kills     vmstat oom_kill delta; allocation failures reported in the kernel's log
  latency       the allocator's 2 MiB chunk fault time: median, 99th percentile and maximum

Runs are kept per kernel (or board target) and load under --results (JSON; a board's rows also
say its arch and page_kb), so a study resumes; --measured tables the kept runs without booting,
--docs writes the table into docs/outcome.md.

    python bench/reclaim_safety.py [--kernels 6.1 6.12 arm64-6.1 arm64-16k-6.12] [--size MB] [--rounds N] [--again] [--docs]
    python bench/reclaim_safety.py --measured [--docs]
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BACKENDS = ("shrinkmem", "memory_reclaim")
DEFAULT_RESULTS = Path(os.environ.get("SHRINKD_TEST_CACHE", "/var/cache/shrinkd-tests")) / "reclaim-safety"
MEMORY = "1G"
SETTLE, BASELINE = 5.0, 5.0
SAMPLE_EVERY = 0.02
RING_MB, CHUNK_KB = 128, 2048
READ_FILE = "/mnt/big.bin"  # tests/workloads.py DATA_FILES: 1.5 GiB, more than the guest's memory
MARKER = "<!-- reclaim-safety -->"
# The loads: page cache only (most boards: no swap), or also an anonymous hog that reclaim must
# swap out to zram (whose compressed copies are themselves allocations made inside reclaim).
LOADS = {"cache": (0, 0), "swap": (768, 448)}  # (zram swap MB, anonymous hog MB)

# The board targets (tests/vm.py TARGETS) this runs on.
BOARDS = ("arm64-6.1", "arm64-16k-6.12")
# A board run's boots together: software-emulated aarch64 on two shared host cores.
BOARD_TIMEOUT = 3 * 3600.0
# The host's C compiler for a board's architecture (Debian's cross compilers: gcc-aarch64-linux-gnu).
CROSS_GCC = {"amd64": "gcc", "arm64": "aarch64-linux-gnu-gcc"}
# Rounds per load when --rounds is not given: the swap load's requests vary more.
ROUNDS = {"cache": 3, "swap": 5}

# One boot's work once the module and the pressure helper are built: the data disk, the module,
# zram swap for the swap load, then the guest side of this script.
BODY = r"""
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup
mkdir -p __MOUNT__
mount __DISK__ __MOUNT__ || fail "mount the data disk"
insmod __MODULE__ || fail "insmod"
if [ __SWAP__ -gt 0 ]; then
    modprobe zram || fail "modprobe zram"
    echo __SWAP__M > /sys/block/zram0/disksize && mkswap /dev/zram0 && swapon /dev/zram0 || fail "zram swap"
fi
$PY bench/reclaim_safety.py guest --out "__RESULTS__" --size __SIZE__ --rounds __ROUNDS__ --hog __HOG__ \
    --pressure "__PRESSURE__" --read-file __MOUNT__/big.bin || fail "guest"
echo done > "__RESULTS__/done"
"""

# A virtme-ng guest of this machine's kernel: the module and the helper are built on the host,
# the data disk is /dev/vda.
SCRIPT = r"""
exec > "$OUT/log.txt" 2>&1
set -u
fail() { echo "FAIL: $*"; exit 1; }
""" + BODY.replace("__MOUNT__", "/mnt").replace("__DISK__", "/dev/vda").replace("__RESULTS__", "$OUT").replace(
    "__PRESSURE__", "$OUT/pressure"
)

# A board target (tests/vm.py Board: its Debian kernel and root file system, systemd as PID 1),
# one boot per load. The repository is at $REPO (read-only) and /mnt/out is $OUT, so the data
# disk (/dev/vdb, after the root disk) goes to /data. The first boot builds the module against
# the running kernel's headers (the image carries them, as DKMS needs them) into $OUT/build, where
# the next boots find it. The pressure helper comes built from the host (CROSS_GCC, static): the
# board's gcc builds modules, but the image has no C library headers to build a program with.
BOARD_SCRIPT = r"""
mkdir -p "$OUT/__LOAD__"
exec > "$OUT/__LOAD__/log.txt" 2>&1
set -u
fail() { echo "FAIL: $*"; exit 1; }
uname -r > "$OUT/__LOAD__/uname.txt"
getconf PAGESIZE > "$OUT/__LOAD__/pagesize.txt"
if [ ! -e "$OUT/build/kmod/shrinkmem.ko" ]; then
    rm -rf "$OUT/build/kmod"
    mkdir -p "$OUT/build/kmod/uapi"
    cp kmod/Kbuild kmod/Makefile kmod/shrinkmem.c "$OUT/build/kmod/" && cp kmod/uapi/*.h "$OUT/build/kmod/uapi/" \
        || fail "copy the module's source"
    make -C "/lib/modules/$(uname -r)/build" M="$OUT/build/kmod" modules > "$OUT/build/make.log" 2>&1 \
        || fail "build the module (build/make.log)"
fi
""" + BODY.replace("__MOUNT__", "/data").replace("__DISK__", "/dev/vdb").replace("__RESULTS__", "$OUT/__LOAD__").replace(
    "__PRESSURE__", "$OUT/build/pressure"
).replace("__MODULE__", "$OUT/build/kmod/shrinkmem.ko")


def script(template: str, load: str, size_mb: int, rounds: int, module: str = "") -> str:
    """`template` (SCRIPT or BOARD_SCRIPT) for one load: its swap and hog, the request size and the rounds."""
    swap_mb, hog_mb = LOADS[load]
    return (
        template.replace("__MODULE__", module)
        .replace("__LOAD__", load)
        .replace("__SIZE__", str(size_mb))
        .replace("__ROUNDS__", str(rounds))
        .replace("__SWAP__", str(swap_mb))
        .replace("__HOG__", str(hog_mb))
    )


# ----------------------------------------------------------------- guest side


def vmstat() -> Dict[str, int]:
    values = {}
    for line in Path("/proc/vmstat").read_text().splitlines():
        key, _, value = line.partition(" ")
        values[key] = int(value)
    return values


def failure_reports() -> int:
    """`page allocation failure` reports in the kernel's log so far."""
    log = subprocess.run(["dmesg"], capture_output=True, text=True, check=False).stdout
    return log.count("page allocation failure")


class Sampler(threading.Thread):
    """Free pages and the min watermark of every zone, every SAMPLE_EVERY seconds, with their time."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        from shrinkd.parse import parse_zoneinfo

        self.parse = parse_zoneinfo
        self.samples: List[Tuple[int, List[Tuple[str, int, int]]]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        fd = os.open("/proc/zoneinfo", os.O_RDONLY)
        try:
            while not self.halt.is_set():
                text = b""
                offset = 0
                while True:
                    chunk = os.pread(fd, 1 << 16, offset)
                    if not chunk:
                        break
                    text += chunk
                    offset += len(chunk)
                now = time.monotonic_ns()
                zones = [(f"{z.node}/{z.zone}", z.free, z.min) for z in self.parse(text.decode()) if z.managed]
                self.samples.append((now, zones))
                self.halt.wait(SAMPLE_EVERY)
        finally:
            os.close(fd)


def reclaim(backend: str, size_mb: int) -> Dict[str, Any]:
    """Ask `backend` for size_mb; what it says it did."""
    if backend == "shrinkmem":
        from shrinkd.shrinkmem import ShrinkMem

        page = os.sysconf("SC_PAGESIZE")
        with ShrinkMem() as device:
            got = device.reclaim((size_mb << 20) // page)
        return {"reported_pages": got.pages_reclaimed, "complete": got.pages_reclaimed >= got.pages_requested}
    try:
        with open("/sys/fs/cgroup/memory.reclaim", "w") as handle:
            handle.write(f"{size_mb}M")
    except OSError as error:
        if error.errno != errno.EAGAIN:
            raise
        return {"reported_pages": None, "complete": False}
    return {"reported_pages": None, "complete": True}


def one_request(
    backend: str, size_mb: int, hog_mb: int, pressure: Path, out: Path, name: str, read_file: str = READ_FILE
) -> Dict[str, Any]:
    log = out / f"pressure-{name}.txt"
    reader = subprocess.Popen(["sh", "-c", f"while :; do cat {read_file} > /dev/null; done"], start_new_session=True)
    hog = subprocess.Popen([str(pressure), str(hog_mb), str(CHUNK_KB), os.devnull]) if hog_mb else None
    allocator = subprocess.Popen([str(pressure), str(RING_MB), str(CHUNK_KB), str(log)])
    sampler = Sampler()
    sampler.start()
    try:
        time.sleep(SETTLE + BASELINE)
        before, failures_before = vmstat(), failure_reports()
        started = time.monotonic_ns()
        said = reclaim(backend, size_mb)
        ended = time.monotonic_ns()
        after, failures_after = vmstat(), failure_reports()
    finally:
        sampler.halt.set()
        sampler.join()
        for process in (allocator, hog):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait()
        os.killpg(reader.pid, signal.SIGKILL)
        reader.wait()
    chunks = [tuple(int(v) for v in line.split()) for line in log.read_text().splitlines() if line.strip()]
    log.unlink()
    baseline_start = started - int(BASELINE * 1e9)

    def delta(prefix: str) -> int:
        return sum(after[k] - before.get(k, 0) for k in after if k.startswith(prefix))

    return {
        "backend": backend,
        "size_mb": size_mb,
        "seconds": (ended - started) / 1e9,
        **said,
        "pgsteal": delta("pgsteal_"),
        "pswpout": delta("pswpout"),
        "allocstall": delta("allocstall_"),
        "oom_kill": after.get("oom_kill", 0) - before.get("oom_kill", 0),
        "failure_reports": failures_after - failures_before,
        "baseline": window(chunks, sampler.samples, baseline_start, started),
        "during": window(chunks, sampler.samples, started, ended),
    }


def window(
    chunks: Sequence[Tuple[int, ...]], samples: Sequence[Tuple[int, List[Tuple[str, int, int]]]], start: int, end: int
) -> Dict[str, Any]:
    """What the allocator and the zone samples saw between `start` and `end` (monotonic ns)."""
    inside = [c for c in chunks if start <= c[0] < end]
    latencies = sorted(c[1] / 1e6 for c in inside if c[1] >= 0)
    zone_samples = [zones for t, zones in samples if start <= t < end]
    dips = [minimum - free for zones in zone_samples for _, free, minimum in zones if free < minimum]
    return {
        "chunks": len(latencies),
        "map_failures": sum(1 for c in inside if c[1] < 0),
        "latency_ms": percentiles(latencies),
        "samples": len(zone_samples),
        "samples_below_min": sum(1 for zones in zone_samples if any(free < minimum for _, free, minimum in zones)),
        "deepest_below_min": max(dips, default=0),
        "lowest_free_over_min": min((free - minimum for zones in zone_samples for _, free, minimum in zones), default=None),
        "zones": zone_figures(zone_samples),
    }


def zone_figures(zone_samples: Sequence[List[Tuple[str, int, int]]]) -> Dict[str, Dict[str, int]]:
    """Per zone: its min watermark, and its free pages over min at the lowest and at the median sample."""
    over: Dict[str, List[int]] = {}
    minimums: Dict[str, int] = {}
    for zones in zone_samples:
        for name, free, minimum in zones:
            over.setdefault(name, []).append(free - minimum)
            minimums[name] = minimum
    return {
        name: {"min": minimums[name], "lowest_over_min": min(values), "median_over_min": int(statistics.median(values))}
        for name, values in over.items()
    }


def percentiles(values: Sequence[float]) -> Optional[Dict[str, float]]:
    """Median, 99th percentile (nearest rank) and maximum of sorted `values`; None when empty."""
    if not values:
        return None
    rank = max(0, math.ceil(0.99 * len(values)) - 1)
    return {"p50": round(statistics.median(values), 2), "p99": round(values[rank], 2), "max": round(values[-1], 2)}


def guest(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="reclaim_safety.py guest")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--loads", nargs="+", choices=list(LOADS), default=list(LOADS), help="loads (default: all)")
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--hog", type=int, default=0)
    parser.add_argument("--pressure", type=Path, required=True)
    parser.add_argument("--read-file", default=READ_FILE, help=f"the file larger than memory (default {READ_FILE})")
    args = parser.parse_args(argv)
    rows = []
    for number in range(args.rounds):
        for backend in BACKENDS if number % 2 == 0 else BACKENDS[::-1]:
            row = one_request(backend, args.size, args.hog, args.pressure, args.out, f"{number}-{backend}", args.read_file)
            row["round"] = number
            rows.append(row)
            print(json.dumps(row), flush=True)
    (args.out / "requests.json").write_text(json.dumps(rows, indent=1))
    return 0


# ----------------------------------------------------------------- host side


def run_kernel(kernel: str, load: str, size_mb: int, rounds: int, results: Path) -> List[Dict[str, Any]]:
    from tests import vm
    from tests.workloads import data_disk

    target = results / kernel / load / "requests.json"
    if target.exists():
        return list(json.loads(target.read_text()))
    run_dir = vm.new_run_dir(f"reclaim-safety-{kernel}-{load}-")
    module = vm.build_module(run_dir, kernel)
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(run_dir / "pressure"), str(REPO / "bench" / "helpers" / "pressure.c")],
        check=True,
        capture_output=True,
    )
    disk = data_disk(run_dir, slab_files=0)
    text = script(SCRIPT, load, size_mb, rounds, str(module))
    result = vm.run_in_vm(text, kernel=kernel, memory=MEMORY, cpus=2, disks=[disk], out_dir=run_dir, timeout=3600)
    disk.unlink()
    if result.returncode != 0 or not (run_dir / "done").exists():
        log = (run_dir / "log.txt").read_text() if (run_dir / "log.txt").exists() else result.output
        raise vm.VMError(f"reclaim safety on {kernel} ({load}) failed:\n{log[-3000:]}")
    rows = list(json.loads((run_dir / "requests.json").read_text()))
    for row in rows:
        row["kernel"] = vm.kernel_release(kernel)
        row["series"] = kernel
        row["load"] = load
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(rows, indent=1))
    shutil.copy(run_dir / "log.txt", target.parent / "log.txt")
    shutil.rmtree(run_dir, ignore_errors=True)
    return rows


def board_rows(out: Path, target: str, load: str) -> List[Dict[str, Any]]:
    """The requests one board boot measured (under out/load), with what says where they ran."""
    from tests import vm

    rows = list(json.loads((out / load / "requests.json").read_text()))
    page_kb = int((out / load / "pagesize.txt").read_text()) // 1024
    release = (out / load / "uname.txt").read_text().strip()
    for row in rows:
        row.update(kernel=release, series=target, load=load, arch=vm.TARGETS[target].arch, page_kb=page_kb)
    return rows


def build_pressure(arch: str, out: Path) -> None:
    """bench/helpers/pressure.c built on this machine for `arch`, linked statically (any C library in the guest)."""
    compiler = CROSS_GCC.get(arch)
    if compiler is None or shutil.which(compiler) is None:
        raise SystemExit(f"reclaim_safety.py: no C compiler for {arch} here ({compiler or 'none known'}): "
                         f"install Debian's gcc-aarch64-linux-gnu for arm64")
    out.parent.mkdir(parents=True, exist_ok=True)
    built = subprocess.run([compiler, "-O2", "-Wall", "-static", "-o", str(out), str(REPO / "bench" / "helpers" / "pressure.c")],
                           capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise SystemExit(f"reclaim_safety.py: {compiler} failed on bench/helpers/pressure.c: {built.stderr.strip()}")


def run_board(target: str, loads: Sequence[str], size_mb: int, rounds: Dict[str, int], results: Path) -> List[Dict[str, Any]]:
    """A board target's requests under each load (tests/vm.py Board, one boot per load not yet kept)."""
    from tests import vm
    from tests.workloads import data_disk

    pending = [load for load in loads if not (results / target / load / "requests.json").exists()]
    if pending:
        run_dir = vm.new_run_dir(f"reclaim-safety-{target}-")
        build_pressure(vm.TARGETS[target].arch, run_dir / "build" / "pressure")
        board = vm.Board(vm.TARGETS[target], run_dir)
        disk = data_disk(run_dir, slab_files=0)
        scripts = [script(BOARD_SCRIPT, load, size_mb, rounds[load]) for load in pending]
        result = board.run(scripts, disks=[disk], memory=MEMORY, cpus=2, timeout=BOARD_TIMEOUT)
        disk.unlink()
        failed = []
        for boot, load in zip(result.boots, pending):
            if boot.status != "0" or not (run_dir / load / "done").exists():
                log = run_dir / load / "log.txt"
                failed.append(f"{load}: status {boot.status}\n{(log.read_text() if log.exists() else boot.log)[-3000:]}")
                continue
            target_dir = results / target / load
            target_dir.mkdir(parents=True, exist_ok=True)
            (target_dir / "requests.json").write_text(json.dumps(board_rows(run_dir, target, load), indent=1))
            shutil.copy(run_dir / load / "log.txt", target_dir / "log.txt")
        if failed:
            raise vm.VMError(f"reclaim safety on {target} failed ({run_dir}):\n" + "\n".join(failed) + f"\n{result.console[-2000:]}")
        shutil.rmtree(run_dir, ignore_errors=True)
    return [row for load in loads for row in json.loads((results / target / load / "requests.json").read_text())]


def label(row: Dict[str, Any]) -> str:
    """The kernel column: architecture, series and page size (runs kept before boards were measured are x86_64, 4 KiB)."""
    series = row["series"].rsplit("-", 1)[-1]
    return f"{row.get('arch', 'x86_64')} {series} ({row.get('page_kb', 4)} KiB)"


def order(row: Dict[str, Any]) -> Tuple[int, int, List[int], int, int]:
    """Rows in table order: x86_64 then the boards, by page size and series; loads and backends in their order."""
    version = [int(part) for part in row["series"].rsplit("-", 1)[-1].split(".")]
    return (
        row.get("arch", "x86_64") != "x86_64",
        row.get("page_kb", 4),
        version,
        list(LOADS).index(row["load"]),
        BACKENDS.index(row["backend"]),
    )


def _latency(window: Dict[str, Any]) -> str:
    figures = window["latency_ms"]
    return "no chunk" if figures is None else f"{figures['p50']:.1f} / {figures['p99']:.1f} / {figures['max']:.0f}"


def table(rows: Sequence[Dict[str, Any]]) -> str:
    header = (
        "| kernel | load | backend | round | asked | took (s) | reclaimed (pages: reported / pgsteal) "
        "| samples below min: before / during | deepest dip (pages) | nearest min (pages over it): before / during "
        "| allocstall | OOM kills | alloc failures "
        "| 2 MiB chunk fault ms (p50 / p99 / max): before | during |"
    )
    lines = [header, "|" + "---|" * 15]
    for row in rows:
        base, during = row["baseline"], row["during"]
        reported = row["reported_pages"]
        took = ("all" if row["complete"] else "EAGAIN") if reported is None else str(reported)
        lines.append(
            f"| {label(row)} | {row['load']} | {row['backend']} | {row['round']} | {row['size_mb']} MB | {row['seconds']:.2f} "
            f"| {took} / {row['pgsteal']} "
            f"| {base['samples_below_min']} of {base['samples']} / {during['samples_below_min']} of {during['samples']} "
            f"| {during['deepest_below_min']} | {base['lowest_free_over_min']} / {during['lowest_free_over_min']} "
            f"| {row['allocstall']} | {row['oom_kill']} | {row['failure_reports']} "
            f"| {_latency(base)} | {_latency(during)} |"
        )
    return "\n".join(lines) + "\n"


def _median_p99(rows: Sequence[Dict[str, Any]], part: str) -> float:
    values = [row[part]["latency_ms"]["p99"] for row in rows if row[part]["latency_ms"] is not None]
    return statistics.median(values) if values else float("nan")


def summary(rows: Sequence[Dict[str, Any]]) -> str:
    """Per kernel and backend, over the rounds: medians, and the sums of what should be zero."""
    lines = [
        "| kernel | load | backend | requests | median time (s) | median pgsteal | samples below min (all requests) "
        "| nearest min (pages over it) | allocstall (sum) | OOM kills | alloc failures "
        "| median p99 fault ms: before -> during |",
        "|" + "---|" * 12,
    ]
    keys = dict.fromkeys((row["series"], row["load"], row["backend"]) for row in sorted(rows, key=order))
    for series, load, backend in keys:
        mine = [row for row in rows if (row["series"], row["load"], row["backend"]) == (series, load, backend)]

        below = sum(r["during"]["samples_below_min"] for r in mine)
        samples = sum(r["during"]["samples"] for r in mine)
        lines.append(
            f"| {label(mine[0])} | {load} | {backend} | {len(mine)} | {statistics.median(r['seconds'] for r in mine):.2f} "
            f"| {statistics.median(r['pgsteal'] for r in mine):.0f} | {below} of {samples} "
            f"| {min((r['during']['lowest_free_over_min'] for r in mine if r['during']['samples']), default='n/a')} "
            f"| {sum(r['allocstall'] for r in mine)} | {sum(r['oom_kill'] for r in mine)} "
            f"| {sum(r['failure_reports'] for r in mine)} | {_median_p99(mine, 'baseline'):.1f} -> {_median_p99(mine, 'during'):.1f} |"
        )
    return "\n".join(lines) + "\n"


def kept(results: Path) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = []
    for path in sorted(results.glob("*/*/requests.json")):
        rows.extend(json.loads(path.read_text()))
    return sorted(rows, key=lambda row: order(row)[:4])


def rounds_per_load(rounds: Optional[int]) -> Dict[str, int]:
    """Requests of each backend under each load: `rounds` for all, or ROUNDS."""
    return {load: rounds if rounds is not None else ROUNDS[load] for load in LOADS}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["guest"]:
        return guest(argv[1:])
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--kernels",
        nargs="+",
        help=f"kernel series of this machine's x86_64 kernels (a run's default: 6.1 6.12), or board targets "
        f"({' '.join(BOARDS)}); --measured tables every kernel kept unless told",
    )
    parser.add_argument("--loads", nargs="+", choices=list(LOADS), default=list(LOADS), help="loads (default: all)")
    parser.add_argument("--size", type=int, default=200, help="MB each request asks for (default 200)")
    parser.add_argument(
        "--rounds",
        type=int,
        help="requests of each backend per kernel and load (default: "
        + ", ".join(f"{n} under {load}" for load, n in ROUNDS.items()) + ")",
    )
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help=f"where runs are kept (default {DEFAULT_RESULTS})")
    parser.add_argument("--again", action="store_true", help="run again what was already measured")
    parser.add_argument("--measured", action="store_true", help="boot nothing: the tables of the runs kept")
    parser.add_argument("--docs", action="store_true", help="write the tables into docs/outcome.md")
    args = parser.parse_args(argv)
    if args.measured and args.again:
        parser.error("--again and --measured exclude each other")
    unknown = [k for k in args.kernels or () if not (k in BOARDS or re.fullmatch(r"\d+\.\d+", k))]
    if unknown:
        parser.error(f"--kernels: {' '.join(unknown)} is neither a kernel series (6.1) nor a board target ({' '.join(BOARDS)})")
    rounds = rounds_per_load(args.rounds)
    if args.measured:
        rows = [
            row for row in kept(args.results) if (args.kernels is None or row["series"] in args.kernels) and row["load"] in args.loads
        ]
        if not rows:
            parser.error(f"no runs kept under {args.results}" + (f" for kernels {' '.join(args.kernels)}" if args.kernels else ""))
    else:
        rows = []
        for kernel in args.kernels or ["6.1", "6.12"]:
            if args.again:
                for load in args.loads:
                    shutil.rmtree(args.results / kernel / load, ignore_errors=True)
            if kernel in BOARDS:
                print(f"reclaim safety: {kernel}, {' '.join(args.loads)} ...", file=sys.stderr, flush=True)
                rows.extend(run_board(kernel, args.loads, args.size, rounds, args.results))
                continue
            for load in args.loads:
                print(f"reclaim safety: {kernel}, {load} ...", file=sys.stderr, flush=True)
                rows.extend(run_kernel(kernel, load, args.size, rounds[load], args.results))
    text = summary(rows) + "\n" + table(rows)
    sys.stdout.write(text)
    if args.docs:
        docs = REPO / "docs" / "outcome.md"
        current = docs.read_text()
        if current.count(MARKER) != 2:
            parser.error(f"docs/outcome.md has no pair of {MARKER} markers to write between")
        head, _, rest = current.partition(MARKER)
        _, _, tail = rest.partition(MARKER)
        docs.write_text(f"{head}{MARKER}\n{text}{MARKER}{tail}")
        print("wrote docs/outcome.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
