"""Memory workloads: each leaves a guest's memory in a known shape, for the outcome study and the VM tests.

    compactable  page cache, plus anonymous memory with every other page freed and the
                 free huge-page blocks taken: fragmented, and compaction can fix it
                 (every page in the way is movable)
    unfixable    anonymous memory over most of memory with one page in 16 freed, the free
                 huge-page blocks taken; then inodes and dentries of many small files
                 (reclaimable slab) fill those holes, a few slab pages in every page block
                 (built with the watermarks lowered, no watermark boost and no proactive
                 compaction, so that neither kswapd nor kcompactd undoes it meanwhile); the
                 anonymous memory is freed and a page cache read: memory is mostly free, yet
                 few page blocks can be emptied by moving pages, since most hold slab.
                 Compaction alone cannot fix it; dropping the slab (reclaim) can
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
import contextlib
import json
import mmap
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

REPO = Path(__file__).resolve().parent.parent
DATA_FILES = {"big.bin": 1536, "medium.bin": 768, "small.bin": 320}  # MiB, sparse on the host
# Empty files (files/<i / 256>/<i % 256>, in hex: mkfs.ext4 -d fills a large directory slowly)
# whose inodes and dentries become reclaimable slab when stat()ed. In 1 GiB guests 65536 made
# 85 to 102 MiB of slab, and some builds ran out of them before the holes did, leaving whole
# blocks without slab (index 0.605 instead of 1.000); with twice as many, the builds measured
# took the holes (89 to 124 MiB of slab, under 600 free order-0 pages left), or stopped at
# `unfixable`'s free-memory floor.
SLAB_FILES = 1 << 17
WORKLOADS = ("compactable", "unfixable", "lowfree", "healthy", "thrash")


# ----------------------------------------------------------------- host side


def slab_file(folder: Path, number: int) -> Path:
    """Where file `number` of the slab files is (tests/helpers/dentries.c looks it up there)."""
    return folder / f"{number >> 8:x}" / f"{number & 0xFF:x}"


def build_dentries(out: Path) -> Path:
    """tests/helpers/dentries.c compiled into `out`."""
    binary = out / "dentries"
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(binary), str(REPO / "tests" / "helpers" / "dentries.c")],
        check=True,
        capture_output=True,
    )
    return binary


def data_disk(run_dir: Path, slab_files: int = SLAB_FILES) -> Path:
    """An ext4 image holding the files the workloads read into the page cache (sparse: made in a moment;
    reading their holes fills the guest's page cache all the same) and `slab_files` empty files (only
    `unfixable` needs them: 0 saves some 25 seconds), and the dentry maker built into `run_dir` (the
    guest sees it there)."""
    build_dentries(run_dir)
    content = run_dir / "data-content"
    content.mkdir(exist_ok=True)
    for name, mib in DATA_FILES.items():
        with open(content / name, "wb") as handle:
            handle.truncate(mib << 20)
    for number in range(slab_files):
        path = slab_file(content / "files", number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    image = run_dir / "data.img"
    with open(image, "wb") as handle:
        handle.truncate((sum(DATA_FILES.values()) + 256) << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(content), str(image)], check=True, capture_output=True)
    shutil.rmtree(content)
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


def child(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.capture", *args], cwd=REPO)


def wait_ready(process: subprocess.Popen[bytes], ready: Path) -> None:
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        time.sleep(0.2)
    ready.unlink()


def fragment(percent_of_available: int, scratch: Path, every: int = 2) -> subprocess.Popen[bytes]:
    """Anonymous memory with one page in `every` freed (tests.capture.fragment), held by a child."""
    megabytes = meminfo()["MemAvailable"] * percent_of_available // 100 // 1024
    ready = scratch / ".fragment-ready"
    process = child("fragment", str(megabytes), str(ready), "--every", str(every))
    wait_ready(process, ready)
    return process


def take_huge_blocks(scratch: Path) -> subprocess.Popen[bytes]:
    """Every free huge-page block taken as a transparent huge page (tests.capture.hog), held by a child."""
    ready = scratch / ".hog-ready"
    process = child("hog", str(ready))
    wait_ready(process, ready)
    return process


def cache_inodes(count: int, directory: Path, maker: Path, min_free_kb: int = 0) -> int:
    """stat() `count` files of `directory` (laid out as data_disk() makes them): an inode and a dentry each,
    reclaimable slab that only reclaim frees; stops early once MemFree is below `min_free_kb` (when
    given). Returns the files looked up. `maker` is tests/helpers/dentries.c built."""
    done = subprocess.run([str(maker), str(directory), str(count), str(min_free_kb)], check=True, capture_output=True)
    return int(done.stdout.split()[0])


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
    held: List[subprocess.Popen[bytes]] = []
    if name in ("healthy", "thrash"):
        read_page_cache(name, data)
    elif name == "compactable":
        read_page_cache(name, data)
        held.append(fragment(70, scratch))
        held.append(take_huge_blocks(scratch))
    elif name == "unfixable":
        # The inode tables read once and the inodes dropped: the second pass below then
        # allocates slab only (a buffer page would take a hole as movable memory).
        cache_inodes(SLAB_FILES, data / "files", scratch / "dentries")
        Path("/proc/sys/vm/drop_caches").write_text("2\n")
        # Watermarks lowered while the state is built: the holes left free at the end (what
        # kswapd keeps free) are blocks that get no slab.
        with quiet_kernel():
            # Anonymous memory takes the small free pieces first, so what it leaves free is its
            # own holes (one page in 16 of each block) and whole huge-page blocks: the hog takes
            # those. (97 % of what is available left the guest reclaiming for over ten minutes.)
            holes = fragment(90, scratch, every=16)
            progress("holes made")
            held.append(take_huge_blocks(scratch))
            progress("huge-page blocks taken")
            # A slab page that falls back into a movable block takes all of that block's free
            # pages (its holes) for the slab, block after block: slab in nearly every block,
            # until the holes are nearly all taken (more would make reclaim trim the oldest
            # slab, emptying blocks again).
            looked = cache_inodes(SLAB_FILES, data / "files", scratch / "dentries", min_free_kb=2048)
            progress(f"{looked} inodes cached")
            holes.kill()
            holes.wait()
            progress("holes' memory freed")
        read_page_cache(name, data)
        progress("page cache read")
    elif name == "lowfree":
        read_page_cache(name, data)
        free_huge_pages_later(12)
    else:
        raise ValueError(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})")
    return held


def progress(phase: str) -> None:
    """One line on stderr while a workload is built: free memory, reclaimable slab and the free lists."""
    info = meminfo()
    zones = " | ".join(" ".join(line.split()[3:]) for line in Path("/proc/buddyinfo").read_text().splitlines())
    print(f"workload: {phase}: free {info['MemFree'] >> 10} MiB, slab {info.get('SReclaimable', 0) >> 10} MiB; {zones}",
          file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet_kernel() -> Iterator[None]:
    """While unfixable is built: vm.min_free_kbytes and vm.watermark_scale_factor at their floor, no
    watermark boost (each slab page taken from a movable block boosts the watermarks, and kswapd
    then trims the oldest slab, emptying blocks again) and no proactive compaction (kcompactd
    moving the anonymous pages would make free blocks that the slab takes before the holes);
    all restored afterwards."""
    settings = {
        Path("/proc/sys/vm/min_free_kbytes"): "128",
        Path("/proc/sys/vm/watermark_scale_factor"): "1",
        Path("/proc/sys/vm/watermark_boost_factor"): "0",
        Path("/proc/sys/vm/compaction_proactiveness"): "0",
    }
    saved = {path: path.read_text() for path in settings}
    try:
        for path, value in settings.items():
            path.write_text(f"{value}\n")
        yield
    finally:
        for path, value in saved.items():
            path.write_text(value)


def read_page_cache(name: str, data: Path) -> None:
    """The reads that leave workload `name`'s page cache: what it builds, what thrash reads in a
    loop, and what the outcome study reads again after a strategy, counting refaults."""
    if name == "lowfree":
        read_into_cache(data / "big.bin")
    elif name == "thrash":
        read_into_cache(data / "medium.bin", meminfo()["MemTotal"] * 1024 - (192 << 20))
    else:
        read_into_cache(data / "small.bin")


def keep_busy(name: str, data: Path, stop: Callable[[], bool]) -> None:
    """While the state is held: thrash re-reads its working set; the others wait."""
    while not stop():
        if name == "thrash":
            read_page_cache(name, data)
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


def index_of_largest_zone(state: Dict[str, Any], order: int) -> Optional[float]:
    """The kernel's unusable index at `order` (debugfs) of the zone with the most free pages, in a measured state."""
    zones = state["buddyinfo"]
    largest = max(zones, key=lambda key: sum(n << o for o, n in enumerate(zones[key])))
    node, zone = largest.split(":")
    for line in state["unusable_index"].splitlines():
        words = line.replace(",", " ").split()
        if len(words) > 4 + order and words[1] == node and words[3] == zone:
            return float(words[4 + order])
    return None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Memory workloads for the outcome study (run in a guest).")
    sub = parser.add_subparsers(dest="mode", required=True)
    run = sub.add_parser("guest", help="build a workload's state and hold it until SIGTERM")
    run.add_argument("name", choices=WORKLOADS)
    run.add_argument("data", type=Path, help="where the data disk is mounted")
    run.add_argument("ready", type=Path, help="written once the state is built")
    save = sub.add_parser("measure", help="save the measured state as JSON")
    save.add_argument("file", type=Path)
    index = sub.add_parser("index", help="print the kernel's unusable index at ORDER of the zone with the most free memory")
    index.add_argument("order", type=int)
    again = sub.add_parser("reread", help="read a workload's page cache again")
    again.add_argument("name", choices=WORKLOADS)
    again.add_argument("data", type=Path, help="where the data disk is mounted")
    args = parser.parse_args(argv)
    if args.mode == "guest":
        guest(args.name, args.data, args.ready)
    elif args.mode == "index":
        value = index_of_largest_zone(measure(), args.order)
        if value is None:
            print(f"workloads: no unusable index at order {args.order} (is debugfs mounted?)", file=sys.stderr)
            return 1
        print(f"{value:.3f}")
    elif args.mode == "reread":
        read_page_cache(args.name, args.data)
    else:
        args.file.write_text(json.dumps(measure()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
