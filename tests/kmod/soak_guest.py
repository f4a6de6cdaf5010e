"""The shrinkmem module under a long loop of requests, reads and ioctls (run as root in the guest).

Started by tests/test_kmod_soak_vm.py and bench/kmod_soak.py through tests/vm.py:

    $PY tests/kmod/soak_guest.py --ko PATH --out DIR --iterations N --data-disk /dev/vda

It loads the module, runs a seeded mix of operations, each on a descriptor opened for
it (ioctl RECLAIM of 1 to 2048 pages, ioctl INFO and read(), a 1 MB text write, a bad
write and a bad ioctl from the documented error table, a change of chunk_mb, and now and
then a second process doing the same at once), reads the cache file back in every few
hundred operations so that reclaim has page cache to take, and records: every outcome
by operation and errno, the module's own counters, the slab caches and meminfo after
a warm-up and at the end (each after reading the cache file in whole and dropping
reclaimable slab, so that the page cache's nodes, dentries and inodes count alike), the module's size and reference count, rmmod, and the kernel log since the
module was loaded. It writes DIR/results.json; the host decides pass or fail.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from shrinkd import shrinkmem  # noqa: E402
from shrinkd.errors import ActionError  # noqa: E402

DEVICE = shrinkmem.DEVICE
PARAMETERS = Path("/sys/module/shrinkmem/parameters")
MOUNT = Path("/tmp/shrinkmem-soak")
CACHE_FILE = MOUNT / "cache.bin"
MARK = "shrinkmem-soak: module loaded"

# Bad inputs and the errno each must get (kmod/README.md, "Errors").
BAD_WRITES: List[Tuple[bytes, str]] = [
    (b"abc", "EINVAL"),
    (b"0", "EINVAL"),
    (b"-1", "EINVAL"),
    (b"100\n\n", "EINVAL"),
    (b"1\x002", "EINVAL"),
    (b"9" * 30, "ERANGE"),
    (b"7" * 100, "EINVAL"),
]
UNKNOWN_IOCTL = shrinkmem.IOC_INFO + 0x10  # a command number the module does not know


def log(message: str) -> None:
    uptime = Path("/proc/uptime").read_text().split()[0]
    print(f"[{uptime:>8}] {message}", flush=True)


def errno_name(error: OSError) -> str:
    return errno.errorcode.get(error.errno or 0, str(error.errno))


def slabinfo() -> Dict[str, List[int]]:
    """Each slab cache: [active objects, objects, object size]."""
    caches: Dict[str, List[int]] = {}
    for line in Path("/proc/slabinfo").read_text().splitlines()[2:]:
        fields = line.split()
        caches[fields[0]] = [int(fields[1]), int(fields[2]), int(fields[3])]
    return caches


def meminfo() -> Dict[str, int]:
    values = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0])
    return values


def module_line() -> List[str]:
    """shrinkmem's line of /proc/modules: name, size, references, users, state, address."""
    for line in Path("/proc/modules").read_text().splitlines():
        if line.startswith("shrinkmem "):
            return line.split()
    return []


def snapshot() -> Dict[str, Any]:
    """Slab caches and meminfo, each taken the same way: the cache file read in whole (the page
    cache's own nodes then count alike) and reclaimable slab (dentries, inodes) dropped."""
    fill_cache()
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("2")
    return {"slab": slabinfo(), "meminfo": meminfo(), "module": module_line()}


def fill_cache() -> None:
    with open(CACHE_FILE, "rb") as handle:
        while handle.read(1 << 20):
            pass


def summary() -> Dict[str, str]:
    with shrinkmem.ShrinkMem(DEVICE) as device:
        return device.summary()


