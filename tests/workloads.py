"""Memory workloads: each leaves a guest's memory in a known shape, for the outcome study and the VM tests.

    compactable  page cache, plus anonymous memory with every other page freed and the
                 free huge-page blocks taken: fragmented, and compaction can fix it
                 (every page in the way is movable)
    unfixable    reclaimable slab (negative dentries) allocated while the page cache filled
                 memory, so slab pages sit in nearly every page block; then the page cache
                 dropped, a smaller one read, and the free huge-page blocks taken:
                 compaction cannot empty a block that holds slab
    lowfree      page cache fills memory, and the little that is free sits in huge-page
                 blocks (freed transparent huge pages): kswapd's job, not shrinkd's
    healthy      page cache only: no fragmentation
    thrash       a page-cache working set just under memory size, re-read in a loop

In the guest, `$PY -m tests.workloads guest NAME DATA_DIR READY_FILE` builds the state
from the files of the data disk (made on the host by data_disk()), writes READY_FILE and
holds the state (thrash keeps re-reading) until SIGTERM. `$PY -m tests.workloads measure
FILE` saves what the study measures (free blocks per order, the kernel's own unusable index
from debugfs, page cache, refaults) as JSON.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
DATA_FILES = {"big.bin": 1536, "medium.bin": 768, "small.bin": 320}  # MiB, sparse on the host
WORKLOADS = ("compactable", "unfixable", "lowfree", "healthy", "thrash")


# ----------------------------------------------------------------- host side


def data_disk(run_dir: Path) -> Path:
    """An ext4 image holding the files the workloads read into the page cache (sparse: made in a moment;
    reading their holes fills the guest's page cache all the same), and the dentry maker built into
    `run_dir` (the guest sees it there)."""
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(run_dir / "dentries"), str(REPO / "tests" / "helpers" / "dentries.c")],
        check=True,
        capture_output=True,
    )
    content = run_dir / "data-content"
    content.mkdir(exist_ok=True)
    for name, mib in DATA_FILES.items():
        with open(content / name, "wb") as handle:
            handle.truncate(mib << 20)
    image = run_dir / "data.img"
    with open(image, "wb") as handle:
        handle.truncate((sum(DATA_FILES.values()) + 256) << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(content), str(image)], check=True, capture_output=True)
    for name in DATA_FILES:
        (content / name).unlink()
    content.rmdir()
    return image


# ----------------------------------------------------------------- guest side


def meminfo() -> Dict[str, int]:
    values = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0])
    return values


def read_into_cache(path: Path, limit: Optional[int] = None) -> int:
    """Read a file (or its first `limit` bytes) so that it sits in the page cache; bytes read."""
    done = 0
    with open(path, "rb", buffering=0) as handle:
        while limit is None or done < limit:
            chunk = handle.read(1 << 20)
            if not chunk:
                break
            done += len(chunk)
    return done


def drop_from_cache(path: Path) -> None:
    with open(path, "rb") as handle:
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def child(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.capture", *args], cwd=REPO)


def wait_ready(process: subprocess.Popen[bytes], ready: Path) -> None:
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        time.sleep(0.2)
    ready.unlink()


def fragment(percent_of_available: int, scratch: Path) -> subprocess.Popen[bytes]:
    """Anonymous memory with every other page freed (tests.capture.fragment), held by a child."""
    megabytes = meminfo()["MemAvailable"] * percent_of_available // 100 // 1024
    ready = scratch / ".fragment-ready"
    process = child("fragment", str(megabytes), str(ready))
    wait_ready(process, ready)
    return process


def take_huge_blocks(scratch: Path) -> subprocess.Popen[bytes]:
    """Every free huge-page block taken as a transparent huge page (tests.capture.hog), held by a child."""
    ready = scratch / ".hog-ready"
    process = child("hog", str(ready))
    wait_ready(process, ready)
    return process


def negative_dentries(count: int, directory: Path, maker: Path) -> None:
    """`count` dentries of names that do not exist in `directory` (on ext4, which keeps them):
    reclaimable slab, freed only by reclaim. `maker` is tests/helpers/dentries.c built."""
    directory.mkdir(exist_ok=True)
    subprocess.run([str(maker), str(directory), str(count)], check=True)


def free_huge_pages_later(percent_of_total: int) -> None:
    """Fault in transparent huge pages (direct compaction and reclaim as needed), then unmap them:
    the memory goes back as free huge-page blocks."""
    size = meminfo()["MemTotal"] * 1024 * percent_of_total // 100
    Path("/sys/kernel/mm/transparent_hugepage/defrag").write_text("always")
    area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    area.madvise(mmap.MADV_HUGEPAGE)
    for offset in range(0, size, mmap.PAGESIZE):
        area[offset] = 1
    area.close()
    Path("/sys/kernel/mm/transparent_hugepage/defrag").write_text("madvise")


def build(name: str, data: Path, scratch: Path) -> List[subprocess.Popen[bytes]]:
    """Build workload `name`; the children that hold its memory."""
    total = meminfo()["MemTotal"] * 1024
    held: List[subprocess.Popen[bytes]] = []
    if name == "healthy":
        read_into_cache(data / "small.bin")
    elif name == "compactable":
        read_into_cache(data / "small.bin")
        held.append(fragment(70, scratch))
        held.append(take_huge_blocks(scratch))
    elif name == "unfixable":
        read_into_cache(data / "big.bin")  # the page cache fills memory...
        # ...so the slab pages come from page blocks scattered all over it: about a fifth of memory.
        negative_dentries(total // 5 // 192, data / "dentries", scratch / "dentries")
        drop_from_cache(data / "big.bin")
        read_into_cache(data / "small.bin")
        held.append(take_huge_blocks(scratch))
    elif name == "lowfree":
        read_into_cache(data / "big.bin")
        free_huge_pages_later(12)
    elif name == "thrash":
        read_into_cache(data / "medium.bin", total - (192 << 20))
    else:
        raise ValueError(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})")
    return held


def keep_busy(name: str, data: Path, stop: Callable[[], bool]) -> None:
    """While the state is held: thrash re-reads its working set; the others wait."""
    total = meminfo()["MemTotal"] * 1024
    while not stop():
        if name == "thrash":
            read_into_cache(data / "medium.bin", total - (192 << 20))
        else:
            time.sleep(0.5)


def guest(name: str, data: Path, ready: Path) -> None:
    stopping = []
    signal.signal(signal.SIGTERM, lambda number, frame: stopping.append(number))
    held = build(name, data, ready.parent)
    try:
        time.sleep(1)  # per-cpu page lists drain into the buddy lists
        ready.write_text(f"{name}\n")
        keep_busy(name, data, lambda: bool(stopping))
    finally:
        for process in held:
            process.kill()
            process.wait()


def measure() -> Dict[str, Any]:
    """What the study compares, read at one moment."""
    buddy = [line.split() for line in Path("/proc/buddyinfo").read_text().splitlines()]
    debugfs = Path("/sys/kernel/debug/extfrag/unusable_index")
    vmstat = dict(line.split() for line in Path("/proc/vmstat").read_text().splitlines())
    info = meminfo()
    return {
        "time": time.monotonic(),
        "buddyinfo": {f"{row[1].rstrip(',')}:{row[3]}": [int(n) for n in row[4:]] for row in buddy},
        "unusable_index": debugfs.read_text() if debugfs.exists() else "",
        "cached_kb": info["Cached"],
        "free_kb": info["MemFree"],
        "sreclaimable_kb": info.get("SReclaimable", 0),
        "workingset_refault_file": int(vmstat.get("workingset_refault_file", vmstat.get("workingset_refault", 0))),
        "pgsteal": int(vmstat.get("pgsteal_anon", 0)) + int(vmstat.get("pgsteal_file", 0)),
        "compact_stall": int(vmstat.get("compact_stall", 0)),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Memory workloads for the outcome study (run in a guest).")
    sub = parser.add_subparsers(dest="mode", required=True)
    run = sub.add_parser("guest", help="build a workload's state and hold it until SIGTERM")
    run.add_argument("name", choices=WORKLOADS)
    run.add_argument("data", type=Path, help="where the data disk is mounted")
    run.add_argument("ready", type=Path, help="written once the state is built")
    save = sub.add_parser("measure", help="save the measured state as JSON")
    save.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    if args.mode == "guest":
        guest(args.name, args.data, args.ready)
    else:
        args.file.write_text(json.dumps(measure()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
