"""Exercise the shrinkmem module inside a booted Debian kernel (run as root in the guest).

Started by tests/test_kmod_vm.py through tests/vm.py:

    $PY tests/kmod/guest_checks.py --ko PATH --out DIR --data-disk /dev/vda

It loads the module, runs every check and writes what it measured (raw numbers,
errno names, kernel log) to DIR/results.json; the host test decides pass or fail.
Each check is a section of its own: one that raises records its traceback and the
others still run. Progress goes to stdout with guest uptimes.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import fcntl
import json
import mmap
import os
import platform
import random
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from shrinkd import parse, shrinkmem  # noqa: E402
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


def ram_pages() -> int:
    """totalram_pages(), as sysinfo(2) reports it (MemTotal rounded to kB loses nothing: pages are whole kB)."""
    return meminfo()["MemTotal"] // PAGE_KB


def summary() -> Dict[str, str]:
    with shrinkmem.ShrinkMem() as dev:
        return dev.summary()


def result_json(result: shrinkmem.ReclaimResult) -> Json:
    return {
        "pages_requested": result.pages_requested,
        "pages_reclaimed": result.pages_reclaimed,
        "duration_ns": result.duration_ns,
        "result": result.result,
    }


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


# The module logs each text request only with dynamic debug (pr_debug): the checks turn it on
# for the module at every load, to read the line a request leaves and to see that one that never
# ran leaves none.
DYNDBG = "dyndbg=+p"


def section_load(args: argparse.Namespace) -> Json:
    before = dmesg().count("\n")
    result = run("insmod", args.ko, DYNDBG)
    if result.returncode != 0:
        return {
            "insmod_rc": result.returncode,
            "insmod_stderr": result.stderr,
            "load_log": dmesg().splitlines()[before:],
            "device_exists": os.path.exists(DEVICE),
            "module_listed": Path("/sys/module/shrinkmem").exists(),
            "misc_listed": "shrinkmem" in Path("/proc/misc").read_text(),
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
        "totalram_pages": ram_pages(),
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
    out["ioctl_result"] = result_json(result)
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
        "plus_sign": b"+100",
        "leading_zero": b"0100",
        "zero_then_newline_only": b"00\n",
        "trailing_space": b"100 ",
        "crlf": b"100\r\n",
        "tab": b"\t100",
        "newline_only": b"\n",
    }
    results = {name: write_text(payload) for name, payload in inputs.items()}
    layout = shrinkmem.RECLAIM_STRUCT
    max_pages = (max_mb << 10) // PAGE_KB
    ioctls: Dict[str, Json] = {
        "zero_pages": ioctl_raw(shrinkmem.IOC_RECLAIM, bytearray(layout.pack(0, 0, 0, 0, 0))),
        "flags_set": ioctl_raw(shrinkmem.IOC_RECLAIM, bytearray(layout.pack(1, 0, 0, 1, 0))),
        "result_set": ioctl_raw(shrinkmem.IOC_RECLAIM, bytearray(layout.pack(1, 0, 0, 0, 1))),
        "over_max": ioctl_raw(shrinkmem.IOC_RECLAIM, bytearray(layout.pack(max_pages + 1, 0, 0, 0, 0))),
        "u64_max": ioctl_raw(shrinkmem.IOC_RECLAIM, bytearray(layout.pack((1 << 64) - 1, 0, 0, 0, 0))),
        "bad_pointer": ioctl_raw(shrinkmem.IOC_RECLAIM, 16),
        "info_bad_pointer": ioctl_raw(shrinkmem.IOC_INFO, 16),
        "unknown_nr": ioctl_raw(shrinkmem.IOC_RECLAIM + 2, bytearray(layout.size)),
        "wrong_size": ioctl_raw(shrinkmem.IOC_RECLAIM + (8 << 16), bytearray(layout.size + 8)),
        "foreign_cmd": ioctl_raw(0x5401, bytearray(64)),  # TCGETS
    }
    # A write from an unmapped buffer, and an ioctl whose reply cannot be written
    # (a read-only page): EFAULT, before anything is reclaimed.
    efault = {"write_unmapped": raw_write_from(16, 4), "ioctl_read_only_reply": ioctl_read_only_reply(256)}
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
        "efault": efault,
        "client_error": client_error,
        "calls_before": calls_before,
        "calls_after": summary()["calls"],
        "log": dmesg().splitlines()[lines_before:],
    }


LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.write.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
LIBC.write.restype = ctypes.c_ssize_t
LIBC.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
LIBC.ioctl.restype = ctypes.c_int


def raw_write_from(address: int, length: int) -> Json:
    """write(2) from an address the process has not mapped (below mmap_min_addr)."""
    fd = os.open(DEVICE, os.O_WRONLY)
    try:
        ret = LIBC.write(fd, address, length)
        return {"ret": ret} if ret >= 0 else {"errno": errno.errorcode[ctypes.get_errno()]}
    finally:
        os.close(fd)


def ioctl_read_only_reply(pages: int) -> Json:
    """SHRINKMEM_IOC_RECLAIM with a valid request in a page mapped read-only: the reply cannot be written."""
    page = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    page.write(shrinkmem.RECLAIM_STRUCT.pack(pages, 0, 0, 0, 0))
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    if LIBC.mprotect(ctypes.c_void_p(address), ctypes.c_size_t(mmap.PAGESIZE), mmap.PROT_READ) != 0:
        raise OSError(ctypes.get_errno(), "mprotect")
    fd = os.open(DEVICE, os.O_RDWR)
    try:
        ret = LIBC.ioctl(fd, shrinkmem.IOC_RECLAIM, address)
        return {"ret": ret} if ret >= 0 else {"errno": errno.errorcode[ctypes.get_errno()]}
    finally:
        os.close(fd)
        LIBC.mprotect(ctypes.c_void_p(address), ctypes.c_size_t(mmap.PAGESIZE), mmap.PROT_READ | mmap.PROT_WRITE)


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


# Tries the four operations on an inherited descriptor (argv[1]) and prints errno names.
FD_PROBE = r"""
import errno, fcntl, json, os, sys
fd, reclaim, info, reclaim_size, info_size = (int(a) for a in sys.argv[1:6])
request = (256).to_bytes(8, sys.byteorder) + bytes(reclaim_size - 8)
out = {"uid": os.getuid(), "euid": os.geteuid()}
for name, call in (("write", lambda: os.write(fd, b"1\n")),
                   ("reclaim", lambda: fcntl.ioctl(fd, reclaim, bytearray(request), True)),
                   ("info", lambda: fcntl.ioctl(fd, info, bytearray(info_size), True)),
                   ("read", lambda: os.pread(fd, 4096, 0))):
    try:
        call()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
