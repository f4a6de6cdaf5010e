"""Exercise the shrinkmem module inside a booted Debian kernel (run as root in the guest).

Started by tests/test_kmod_vm.py through tests/vm.py:

    $PY tests/kmod/guest_checks.py --ko PATH --out DIR --data-disk /dev/vda --swap-disk /dev/vdb

It loads the module, runs every check and writes what it measured (raw numbers,
errno names, kernel log) to DIR/results.json; the host test decides pass or fail.
Each check is a section of its own: one that raises records its traceback and the
others still run. Progress goes to stdout with guest uptimes.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import random
import re
import signal
import stat
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from shrinkd import shrinkmem  # noqa: E402
from shrinkd.errors import ActionError  # noqa: E402

DEVICE = shrinkmem.DEVICE
MOUNT = Path("/tmp/shrinkmem-data")
CACHE_FILE = MOUNT / "cache.bin"
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

Json = Dict[str, Any]


def log(message: str) -> None:
    uptime = Path("/proc/uptime").read_text().split()[0]
    print(f"[{uptime:>8}] {message}", flush=True)


def run(*argv: str, check: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def errno_name(error: OSError) -> str:
    return errno.errorcode.get(error.errno or 0, str(error.errno))


def meminfo() -> Dict[str, int]:
    values: Dict[str, int] = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0])
    return values


def pcp_pages() -> Dict[str, int]:
    """Pages parked on per-CPU free lists (not in MemFree) and their summed high marks, from /proc/zoneinfo."""
    text = Path("/proc/zoneinfo").read_text()
    count = sum(int(n) for n in re.findall(r"^\s+count:\s+(\d+)$", text, re.M))
    high = sum(int(n) for n in re.findall(r"^\s+high:\s+(\d+)$", text, re.M))
    return {"count": count, "high": high}


def memory_snapshot() -> Json:
    info = meminfo()
    pcp = pcp_pages()
    return {
        "MemFree_kB": info["MemFree"],
        "Cached_kB": info["Cached"],
        "AnonPages_kB": info["AnonPages"],
        "SwapFree_kB": info.get("SwapFree", 0),
        "pcp_count_pages": pcp["count"],
        "pcp_high_pages": pcp["high"],
    }


def summary() -> Dict[str, str]:
    with shrinkmem.ShrinkMem() as dev:
        return dev.summary()


def dmesg() -> str:
    return run("dmesg", check=True).stdout


def write_text(payload: bytes) -> Json:
    """One write() of payload to the device: its return value or errno name."""
    fd = os.open(DEVICE, os.O_WRONLY)
    try:
        return {"ret": os.write(fd, payload)}
    except OSError as error:
        return {"errno": errno_name(error)}
    finally:
        os.close(fd)


def ioctl_raw(cmd: int, buffer: Any) -> Json:
    fd = os.open(DEVICE, os.O_RDWR)
    try:
        if isinstance(buffer, bytearray):
            fcntl.ioctl(fd, cmd, buffer, True)
        else:
            fcntl.ioctl(fd, cmd, buffer)
        return {"ret": 0}
    except OSError as error:
        return {"errno": errno_name(error)}
    finally:
        os.close(fd)


# ---------------------------------------------------------------- sections


def section_load(args: argparse.Namespace) -> Json:
    before = dmesg().count("\n")
    result = run("insmod", args.ko)
    if result.returncode != 0:
        return {
            "insmod_rc": result.returncode,
            "insmod_stderr": result.stderr,
            "load_log": dmesg().splitlines()[before:],
        }
    node = os.stat(DEVICE)
    with shrinkmem.ShrinkMem() as dev:
        info = dev.info()
        text = dev.summary()
    params = {p.name: p.read_text().strip() for p in Path("/sys/module/shrinkmem/parameters").iterdir()}
    return {
        "insmod_rc": result.returncode,
        "insmod_stderr": result.stderr,
        "char_device": stat.S_ISCHR(node.st_mode),
        "mode": oct(stat.S_IMODE(node.st_mode)),
        "uid": node.st_uid,
        "gid": node.st_gid,
        "modinfo": run("modinfo", args.ko, check=True).stdout,
        "info": {
            "abi_version": info.abi_version,
            "method": info.method,
            "max_pages": info.max_pages,
            "page_size": info.page_size,
        },
        "summary": text,
        "parameters": params,
        "mem_total_kB": meminfo()["MemTotal"],
        "load_log": dmesg().splitlines()[before:],
    }


def prepare_cache(args: argparse.Namespace) -> Json:
    MOUNT.mkdir(parents=True, exist_ok=True)
    run("mount", "-t", "ext4", args.data_disk, str(MOUNT), check=True)
    fstype = run("findmnt", "-n", "-o", "FSTYPE,SOURCE", str(MOUNT), check=True).stdout.split()
    size_mb = CACHE_FILE.stat().st_size >> 20
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    before = memory_snapshot()
    started = time.monotonic()
    with open(CACHE_FILE, "rb") as f:
        while f.read(1 << 20):
            pass
    return {
        "fs": fstype,
        "file_mb": size_mb,
        "read_s": round(time.monotonic() - started, 2),
        "before_read": before,
        "after_read": memory_snapshot(),
    }


def section_cache(args: argparse.Namespace) -> Json:
    """echo 100 > /dev/shrinkmem, then the same through the ioctl, on a page cache read from ext4 on a disk."""
    out: Json = {"prepare": prepare_cache(args)}
    time.sleep(1)
    lines_before = dmesg().count("\n")
    out["text_before"] = memory_snapshot()
    out["text_write"] = write_text(b"100\n")
    out["text_after"] = memory_snapshot()
    out["text_summary"] = summary()
    out["text_log"] = dmesg().splitlines()[lines_before:]
    time.sleep(1)
    pages = (100 << 10) // PAGE_KB
    with shrinkmem.ShrinkMem() as dev:
        out["ioctl_before"] = memory_snapshot()
        result = dev.reclaim(pages)
        out["ioctl_after"] = memory_snapshot()
    out["ioctl_result"] = {
        "pages_requested": result.pages_requested,
        "pages_reclaimed": result.pages_reclaimed,
        "duration_ns": result.duration_ns,
    }
    out["ioctl_summary"] = summary()
    return out


def section_bad_inputs(args: argparse.Namespace) -> Json:
    max_mb = int(Path("/sys/module/shrinkmem/parameters/max_mb").read_text())
    lines_before = dmesg().count("\n")
    calls_before = summary()["calls"]
    inputs: Dict[str, bytes] = {
        "empty": b"",
        "abc": b"abc",
        "minus_one": b"-1",
        "zero": b"0",
        "zero_newline": b"0\n",
        "exponent": b"1e3",
        "trailing_junk": b"100abc",
        "text_4k": (b"lorem ipsum " * 342)[:4096],
        "digits_4k": b"1" * 4096,
        "binary_junk": bytes(random.Random(7).randrange(256) for _ in range(64)),
        "nul_inside": b"1\x00junk",
        "digits_30": b"123456789012345678901234567890",
        "over_max_mb": f"{max_mb + 1}\n".encode(),
        "leading_space": b" 100",
        "two_newlines": b"100\n\n",
        "hex": b"0x10",
    }
    results = {name: write_text(payload) for name, payload in inputs.items()}
    layout = shrinkmem.RECLAIM_STRUCT
    max_pages = (max_mb << 10) // PAGE_KB
    ioctls: Dict[str, Json] = {
        "zero_pages": ioctl_raw(shrinkmem.IOC_RECLAIM, bytearray(layout.pack(0, 0, 0, 0, 0))),
        "flags_set": ioctl_raw(shrinkmem.IOC_RECLAIM, bytearray(layout.pack(1, 0, 0, 1, 0))),
        "reserved_set": ioctl_raw(shrinkmem.IOC_RECLAIM, bytearray(layout.pack(1, 0, 0, 0, 1))),
        "over_max": ioctl_raw(shrinkmem.IOC_RECLAIM, bytearray(layout.pack(max_pages + 1, 0, 0, 0, 0))),
        "u64_max": ioctl_raw(shrinkmem.IOC_RECLAIM, bytearray(layout.pack((1 << 64) - 1, 0, 0, 0, 0))),
        "bad_pointer": ioctl_raw(shrinkmem.IOC_RECLAIM, 16),
        "info_bad_pointer": ioctl_raw(shrinkmem.IOC_INFO, 16),
        "unknown_nr": ioctl_raw(shrinkmem.IOC_RECLAIM + 2, bytearray(layout.size)),
        "wrong_size": ioctl_raw(shrinkmem.IOC_RECLAIM + (8 << 16), bytearray(layout.size + 8)),
        "foreign_cmd": ioctl_raw(0x5401, bytearray(64)),  # TCGETS
    }
    # The Python client's message for a refused request: one line naming the errno.
    try:
        with shrinkmem.ShrinkMem() as dev:
            dev.reclaim(0)
        client_error = ""
    except ActionError as error:
        client_error = str(error)
    return {
        "max_mb": max_mb,
        "writes": results,
        "ioctls": ioctls,
        "client_error": client_error,
        "calls_before": calls_before,
        "calls_after": summary()["calls"],
        "log": dmesg().splitlines()[lines_before:],
    }


# Standalone (python -S, no imports from the repo): interpreter start-up is slow under emulation.
PROBE = r"""
import errno, fcntl, json, os, sys
device, reclaim, info, reclaim_size, info_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
request = (256).to_bytes(8, sys.byteorder) + bytes(reclaim_size - 8)
out = {"uid": os.getuid(), "euid": os.geteuid()}
try:
    fd = os.open(device, os.O_RDWR)