class Loop:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.outcomes: Dict[str, Dict[str, int]] = {}
        self.unexpected: List[str] = []
        self.requests = 0  # reclaim requests that succeeded (ioctl and text)
        self.pages_requested = 0
        self.pages_reclaimed = 0

    def count(self, operation: str, outcome: str, expected: str = "ok") -> None:
        table = self.outcomes.setdefault(operation, {})
        table[outcome] = table.get(outcome, 0) + 1
        if outcome != expected and len(self.unexpected) < 50:
            self.unexpected.append(f"{operation}: {outcome}, expected {expected}")

    def reclaim(self) -> None:
        pages = self.rng.randint(1, 2048)
        try:
            with shrinkmem.ShrinkMem(DEVICE) as device:
                result = device.reclaim(pages)
        except ActionError as error:
            self.count("ioctl_reclaim", str(error).rsplit(": ", 1)[-1].split(" ")[0])
            return
        self.requests += 1
        self.pages_requested += pages
        self.pages_reclaimed += result.pages_reclaimed
        self.count("ioctl_reclaim", "ok")

    def info(self) -> None:
        with shrinkmem.ShrinkMem(DEVICE) as device:
            info = device.info()
            text = device.summary()
        good = info.abi_version > 0 and info.page_size == os.sysconf("SC_PAGE_SIZE") and "calls" in text
        self.count("info_and_read", "ok" if good else f"odd: {info} {text}")

    def text_write(self) -> None:
        fd = os.open(DEVICE, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"1\n")
        except OSError as error:
            self.count("text_write", errno_name(error))
            return
        finally:
            os.close(fd)
        self.requests += 1
        self.pages_requested += (1 << 20) // os.sysconf("SC_PAGE_SIZE")
        self.count("text_write", "ok")

    def bad_write(self) -> None:
        data, expected = self.rng.choice(BAD_WRITES)
        fd = os.open(DEVICE, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data)
            outcome = "ok"
        except OSError as error:
            outcome = errno_name(error)
        finally:
            os.close(fd)
        self.count("bad_write", outcome, expected)

    def bad_ioctl(self) -> None:
        fd = os.open(DEVICE, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.ioctl(fd, UNKNOWN_IOCTL, bytearray(64), True)
            outcome = "ok"
        except OSError as error:
            outcome = errno_name(error)
        finally:
            os.close(fd)
        self.count("bad_ioctl", outcome, "ENOTTY")

    def parameter(self) -> None:
        (PARAMETERS / "chunk_mb").write_text(str(self.rng.choice([1, 2, 4, 16, 64])))
        self.count("chunk_mb", "ok")

    def concurrent(self, operations: int) -> None:
        """A second process reclaims while this one goes on: the requests queue on the module's lock."""
        child = os.fork()
        if child == 0:
            status = 0
            try:
                for _ in range(operations):
                    with shrinkmem.ShrinkMem(DEVICE) as device:
                        device.reclaim(64)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        for _ in range(operations):
            self.reclaim()
        _, status = os.waitpid(child, 0)
        self.count("concurrent_child", "ok" if status == 0 else f"exit {status}")
        if status == 0:
            self.requests += operations
            self.pages_requested += 64 * operations

    def step(self, number: int) -> None:
        if number % 250 == 0:
            fill_cache()
        if number % 100 == 50:
            self.concurrent(10)
            return
        roll = self.rng.random()
        operation: Callable[[], None]
        if roll < 0.40:
            operation = self.reclaim
        elif roll < 0.60:
            operation = self.info
        elif roll < 0.70:
            operation = self.text_write
        elif roll < 0.82:
            operation = self.bad_write
        elif roll < 0.95:
            operation = self.bad_ioctl
        else:
            operation = self.parameter
        operation()


def kernel_log_since_mark() -> List[str]:
    lines = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout.splitlines()
    start = max((n for n, line in enumerate(lines) if MARK in line), default=0)
    return lines[start:]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ko", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--warm-up", type=int, default=300)
    parser.add_argument("--data-disk", required=True)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    out = Path(args.out)
    results: Dict[str, Any] = {"iterations": args.iterations, "warm_up": args.warm_up}

    def save() -> None:
        (out / "results.json").write_text(json.dumps(results, indent=1))

    try:
        MOUNT.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-o", "ro", args.data_disk, str(MOUNT)], check=True)
        results["before_load"] = snapshot()
        subprocess.run(["insmod", args.ko], check=True, capture_output=True, text=True)
        Path("/dev/kmsg").write_text(MARK + "\n")
        results["coresize_loaded"] = int(Path("/sys/module/shrinkmem/coresize").read_text())
        results["summary_loaded"] = summary()
        loop = Loop(args.seed)
        log(f"warm-up: {args.warm_up} operations")
        for number in range(args.warm_up):
            loop.step(number)
        results["after_warm_up"] = snapshot()
        results["summary_after_warm_up"] = summary()
        requests_warm = loop.requests
        log(f"soak: {args.iterations} operations")
        started = time.monotonic()
        for number in range(args.warm_up, args.warm_up + args.iterations):
            loop.step(number)
            if number % 1000 == 0:
                log(f"  {number - args.warm_up} done")
        results["seconds"] = time.monotonic() - started
        results["at_end"] = snapshot()
        results["summary_at_end"] = summary()
        results["coresize_at_end"] = int(Path("/sys/module/shrinkmem/coresize").read_text())
        results["outcomes"] = loop.outcomes
        results["unexpected"] = loop.unexpected
        results["requests"] = loop.requests
        results["requests_in_soak"] = loop.requests - requests_warm
        results["pages_requested"] = loop.pages_requested
        removed = subprocess.run(["rmmod", "shrinkmem"], capture_output=True, text=True)
        results["rmmod"] = [removed.returncode, removed.stderr.strip()]
        results["after_rmmod"] = snapshot()
        results["kernel_log"] = kernel_log_since_mark()
    except Exception as error:  # recorded for the host, which fails the test and shows it
        import traceback

        results["error"] = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        results.setdefault("kernel_log", kernel_log_since_mark())
    save()
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