print(json.dumps(out))
"""

# Opens the device (as whoever runs it) and sends the descriptor over the socket argv[1].
FD_SENDER = r"""
import os, socket, sys
sock = socket.socket(fileno=int(sys.argv[1]))
fd = os.open(sys.argv[2], os.O_RDWR)
socket.send_fds(sock, [b"fd"], [fd])
"""

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]


def try_fd(fd: int) -> Json:
    """The four operations on a descriptor, by this (root) process."""
    out: Json = {"uid": os.getuid(), "euid": os.geteuid()}
    request = bytearray(shrinkmem.RECLAIM_STRUCT.pack(256, 0, 0, 0, 0))
    calls: Dict[str, Callable[[], object]] = {
        "write": lambda: os.write(fd, b"1\n"),
        "reclaim": lambda: fcntl.ioctl(fd, shrinkmem.IOC_RECLAIM, request, True),
        "info": lambda: fcntl.ioctl(fd, shrinkmem.IOC_INFO, bytearray(shrinkmem.INFO_STRUCT.size), True),
        "read": lambda: os.pread(fd, 4096, 0),
    }
    for name, call in calls.items():
        try:
            call()
            out[name] = "ok"
        except OSError as error:
            out[name] = errno_name(error)
    return out


def opened_by_nobody_used_by_root() -> Json:
    """An unprivileged opener hands its descriptor to root: root must not be able to reclaim through it."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with parent, child:
        sender = subprocess.Popen(
            [*NOBODY, sys.executable, "-S", "-c", FD_SENDER, str(child.fileno()), DEVICE], pass_fds=[child.fileno()]
        )
        _msg, fds, _flags, _addr = socket.recv_fds(parent, 16, 1)
        sender.wait(timeout=120)
    if not fds:
        return {"failed": "no descriptor received"}
    try:
        return try_fd(fds[0])
    finally:
        os.close(fds[0])


def opened_by_root_used_by_nobody() -> Json:
    """A privileged opener hands its descriptor to an unprivileged process: the opener's right goes with it."""
    fd = os.open(DEVICE, os.O_RDWR)
    try:
        numbers = [shrinkmem.IOC_RECLAIM, shrinkmem.IOC_INFO, shrinkmem.RECLAIM_STRUCT.size, shrinkmem.INFO_STRUCT.size]
        result = run(*NOBODY, sys.executable, "-S", "-c", FD_PROBE, str(fd), *map(str, numbers), pass_fds=[fd])
    finally:
        os.close(fd)
    if result.returncode != 0:
        return {"failed": result.returncode, "stderr": result.stderr[-2000:]}
    data: Json = json.loads(result.stdout)
    return data


def section_unprivileged(args: argparse.Namespace) -> Json:
    no_admin = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin"]
    calls_before = summary()["calls"]
    out: Json = {"nobody": probe(NOBODY), "root_without_cap_sys_admin": probe(no_admin)}
    os.chmod(DEVICE, 0o666)
    try:
        out["nobody_device_0666"] = probe(NOBODY)
        calls_mid = summary()["calls"]
        out["opened_by_nobody_used_by_root"] = opened_by_nobody_used_by_root()
    finally:
        os.chmod(DEVICE, 0o600)
    out["calls_before"] = calls_before
    out["calls_after_refusals"] = summary()["calls"]
    out["calls_mid"] = calls_mid
    out["opened_by_root_used_by_nobody"] = opened_by_root_used_by_nobody()
    # Root's own descriptor opened read-only, as for statistics: it reads, it cannot reclaim.
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        out["root_read_only"] = try_fd(fd)
    finally:
        os.close(fd)
    out["calls_after"] = summary()["calls"]
    return out