except OSError as e:
    out["open"] = errno.errorcode[e.errno]
    print(json.dumps(out)); sys.exit(0)
out["open"] = "ok"
for name, call in (("write", lambda: os.write(fd, b"1\n")),
                   ("reclaim", lambda: fcntl.ioctl(fd, reclaim, bytearray(request), True)),
                   ("info", lambda: fcntl.ioctl(fd, info, bytearray(info_size), True)),
                   ("read", lambda: os.read(fd, 4096))):
    try:
        call()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
print(json.dumps(out))
"""


def probe(prefix: List[str]) -> Json:
    numbers = [shrinkmem.IOC_RECLAIM, shrinkmem.IOC_INFO, shrinkmem.RECLAIM_STRUCT.size, shrinkmem.INFO_STRUCT.size]
    result = run(*prefix, sys.executable, "-S", "-c", PROBE, DEVICE, *map(str, numbers))
    if result.returncode != 0:
        return {"failed": result.returncode, "stderr": result.stderr[-2000:]}
    data: Json = json.loads(result.stdout)
    return data


def section_unprivileged(args: argparse.Namespace) -> Json:
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    no_admin = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin"]
    calls_before = summary()["calls"]
    out: Json = {"nobody": probe(nobody), "root_without_cap_sys_admin": probe(no_admin)}
    os.chmod(DEVICE, 0o666)
    try:
        out["nobody_device_0666"] = probe(nobody)
    finally:
        os.chmod(DEVICE, 0o600)
    out["calls_before"] = calls_before
    out["calls_after"] = summary()["calls"]
    return out


WRITER = r"""
import errno, json, os, sys
results = []
fd = os.open("/dev/shrinkmem", os.O_WRONLY)
for _ in range(int(sys.argv[1])):
    try:
        results.append(os.write(fd, sys.argv[2].encode()))
    except OSError as e:
        results.append(errno.errorcode[e.errno])