def section_snapshot(args: argparse.Namespace) -> Json:
    """read() returns one snapshot per open: a request between two partial reads does not show until a seek to 0."""
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        first = os.read(fd, 20)
        write = write_text(b"1\n")
        rest = b""
        while True:
            piece = os.read(fd, 7)
            if not piece:
                break
            rest += piece
        os.lseek(fd, 0, os.SEEK_SET)
        fresh = os.read(fd, 4096)
    finally:
        os.close(fd)
    return {"first": first.decode(), "write": write, "rest": rest.decode(), "after_seek": fresh.decode()}


# Opens the device, says "ready", and writes only when told to (start_script, go): interpreter
# start-up is slow under emulation, and writers started one after another could each be done
# before the next began, never competing for the device.
WRITER = r"""
import errno, json, os, sys
results = []
fd = os.open("/dev/shrinkmem", os.O_WRONLY)
print("ready", flush=True)
sys.stdin.readline()
print("writing", flush=True)
for _ in range(int(sys.argv[1])):
    try:
        results.append(os.write(fd, sys.argv[2].encode()))
    except OSError as e:
        results.append(errno.errorcode[e.errno])
print(json.dumps(results))
"""


TRACING = Path("/sys/kernel/tracing")
TRACE_GROUP = "shrinkmem_test"


def append(path: Path, text: str) -> None:
    """Append as the shell's >> does: open(..., "a") would seek to the end, which tracefs refuses (EINVAL)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def start_trace() -> None:
    """kprobe events on shrink_all_memory()'s entry and return, through tracefs."""
    if not (TRACING / "kprobe_events").exists():
        run("mount", "-t", "tracefs", "nodev", str(TRACING), check=True)
    # $arg1 needs the architecture's function-argument API (x86_64 and arm64 have it; 32-bit ARM
    # in 6.1 does not: "Invalid $-valiable specified"): there the first argument is in r0 (AAPCS),
    # and an unsigned long is 32 bits.
    wide = platform.machine() not in ("armv7l", "armv8l")
    first, size = ("$arg1", "u64") if wide else ("%r0", "u32")
    probes = (
        f"p:{TRACE_GROUP}/enter shrink_all_memory nr={first}:{size}",
        f"r:{TRACE_GROUP}/exit shrink_all_memory ret=$retval:{size}",
    )
    for probe in probes:
        try:
            append(TRACING / "kprobe_events", probe + "\n")
        except OSError as error:
            raise RuntimeError(f"{probe}: {error}; error_log: {(TRACING / 'error_log').read_text()}") from None
    # The trace is read in the order of its timestamps, merged from per-CPU buffers. The default
    # clock is per-CPU ("local"): under software emulation two vCPUs' clocks tie or drift, and one
    # x86_64-6.1 guest's trace put seven events of two CPUs on the same microsecond, a request's
    # return after the next caller's entry. "counter" is one atomic count for all CPUs: the
    # trace's order is the order in which the events happened.
    (TRACING / "trace_clock").write_text("counter\n")
    (TRACING / "trace").write_text("")
    (TRACING / "events" / TRACE_GROUP / "enable").write_text("1\n")


def stop_trace() -> List[str]:
    (TRACING / "events" / TRACE_GROUP / "enable").write_text("0\n")
    lines = [line for line in (TRACING / "trace").read_text().splitlines() if not line.startswith("#")]
    for event in ("enter", "exit"):
        append(TRACING / "kprobe_events", f"-:{TRACE_GROUP}/{event}\n")
    return lines


def section_parallel(args: argparse.Namespace) -> Json:
    """Writers at once, chunks of 1 MB: a kprobe trace of shrink_all_memory() shows whether requests overlap."""
    writers, writes, request_mb = 4, 10, 4
    chunk_mb = PARAMETERS / "chunk_mb"
    old_chunk = chunk_mb.read_text().strip()
    chunk_mb.write_text("1\n")
    before = summary()
    lines_before = dmesg().count("\n")
    start_trace()
    try:
        procs = [start_script(WRITER, str(writes), f"{request_mb}\n") for _ in range(writers)]
        # All at once: each writer's first request now competes with the others'.
        for proc in procs:
            go(proc)
        outputs = []
        for proc in procs:
            stdout, _ = proc.communicate(timeout=600)
            lines = stdout.strip().splitlines()
            outputs.append(
                {"rc": proc.returncode, "pid": proc.pid, "results": json.loads(lines[-1]) if lines else None}
            )
    finally:
        trace = stop_trace()
        chunk_mb.write_text(old_chunk + "\n")
    return {
        "writers": writers,
        "writes": writes,
        "request_mb": request_mb,
        "chunk_mb": 1,
        "outputs": outputs,
        "before": before,
        "after": summary(),
        "trace": trace,
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


# ioctl type codes the VFS answers before the driver sees them (fs/ioctl.c: FIOCLEX,
# FIONBIO, FIOASYNC, FIOQSIZE ('T'), FIFREEZE/FITHAW ('X'), FS_IOC_* ('f'), FIGETBSZ
# (0), FICLONE and friends (0x94)): any other command must get exactly ENOTTY.
VFS_IOCTL_TYPES = {0x00, ord("T"), ord("X"), ord("f"), 0x94}


def section_fuzz(args: argparse.Namespace) -> Json:
    """A bounded random sequence of writes, ioctls and reads with a fixed seed."""
    rng = random.Random(args.seed)
    max_mb = int(Path("/sys/module/shrinkmem/parameters/max_mb").read_text())
    allowed = {
        "write": {"EINVAL", "ERANGE"},
        "reclaim": {"EINVAL", "ERANGE", "EFAULT"},
        "info": {"EFAULT"},
        "other_ioctl": {"ENOTTY"},
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
                    if cmd in (shrinkmem.IOC_RECLAIM, shrinkmem.IOC_INFO) or (cmd >> 8) & 0xFF in VFS_IOCTL_TYPES:
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


def restart_hog(hog: subprocess.Popen[str], mb: int) -> subprocess.Popen[str]:
    """A new hog in place of `hog` (whose swapped pages go with it)."""
    stop(hog)
    return start_hog(mb)


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


# Started ahead of time like KILLED_WRITER: a SIGTERM handler that only notes the time,
# as a daemon's would, then one large SHRINKMEM_IOC_RECLAIM through the client.
IOCTL_WRITER = r"""
import json, signal, sys, time
sys.path.insert(0, sys.argv[1])
from shrinkd import shrinkmem
signals = []
signal.signal(signal.SIGTERM, lambda number, frame: signals.append(time.monotonic()))
dev = shrinkmem.ShrinkMem()
print("ready", flush=True)
sys.stdin.readline()
print("writing", flush=True)
result = dev.reclaim(int(sys.argv[2]))
returned = time.monotonic()
print(json.dumps({"returned_at": returned, "signals_at": signals, "pages_requested": result.pages_requested,
                  "pages_reclaimed": result.pages_reclaimed, "duration_ns": result.duration_ns,
                  "result": result.result}), flush=True)
"""

# A text write through libc's write(2), which Python does not retry on EINTR (os.write would,
# and so hide what the kernel returned), with a handler for the signal named in argv[2]:
# SA_RESTART unless argv[3] is "interrupt" (signal.siginterrupt). Prints what write(2) returned.
HANDLED_WRITER = r"""
import ctypes, errno, json, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.write.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
libc.write.restype = ctypes.c_ssize_t
number = getattr(signal, sys.argv[2])
signals = []
signal.signal(number, lambda n, frame: signals.append(time.monotonic()))
signal.siginterrupt(number, len(sys.argv) > 3 and sys.argv[3] == "interrupt")
fd = os.open("/dev/shrinkmem", os.O_WRONLY)
text = sys.argv[1].encode()
print("ready", flush=True)
sys.stdin.readline()
print("writing", flush=True)
ret = libc.write(fd, text, len(text))
out = {"returned_at": time.monotonic(), "ret": ret, "length": len(text)}
if ret < 0:
    out["errno"] = errno.errorcode[ctypes.get_errno()]
time.sleep(0.1)  # the handler runs at Python's next check
out["signals_at"] = signals
print(json.dumps(out), flush=True)
"""


def start_script(script: str, *argv: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-S", "-c", script, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("writer did not start")
    return proc


def finish(proc: subprocess.Popen[str]) -> Json:
    stdout, _ = proc.communicate(timeout=600)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    data: Json = json.loads(lines[-1]) if lines else {"stdout": stdout}
    data["returncode"] = proc.returncode
    return data


def swapped_out() -> int:
    """Pages written to swap since boot (/proc/vmstat pswpout)."""
    found = parse.parse_vmstat(Path("/proc/vmstat").read_text(), keys=("pswpout",))
    if "pswpout" not in found:
        raise RuntimeError("/proc/vmstat has no pswpout")
    return found["pswpout"]


# How far into the hog a request is stopped: once an eighth of it went to swap. The request is
# then certainly running and still far from its end, however fast the machine reclaims (a fixed
# delay of 2 s let a 1200 MB request finish first on a fast machine). The wait has a limit, so
# that a request that never swaps still gets its signal and fails the checks with its figures.
INTERRUPT_SHARE = 8
INTERRUPT_LIMIT_S = 60.0


def wait_part_way(swapped_before: int, pages: int, proc: subprocess.Popen[str] | None = None) -> Json:
    """Wait until `pages` more pages went to swap than `swapped_before`, or INTERRUPT_LIMIT_S, or
    (given the process making the request) until its request ended on its own ("ended")."""
    started = time.monotonic()
    ended = False
    while swapped_out() - swapped_before < pages and time.monotonic() - started < INTERRUPT_LIMIT_S:
        if proc is not None and proc.poll() is not None:
            ended = True
            break
        time.sleep(0.02)
    out: Json = {"waited_s": round(time.monotonic() - started, 3), "swapped_pages": swapped_out() - swapped_before}
    if ended:
        out["ended"] = True
    return out


# How many times a check that signals a request part-way starts it again when the request
# ended on its own first. A request ends SHRINKMEM_RESULT_SHORT when one chunk reclaims under
# an eighth of its ask, and the first chunk over a hog just written can: its pages are all
# young, so a pass over them mostly ages them (75 of 1,024 pages, arm64 16 KiB pages, 6.12,
# right after the freezer's request). A request that ended before the signal tests nothing
# about the signal; three that did fail the check with each one's figures.
PART_WAY_ATTEMPTS = 3


def until_part_way(
    first: subprocess.Popen[str],
    again: Callable[[], subprocess.Popen[str]],
    check: Callable[[subprocess.Popen[str]], Json],
    fresh_hog: Callable[[], None],
) -> Json:
    """check(proc) over a fresh hog, on `first`, then on again(), until a request was still running
    at its signal; the attempts that ended on their own are kept in "ended_first"."""
    ended_first: List[Json] = []
    proc = first
    while True:
        fresh_hog()
        out = check(proc)
        if not out["part_way"].get("ended") or len(ended_first) + 1 >= PART_WAY_ATTEMPTS:
            break
        ended_first.append({key: out.get(key) for key in ("part_way", "summary", "log")})
        proc = again()
    out["ended_first"] = ended_first
    return out


def interrupt_part_way(proc: subprocess.Popen[str], number: int, pages: int) -> Json:
    """Send proc's request the signal once it swapped `pages`; when it ended, what read() and the log say."""
    lines_before = dmesg().count("\n")
    swapped_before = swapped_out()
    go(proc)
    started = time.monotonic()
    out: Json = {"part_way": wait_part_way(swapped_before, pages, proc)}
    sent_at = time.monotonic()
    proc.send_signal(number)
    out.update(finish(proc))
    ended = time.monotonic()
    out["signal_after_s"] = round(sent_at - started, 3)
    if "returned_at" in out:
        out["return_after_signal_s"] = round(out["returned_at"] - sent_at, 3)
    out["exit_after_signal_s"] = round(ended - sent_at, 3)
    out["summary"] = summary()
    out["log"] = dmesg().splitlines()[lines_before:]
    return out


def term_then_kill(proc: subprocess.Popen[str], pages: int) -> Json:
    """A handled SIGTERM once proc's request swapped `pages`: the request must go on (it swaps
    `pages` more after the signal); then SIGKILL, which ends it between chunks. What read() says."""
    lines_before = dmesg().count("\n")
    swapped_before = swapped_out()
    go(proc)
    out: Json = {"target_pages": pages, "part_way": wait_part_way(swapped_before, pages, proc)}
    proc.send_signal(signal.SIGTERM)
    after_term = swapped_out()
    out["after_term"] = wait_part_way(after_term, pages)
    out["running_after_term"] = proc.poll() is None
    killed_at = time.monotonic()
    proc.send_signal(signal.SIGKILL)
    out.update(finish(proc))
    out["exit_after_kill_s"] = round(time.monotonic() - killed_at, 3)
    out["summary"] = summary()
    out["log"] = dmesg().splitlines()[lines_before:]
    return out


def freeze_part_way(proc: subprocess.Popen[str], pages: int) -> Json:
    """Freeze user space for suspend (pm_test "freezer": freeze, wait 5 s, thaw) once proc's request swapped `pages`."""
    lines_before = dmesg().count("\n")
    power = Path("/sys/power")
    out: Json = {"states": (power / "state").read_text().split(), "pm_test": (power / "pm_test").read_text().strip()}
    swapped_before = swapped_out()
    go(proc)
    out["part_way"] = wait_part_way(swapped_before, pages, proc)
    (power / "pm_test").write_text("freezer")
    started = time.monotonic()
    try:
        (power / "state").write_text("freeze")
        out["state_write"] = "ok"
    except OSError as error:
        out["state_write"] = errno_name(error)
    out["freeze_seconds"] = round(time.monotonic() - started, 3)
    (power / "pm_test").write_text("none")
    out["writer"] = finish(proc)
    out["summary"] = summary()
    out["log"] = dmesg().splitlines()[lines_before:]
    return out


# write(2)'s number, for /proc/PID/syscall: a writer is known to block in it, not about to enter it.
WRITE_SYSCALL = {"x86_64": 1, "aarch64": 64, "armv7l": 4, "armv8l": 4}


def wait_in_write(proc: subprocess.Popen[str], limit_s: float = 30.0) -> Json:
    """Wait until proc sleeps inside write(2) (/proc/PID/syscall), or limit_s."""
    number = str(WRITE_SYSCALL[os.uname().machine])
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        try:
            fields = Path(f"/proc/{proc.pid}/syscall").read_text().split()
        except OSError:
            fields = []
        if fields[:1] == [number]:
            return {"in_write": True, "waited_s": round(time.monotonic() - started, 3)}
        time.sleep(0.02)
    return {"in_write": False, "waited_s": round(time.monotonic() - started, 3)}


def restart_behind(holder: subprocess.Popen[str]) -> Json:
    """Two 1 MB text writers queue behind `holder`'s large request and get a handled SIGUSR1 while
    they wait: the one whose handler has SA_RESTART must go on waiting and then run its request
    once; the other gets EINTR at once. Neither interrupted wait is counted or logged."""
    restarter = start_script(HANDLED_WRITER, "1\n", "SIGUSR1")
    eintr = start_script(HANDLED_WRITER, "1\n", "SIGUSR1", "interrupt")
    calls_before = int(summary()["calls"])
    lines_before = dmesg().count("\n")
    swapped_before = swapped_out()
    go(holder)
    out: Json = {"holder_in_reclaim": wait_part_way(swapped_before, 1)}
    go(restarter)
    go(eintr)
    out["restarter_waiting"] = wait_in_write(restarter)
    out["eintr_waiting"] = wait_in_write(eintr)
    restarter.send_signal(signal.SIGUSR1)
    eintr.send_signal(signal.SIGUSR1)
    out["eintr"] = finish(eintr)
    out["holder_running_after_eintr"] = holder.poll() is None
    out["restarter_running_after_signal"] = restarter.poll() is None
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    out["restarter"] = finish(restarter)
    out["summary"] = summary()
    out["calls"] = int(out["summary"]["calls"]) - calls_before
    out["log"] = dmesg().splitlines()[lines_before:]
    return out


def zram_swap(size_mb: int) -> str:
    """A zram device of size_mb as swap, as many embedded boards have. Its writes are synchronous:
    reclaim frees a page in the pass that swapped it out. With a disk, the pages a chunk sends
    to swap are freed only by a later pass, so a request over anonymous memory alone could end
    SHRINKMEM_RESULT_SHORT after its first chunk (292 of 4,096 pages, x86_64-6.12) before the
    signal that was meant to stop it part-way."""
    if not Path("/sys/block/zram0").exists():  # built in (the test kernels), or a module to load
        run("modprobe", "zram", check=True)
    Path("/sys/block/zram0/disksize").write_text(f"{size_mb}M\n")
    run("mkswap", "/dev/zram0", check=True)
    run("swapon", "/dev/zram0", check=True)
    return run("swapon", "--show", check=True).stdout.strip()


def section_kill(args: argparse.Namespace) -> Json:
    """Large requests that have to swap out anonymous memory: stopped part-way by SIGKILL and by the freezer,
    not stopped by a handled SIGTERM (ioctl) or SIGCHLD (text), then the same uninterrupted; and writers
    waiting for the mutex behind one, killed or given a handled signal with and without SA_RESTART. Each request finds a hog of its own, just
    written: one that earlier requests had already swapped out would leave it nothing to do but
    the working sets of every other process."""
    out: Json = {"request_mb": args.kill_mb, "hog_mb": args.hog_mb, "interrupt_share": INTERRUPT_SHARE}
    out["swap"] = zram_swap(args.hog_mb + 512)
    max_mb = Path("/sys/module/shrinkmem/parameters/max_mb")
    default_max_mb = max_mb.read_text().strip()
    max_mb.write_text(f"{meminfo()['MemTotal'] >> 10}\n")
    out["max_mb_raised_to"] = max_mb.read_text().strip()
    pages = (args.kill_mb << 10) // PAGE_KB
    part_way = (args.hog_mb << 10) // PAGE_KB // INTERRUPT_SHARE
    hog = None
    try:
        # Every writer is started now: interpreter start-up is slow under emulation, keep it
        # out of the timed windows. The large request, and a second writer that will wait for
        # the one-at-a-time mutex behind it: killing the waiter must not wait for the first.
        writer = start_writer(f"{args.kill_mb}\n")
        waiter = start_writer("1\n")
        holder = start_writer(f"{args.kill_mb}\n")
        sigterm = start_script(IOCTL_WRITER, str(REPO), str(pages))
        sigchld = start_script(HANDLED_WRITER, f"{args.kill_mb}\n", "SIGCHLD")
        frozen = start_script(IOCTL_WRITER, str(REPO), str(pages))
        hog = start_hog(args.hog_mb)
        log(f"hog of {args.hog_mb} MB ready; requests of {args.kill_mb} MB stopped at 1/{INTERRUPT_SHARE} of it")
        lines_before = dmesg().count("\n")
        swapped_before = swapped_out()
        go(writer)
        started = time.monotonic()
        # The first page out to swap: the writer is reclaiming, so it holds the mutex. The waiter
        # gets 0.1 s to block on it (enough for the one statement between its "writing" and
        # write()), so that the writer is still far from its end when it is killed next.
        in_reclaim = wait_part_way(swapped_before, 1)
        go(waiter)
        time.sleep(0.1)
        waiter_killed_at = time.monotonic()
        waiter.send_signal(signal.SIGKILL)
        waiter.wait()
        out["waiter"] = {
            "writer_in_reclaim": in_reclaim,
            "exit_after_kill_s": round(time.monotonic() - waiter_killed_at, 3),
            "returncode": waiter.returncode,
            "stdout_rest": waiter.communicate()[0],
            "first_still_running": writer.poll() is None,
        }
        reached = wait_part_way(swapped_before, part_way)
        killed_at = time.monotonic()
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        ended = time.monotonic()
        out["killed"] = {
            "part_way": reached,
            "kill_after_s": round(killed_at - started, 3),
            "exit_after_kill_s": round(ended - killed_at, 3),
            "returncode": writer.returncode,
            "stdout_rest": writer.communicate()[0],
            "summary": summary(),
            "log": dmesg().splitlines()[lines_before:],
        }
        log(f"killed request exited {out['killed']['exit_after_kill_s']} s after SIGKILL; now waiters with SIGUSR1")
        hog = restart_hog(hog, args.hog_mb)
        out["restart"] = restart_behind(holder)
        log(
            f"SA_RESTART waiter: {out['restart']['restarter'].get('ret')}, the other {out['restart']['eintr'].get('errno')}; now SIGTERM"
        )

        def fresh_hog() -> None:
            nonlocal hog
            assert hog is not None
            hog = restart_hog(hog, args.hog_mb)

        out["sigterm"] = until_part_way(
            sigterm,
            lambda: start_script(IOCTL_WRITER, str(REPO), str(pages)),
            lambda proc: term_then_kill(proc, part_way),
            fresh_hog,
        )
        log(f"SIGTERM: running after it: {out['sigterm']['running_after_term']}; now the freezer")
        # The freezer before the SIGCHLD request, which runs to its end: after a request that
        # swapped a whole hog, a KASAN guest's next first chunk came back short (506 of 4,096
        # pages) and ended the freezer's request before the freeze.
        out["freezer"] = until_part_way(
            frozen,
            lambda: start_script(IOCTL_WRITER, str(REPO), str(pages)),
            lambda proc: freeze_part_way(proc, part_way),
            fresh_hog,
        )
        log(f"freezer: {out['freezer']['state_write']} in {out['freezer']['freeze_seconds']} s; now SIGCHLD")
        out["sigchld"] = until_part_way(
            sigchld,
            lambda: start_script(HANDLED_WRITER, f"{args.kill_mb}\n", "SIGCHLD"),
            lambda proc: interrupt_part_way(proc, signal.SIGCHLD, part_way),
            fresh_hog,
        )
        log(f"SIGCHLD: returned {out['sigchld'].get('return_after_signal_s')} s after the signal; now uninterrupted")
        hog = restart_hog(hog, args.hog_mb)
        out["full_before"] = memory_snapshot()
        started = time.monotonic()
        with shrinkmem.ShrinkMem() as dev:
            result = dev.reclaim(pages)
        out["full_seconds"] = round(time.monotonic() - started, 3)
        out["full_result"] = result_json(result)
        out["full_after"] = memory_snapshot()
        out["full_summary"] = summary()
        log(f"uninterrupted request done in {out['full_seconds']} s")
    finally:
        if hog is not None:
            stop(hog)
        # Swap stays on until the guest powers off: swapoff would read back at once, a page at
        # a time, everything the requests pushed out of other processes, which nothing after
        # this section needs.
        max_mb.write_text(default_max_mb + "\n")
    return out


PARAMETERS = Path("/sys/module/shrinkmem/parameters")


def set_parameter(name: str, value: str) -> Json:
    """Write a module parameter through sysfs: ok or the errno name, and the value it has afterwards."""
    # One write(2), as `echo` makes (a buffered Python file would try again when it closes).
    fd = os.open(PARAMETERS / name, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
        out: Json = {"write": "ok"}
    except OSError as error:
        out = {"write": errno_name(error)}
    finally:
        os.close(fd)
    out["value"] = (PARAMETERS / name).read_text().strip()
    return out


def section_params(args: argparse.Namespace) -> Json:
    """Module parameters are validated when set through sysfs: a bad value is refused and leaves the old one."""
    lines_before = dmesg().count("\n")
    total_mb = ram_pages() * PAGE_KB >> 10
    before = {name: (PARAMETERS / name).read_text().strip() for name in ("max_mb", "chunk_mb")}
    writes = {
        "max_mb=abc": set_parameter("max_mb", "abc\n"),
        "max_mb=0": set_parameter("max_mb", "0\n"),
        "max_mb=-1": set_parameter("max_mb", "-1\n"),
        "max_mb=ram+1": set_parameter("max_mb", f"{total_mb + 1}\n"),
        "chunk_mb=0": set_parameter("chunk_mb", "0\n"),
        "chunk_mb=65": set_parameter("chunk_mb", "65\n"),
        "chunk_mb=1024": set_parameter("chunk_mb", "1024\n"),
        "max_mb=ram": set_parameter("max_mb", f"{total_mb}\n"),
        "chunk_mb=64": set_parameter("chunk_mb", "64\n"),
    }
    restored = {name: set_parameter(name, value + "\n") for name, value in before.items()}
    return {
        "total_mb": total_mb,
        "before": before,
        "writes": writes,
        "restored": restored,
        "log": dmesg().splitlines()[lines_before:],
    }


def insmod_refused(ko: str, *params: str) -> Json:
    lines_before = dmesg().count("\n")
    result = run("insmod", ko, *params)
    out: Json = {
        "rc": result.returncode,
        "stderr": result.stderr.strip(),
        "loaded": Path("/sys/module/shrinkmem").exists(),
        "log": dmesg().splitlines()[lines_before:],
    }
    if out["loaded"]:
        run("rmmod", "shrinkmem")
    return out


def section_reload(args: argparse.Namespace) -> Json:
    out: Json = {}
    # rmmod while the device is open: refused (the open file holds the module), and it still works.
    fd = os.open(DEVICE, os.O_RDWR)
    try:
        busy = run("rmmod", "shrinkmem")
        out["rmmod_while_open"] = {
            "rc": busy.returncode,
            "stderr": busy.stderr.strip(),
            "module_still_there": Path("/sys/module/shrinkmem").exists(),
            "device_still_there": os.path.exists(DEVICE),
        }
        try:
            out["rmmod_while_open"]["write_after"] = {"ret": os.write(fd, b"1\n")}
        except OSError as error:
            out["rmmod_while_open"]["write_after"] = {"errno": errno_name(error)}
    finally:
        os.close(fd)
    out["rmmod_rc"] = run("rmmod", "shrinkmem").returncode
    out["device_after_rmmod"] = os.path.exists(DEVICE)
    out["module_after_rmmod"] = Path("/sys/module/shrinkmem").exists()
    total_mb = ram_pages() * PAGE_KB >> 10
    out["bad_load_parameters"] = {
        "max_mb=0": insmod_refused(args.ko, "max_mb=0"),
        "max_mb=ram+1": insmod_refused(args.ko, f"max_mb={total_mb + 1}"),
        "max_mb=abc": insmod_refused(args.ko, "max_mb=abc"),
        "chunk_mb=65": insmod_refused(args.ko, "chunk_mb=65"),
    }
    load = run("insmod", args.ko, "max_mb=64", DYNDBG)
    out["insmod_rc"] = load.returncode
    out["insmod_stderr"] = load.stderr
    out["device_after_insmod"] = os.path.exists(DEVICE)
    out["max_mb_param"] = (PARAMETERS / "max_mb").read_text().strip()
    with shrinkmem.ShrinkMem() as dev:
        info = dev.info()
    out["max_pages"] = info.max_pages
    out["write_64"] = write_text(b"64\n")
    out["write_65"] = write_text(b"65\n")
    out["summary"] = summary()
    out["final_rmmod_rc"] = run("rmmod", "shrinkmem").returncode
    out["device_after_final_rmmod"] = os.path.exists(DEVICE)
    if args.other_abi_ko:
        # A module that speaks another ABI version: the client refuses it when it opens the device.
        other = run("insmod", args.other_abi_ko)
        mismatch: Json = {"insmod_rc": other.returncode, "insmod_stderr": other.stderr}
        try:
            with shrinkmem.ShrinkMem():
                mismatch["client"] = "opened"
        except ActionError as error:
            mismatch["client"] = str(error)
        mismatch["rmmod_rc"] = run("rmmod", "shrinkmem").returncode
        out["other_abi"] = mismatch
    return out


SECTIONS: List[tuple[str, Callable[[argparse.Namespace], Json]]] = [
    ("load", section_load),
    ("params", section_params),
    ("cache", section_cache),
    ("bad_inputs", section_bad_inputs),
    ("unprivileged", section_unprivileged),
    ("snapshot", section_snapshot),
    ("parallel", section_parallel),
    ("fuzz", section_fuzz),
    ("kill", section_kill),
    ("reload", section_reload),
]


def lockdep_state() -> Json:
    """From /proc/lockdep_stats: whether lockdep is still on (it stops after its first report) and what it tracks."""
    stats: Dict[str, int] = {}
    for line in Path("/proc/lockdep_stats").read_text().splitlines():
        key, _, value = line.partition(":")
        words = value.split()
        if words and words[0].isdigit():
            stats[key.strip()] = int(words[0])
    return {"debug_locks": stats.get("debug_locks", -1), "lock_classes": stats.get("lock-classes", 0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ko", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--data-disk")
    parser.add_argument("--seed", type=int, default=20240229)
    parser.add_argument("--fuzz-calls", type=int, default=2000)
    parser.add_argument("--kill-mb", type=int, default=600, help="size of the request that is killed")
    parser.add_argument("--hog-mb", type=int, default=500, help="anonymous memory the request has to swap out")
    parser.add_argument("--debug-state", action="store_true", help="record lockdep's state at the end")
    parser.add_argument("--other-abi-ko", help="a build of the module with another SHRINKMEM_ABI_VERSION")
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
        # Written after every section too, so that a guest that runs out of time still leaves what it measured.
        (args.out / "results.partial.json").write_text(json.dumps(results, indent=1))
        if name == "load" and results[name].get("insmod_rc") != 0:
            log("insmod failed: skipping the rest")
            break
    if args.debug_state:
        results["debug_state"] = lockdep_state()
    results["dmesg"] = dmesg()
    results["uptime_at_end"] = float(Path("/proc/uptime").read_text().split()[0])
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