print(json.dumps(results))
"""


def section_parallel(args: argparse.Namespace) -> Json:
    writers, writes = 4, 20
    before = summary()
    lines_before = dmesg().count("\n")
    procs = [
        subprocess.Popen([sys.executable, "-S", "-c", WRITER, str(writes), "1\n"], stdout=subprocess.PIPE, text=True)
        for _ in range(writers)
    ]
    outputs = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=600)
        outputs.append({"rc": proc.returncode, "results": json.loads(stdout) if stdout.strip() else None})
    return {
        "writers": writers,
        "writes": writes,
        "outputs": outputs,
        "before": before,
        "after": summary(),
        "log": dmesg().splitlines()[lines_before:],
    }


def random_write_payload(rng: random.Random, max_mb: int) -> bytes:
    """Mostly malformed text; the well-formed requests are small (1-4 MB), so the page cache lasts the whole run."""
    kind = rng.randrange(6)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
    if kind == 1:
        # 21 digits or more: beyond 64 bits (ERANGE) unless mostly leading zeros.
        return "".join(rng.choice("0123456789") for _ in range(rng.randrange(21, 40))).encode()
    if kind == 2:
        suffix = rng.choice(["", "\n", " ", "\n\n", "x", "\x00"])
        return f"{rng.randrange(0, 3)}{suffix}".encode()
    if kind == 3:
        number = rng.choice([rng.randrange(0, 5), max_mb + rng.randrange(1, 1 << 20), rng.randrange(1 << 64)])
        return f"{rng.choice(['-', '+', ' ', '0x', ''])}{number}\n".encode()
    if kind == 4:
        return rng.choice([b"", b"\n", b"1" * 65, b"9" * 64, b"1" * 64, b"18446744073709551616"])
    return bytes(rng.choice(b"0123456789\n -+xe") for _ in range(rng.randrange(5, 70)))


def section_fuzz(args: argparse.Namespace) -> Json:
    """A bounded random sequence of writes, ioctls and reads with a fixed seed."""
    rng = random.Random(args.seed)
    max_mb = int(Path("/sys/module/shrinkmem/parameters/max_mb").read_text())
    allowed = {
        "write": {"EINVAL", "ERANGE"},
        "reclaim": {"EINVAL", "ERANGE", "EFAULT"},
        "info": {"EFAULT"},
        "other_ioctl": {"ENOTTY", "EFAULT", "EINVAL"},
        "read": set(),
    }
    max_pages = (max_mb << 10) // PAGE_KB + 1
    counts: Dict[str, int] = {}
    unexpected: List[str] = []
    slowest = (0.0, "")
    fd = os.open(DEVICE, os.O_RDWR)
    started = time.monotonic()
    try:
        for i in range(args.fuzz_calls):
            choice = rng.random()
            call_started = time.monotonic()
            try:
                if choice < 0.45:
                    op = "write"
                    payload = random_write_payload(rng, max_mb)
                    ret = os.write(fd, payload)
                    if ret != len(payload):
                        unexpected.append(f"{i}: write {payload!r} returned {ret}")
                elif choice < 0.75:
                    op = "reclaim"
                    if rng.random() < 0.5:
                        arg: Any = bytearray(rng.randbytes(shrinkmem.RECLAIM_STRUCT.size))
                    else:
                        pages = rng.choice([0, 1, rng.randrange(1, 256), rng.randrange(max_pages, 1 << 64)])
                        flags = 0 if rng.random() < 0.5 else rng.randrange(1 << 32)
                        arg = bytearray(shrinkmem.RECLAIM_STRUCT.pack(pages, rng.randrange(1 << 64), 0, flags, 0))
                    if rng.random() < 0.05:
                        # Below mmap_min_addr: never mapped, so always EFAULT.
                        arg = rng.randrange(0, 65536)
                    if isinstance(arg, bytearray):
                        fcntl.ioctl(fd, shrinkmem.IOC_RECLAIM, arg, True)
                    else:
                        fcntl.ioctl(fd, shrinkmem.IOC_RECLAIM, arg)
                elif choice < 0.85:
                    op = "info"
                    if rng.random() < 0.1:
                        fcntl.ioctl(fd, shrinkmem.IOC_INFO, rng.randrange(0, 65536))
                    else:
                        fcntl.ioctl(fd, shrinkmem.IOC_INFO, bytearray(shrinkmem.INFO_STRUCT.size), True)
                elif choice < 0.95:
                    op = "other_ioctl"
                    if rng.random() < 0.5:
                        cmd = rng.randrange(1 << 32)
                    else:
                        cmd = (
                            (rng.randrange(4) << 30)
                            | (rng.randrange(1 << 14) << 16)
                            | (ord("Y") << 8)
                            | rng.randrange(256)
                        )
                    if cmd in (shrinkmem.IOC_RECLAIM, shrinkmem.IOC_INFO):
                        continue
                    fcntl.ioctl(fd, cmd, bytearray(rng.randbytes(rng.randrange(1, 128))), True)
                else:
                    op = "read"
                    os.pread(fd, rng.randrange(0, 1024), rng.randrange(0, 600))
                name = "ok"
            except OSError as error:
                name = errno_name(error)
                if name not in allowed[op]:
                    unexpected.append(f"{i}: {op} -> {name}")
            counts[f"{op}:{name}"] = counts.get(f"{op}:{name}", 0) + 1
            took = time.monotonic() - call_started
            if took > slowest[0]:
                slowest = (took, f"{i}: {op} -> {name}")
    finally:
        os.close(fd)
    return {
        "seed": args.seed,
        "calls": args.fuzz_calls,
        "counts": counts,
        "unexpected": unexpected[:50],
        "seconds": round(time.monotonic() - started, 1),
        "slowest_call": [round(slowest[0], 3), slowest[1]],
        "summary": summary(),
    }


# Anonymous memory with a non-zero byte in every page: zero-filled pages would not be
# swapped but dropped (6.12 splits mostly-zero huge pages and frees their zero pages).
HOG = r"""
import mmap, sys, time
size = int(sys.argv[1]) << 20
m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
memoryview(m)[::4096] = b"\x01" * (size // 4096)
print("ready", flush=True)
time.sleep(3600)
"""

# Started ahead of time (interpreter start-up is slow under emulation); writes on "go".
KILLED_WRITER = r"""
import os, sys
fd = os.open("/dev/shrinkmem", os.O_WRONLY)
print("ready", flush=True)
sys.stdin.readline()
print("writing", flush=True)
os.write(fd, sys.argv[1].encode())
print("returned", flush=True)
"""


def start_hog(mb: int) -> subprocess.Popen[str]:
    hog = subprocess.Popen([sys.executable, "-S", "-c", HOG, str(mb)], stdout=subprocess.PIPE, text=True)
    assert hog.stdout is not None
    if hog.stdout.readline().strip() != "ready":
        raise RuntimeError("anonymous-memory hog did not start")
    return hog


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()


def start_writer(text: str) -> subprocess.Popen[str]:
    writer = subprocess.Popen(
        [sys.executable, "-S", "-c", KILLED_WRITER, text], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    if writer.stdout.readline().strip() != "ready":
        raise RuntimeError("writer did not start")
    return writer


def go(writer: subprocess.Popen[str]) -> None:
    assert writer.stdin is not None and writer.stdout is not None
    writer.stdin.write("go\n")
    writer.stdin.flush()
    if writer.stdout.readline().strip() != "writing":
        raise RuntimeError("writer did not write")


def section_kill(args: argparse.Namespace) -> Json:
    """A large request that has to swap out anonymous memory: killed part-way, then the same uninterrupted."""
    run("mkswap", args.swap_disk, check=True)
    run("swapon", args.swap_disk, check=True)
    out: Json = {"request_mb": args.kill_mb, "hog_mb": args.hog_mb}
    hog = None
    try:
        hog = start_hog(args.hog_mb)
        log(f"hog of {args.hog_mb} MB ready; request of {args.kill_mb} MB to be killed after {args.kill_after} s")
        lines_before = dmesg().count("\n")
        # The large request, and a second writer that will wait for the one-at-a-time
        # mutex behind it: killing the waiter must not wait for the first.
        writer = start_writer(f"{args.kill_mb}\n")
        waiter = start_writer("1\n")
        go(writer)
        started = time.monotonic()
        time.sleep(0.3)
        go(waiter)
        time.sleep(0.3)
        waiter_killed_at = time.monotonic()
        waiter.send_signal(signal.SIGKILL)
        waiter.wait()
        out["waiter"] = {
            "exit_after_kill_s": round(time.monotonic() - waiter_killed_at, 3),
            "returncode": waiter.returncode,
            "stdout_rest": waiter.communicate()[0],
            "first_still_running": writer.poll() is None,
        }
        time.sleep(max(0.0, started + args.kill_after - time.monotonic()))
        killed_at = time.monotonic()
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        ended = time.monotonic()
        out["killed"] = {
            "kill_after_s": round(killed_at - started, 3),
            "exit_after_kill_s": round(ended - killed_at, 3),
            "returncode": writer.returncode,
            "stdout_rest": writer.communicate()[0],
            "summary": summary(),
            "log": dmesg().splitlines()[lines_before:],
        }
        log(f"killed request exited {out['killed']['exit_after_kill_s']} s after SIGKILL; now uninterrupted")
        out["full_before"] = memory_snapshot()
        started = time.monotonic()
        with shrinkmem.ShrinkMem() as dev:
            result = dev.reclaim((args.kill_mb << 10) // PAGE_KB)
        out["full_seconds"] = round(time.monotonic() - started, 3)
        out["full_result"] = {
            "pages_requested": result.pages_requested,
            "pages_reclaimed": result.pages_reclaimed,
            "duration_ns": result.duration_ns,
        }
        out["full_after"] = memory_snapshot()
        log(f"uninterrupted request done in {out['full_seconds']} s")
    finally:
        if hog is not None:
            stop(hog)
        run("swapoff", args.swap_disk)
    return out


def section_reload(args: argparse.Namespace) -> Json:
    out: Json = {}
    out["rmmod_rc"] = run("rmmod", "shrinkmem").returncode
    out["device_after_rmmod"] = os.path.exists(DEVICE)
    out["module_after_rmmod"] = Path("/sys/module/shrinkmem").exists()
    load = run("insmod", args.ko, "max_mb=64")
    out["insmod_rc"] = load.returncode
    out["insmod_stderr"] = load.stderr
    out["device_after_insmod"] = os.path.exists(DEVICE)
    out["max_mb_param"] = Path("/sys/module/shrinkmem/parameters/max_mb").read_text().strip()
    with shrinkmem.ShrinkMem() as dev:
        info = dev.info()
    out["max_pages"] = info.max_pages
    out["write_64"] = write_text(b"64\n")
    out["write_65"] = write_text(b"65\n")
    out["summary"] = summary()
    out["final_rmmod_rc"] = run("rmmod", "shrinkmem").returncode
    out["device_after_final_rmmod"] = os.path.exists(DEVICE)
    return out


SECTIONS: List[tuple[str, Callable[[argparse.Namespace], Json]]] = [
    ("load", section_load),
    ("cache", section_cache),
    ("bad_inputs", section_bad_inputs),
    ("unprivileged", section_unprivileged),
    ("parallel", section_parallel),
    ("fuzz", section_fuzz),
    ("kill", section_kill),
    ("reload", section_reload),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ko", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--data-disk", required=True)
    parser.add_argument("--swap-disk", required=True)
    parser.add_argument("--seed", type=int, default=20240229)
    parser.add_argument("--fuzz-calls", type=int, default=2000)
    parser.add_argument("--kill-mb", type=int, default=600, help="size of the request that is killed")
    parser.add_argument("--hog-mb", type=int, default=500, help="anonymous memory the request has to swap out")
    parser.add_argument("--kill-after", type=float, default=2.0, help="seconds before SIGKILL")
    parser.add_argument("--sections", default=",".join(name for name, _ in SECTIONS), help="comma-separated subset")
    args = parser.parse_args()
    chosen = args.sections.split(",")

    results: Json = {"uname": os.uname().release, "uptime_at_start": float(Path("/proc/uptime").read_text().split()[0])}
    for module in ("virtio_blk", "ext4"):
        run("modprobe", module)
    for name, section in SECTIONS:
        if name not in chosen:
            continue
        log(f"section {name}")
        started = time.monotonic()
        try:
            results[name] = section(args)
        except Exception:
            results[name] = {"error": traceback.format_exc()}
            log(f"section {name} raised:\n{results[name]['error']}")
        results.setdefault("section_seconds", {})[name] = round(time.monotonic() - started, 1)
        if name == "load" and results[name].get("insmod_rc") != 0:
            log("insmod failed: skipping the rest")
            break
    results["dmesg"] = dmesg()
    results["uptime_at_end"] = float(Path("/proc/uptime").read_text().split()[0])
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
