"""The idle daemon side by side with earlyoom, nohang, a trivial loop and a bare interpreter: CPU per
minute, wake-ups per minute, CPU and page faults per wake-up, and RSS.

All five run at once, in the same run, on an idle machine:
  shrinkd   `shrinkd run` started as the packaged /usr/bin/shrinkd starts it (PYTHON -c with its code), with the built-in defaults (--dry-run by default, so
            nothing is compacted or reclaimed while measuring), with NOTIFY_SOCKET and
            WATCHDOG_USEC set as systemd would with the unit's WatchdogSec=5min (it sends READY=1
            and watchdog pings);
  earlyoom  Debian's /usr/bin/earlyoom with its defaults;
  loop      the least a Python daemon can do: wake every 10 s and pread /proc/buddyinfo (the
            same interpreter as shrinkd), so the cost of one wake-up is explainable on any machine;
  nohang    Debian's /usr/sbin/nohang --monitor with /etc/nohang/nohang.conf;
  bare      `PYTHON -c 'import time; time.sleep(...)'`, the same interpreter as shrinkd.
After a settling time, CPU time (the scheduler's nanosecond count from
/proc/PID/task/*/schedstat; utime + stime where that is missing) is taken over the
window and scaled to one minute; wake-ups are the voluntary context switches of all threads
(/proc/PID/task/*/status) over the window; memory is read with psutil at the
end: RSS (resident, shared pages counted whole), USS (pages only this process holds: what
stopping it would free) and PSS (shared pages split among their sharers); and from
/proc/PID/smaps what of RSS beyond the bare interpreter's is anonymous memory (Python's objects:
shrinkd's code objects, functions and classes above all) and what machine code run (the
interpreter's own pages: the more kinds of operation a process runs, the more of them).
With --outputs, a second shrinkd keeps a trace and a Prometheus textfile (record.path,
prometheus.textfile, in a scratch folder) beside the plain one; with --baseline DIR, a
shrinkd from another source tree (e.g. a checkout of main) runs too, for a before/after
in the same run.
Prints a table and the ratios to the targets: shrinkd CPU <= earlyoom's, shrinkd RSS
<= 1.25x bare. With --imports, also what each of shrinkd's imports costs (RSS,
`-X importtime` of the daemon process, not of the child that reads the configuration, and
the Python memory each of shrinkd's own modules keeps), to find what to trim.

    python bench/idle.py [--window SECONDS] [--settle SECONDS] [--python PATH] [--imports] [--quick]
                         [--outputs] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

REPO = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
DEBIAN_PYTHON = "/usr/bin/python3"


@dataclass
class Candidate:
    name: str
    command: List[str]
    env: Dict[str, str]
    process: Optional[subprocess.Popen[bytes]] = None
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    wakes_start: int = 0
    wakes_end: int = 0
    faults_start: int = 0
    faults_end: int = 0
    rss_kb: int = 0
    uss_kb: int = 0
    pss_kb: int = 0
    anon_kb: int = 0
    code_kb: int = 0
    exit_code: Optional[int] = None


def cpu_seconds(pid: int) -> float:
    """CPU time of a process, all threads, in seconds: the scheduler's nanosecond count
    (/proc/PID/task/*/schedstat), else utime + stime (clock ticks) where schedstat is missing."""
    try:
        total = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as handle:
                total += int(handle.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / TICKS


def wakes(pid: int) -> int:
    """Times the process went to sleep of its own accord, all threads (voluntary context switches):
    each is one wake-up, since a sleeping process switches out again after it ran."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status") as handle:
            for line in handle:
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        text = handle.read()
    return int(text[text.rindex(")") + 2 :].split()[7])


def status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def memory_kb(pid: int) -> Tuple[int, int, int]:
    """RSS, USS and PSS of a process in kB (psutil's memory_full_info: /proc/PID/smaps_rollup)."""
    import psutil

    info = psutil.Process(pid).memory_full_info()
    return info.rss // 1024, info.uss // 1024, info.pss // 1024


def memory_parts(pid: int) -> Tuple[int, int]:
    """(anonymous memory, resident pages of executable file mappings) of a process in kB
    (/proc/PID/smaps): what Python's objects and heap take, and the machine code run so far (the
    interpreter's own above all; a page run once stays resident until memory runs short, and the
    kernel maps the cached pages around a fault with it: 64 kB at a time)."""
    anon = code = 0
    executable = False
    with open(f"/proc/{pid}/smaps") as handle:
        for line in handle:
            key, _, rest = line.partition(" ")
            if not key.endswith(":"):
                fields = line.split()
                executable = "x" in fields[1] and len(fields) > 5 and fields[5].startswith("/")
            elif key == "Anonymous:":
                anon += int(rest.split()[0])
            elif key == "Rss:" and executable:
                code += int(rest.split()[0])
    return anon, code


def default_python() -> str:
    """Debian's python3 when it has shrinkd's dependencies (as the package runs it), else this one."""
    if os.path.exists(DEBIAN_PYTHON):
        check = subprocess.run(
            [DEBIAN_PYTHON, "-c", "import yaml"], capture_output=True, check=False
        )
        if check.returncode == 0:
            return DEBIAN_PYTHON
    return sys.executable


LAUNCHER = "import sys\nfrom shrinkd.cli import main\nsys.exit(main())"
# What CPython offers a long-lived daemon, tried beside the launcher as packaged (--variants):
# the start-up objects moved out of the cyclic collector's reach, and an interpreter started
# without the site module (-S: no site-packages paths, no .pth files read).
FROZEN_LAUNCHER = "import gc, sys\nfrom shrinkd.cli import main\ngc.freeze()\nsys.exit(main())"
# The baseline that explains a wake's cost on any machine: the least a Python daemon can do,
# wake every 10 s and read /proc/buddyinfo.
TRIVIAL_LOOP = (
    "import os, time\n"
    "fd = os.open('/proc/buddyinfo', os.O_RDONLY)\n"
    "while True:\n"
    "    os.pread(fd, 65536, 0)\n"
    "    time.sleep(10)\n"
)
# WatchdogSec= of packaging/systemd/shrinkd.service (5 min): shrinkd pings every half of it.
WATCHDOG_USEC = "300000000"


OUTPUTS = """\
record: {{path: {folder}/trace.jsonl}}
prometheus: {{textfile: {folder}/shrinkd.prom}}
"""


def candidates(
    python: str,
    notify_socket: str,
    dry_run: bool,
    outputs: Optional[str] = None,
    baseline: Optional[str] = None,
    variants: bool = False,
) -> List[Candidate]:
    base = {key: value for key, value in os.environ.items() if key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    shrinkd_env = dict(base, PYTHONPATH=str(REPO), NOTIFY_SOCKET=notify_socket, WATCHDOG_USEC=WATCHDOG_USEC)
    # Started as the packaged /usr/bin/shrinkd starts it (its exact code), not with
    # `-m shrinkd`, whose runpy and importlib.util the deployed daemon never loads.
    run = [python, "-c", LAUNCHER, "run"] + (["--dry-run"] if dry_run else [])
    found = [Candidate("shrinkd", run, shrinkd_env)]
    if outputs is not None:
        config = os.path.join(outputs, "outputs.yaml")
        with open(config, "w") as handle:
            handle.write(OUTPUTS.format(folder=outputs))
        found.append(Candidate("shrinkd+out", [*run, "--config", config], dict(shrinkd_env)))
    if baseline is not None:
        found.append(Candidate("baseline", run, dict(shrinkd_env, PYTHONPATH=os.path.abspath(baseline))))
    if variants:
        found.append(Candidate("gc.freeze", [python, "-c", FROZEN_LAUNCHER, *run[3:]], dict(shrinkd_env)))
        found.append(Candidate("no site", [python, "-S", *run[1:]], dict(shrinkd_env)))
    if shutil.which("earlyoom"):
        found.append(Candidate("earlyoom", [shutil.which("earlyoom") or "earlyoom"], base))
    nohang = shutil.which("nohang") or ("/usr/sbin/nohang" if os.path.exists("/usr/sbin/nohang") else None)
    if nohang:
        found.append(Candidate("nohang", [nohang, "--monitor", "--config", "/etc/nohang/nohang.conf"], base))
    found.append(Candidate("loop", [python, "-c", TRIVIAL_LOOP], base))
    found.append(Candidate("bare", [python, "-c", "import time; time.sleep(1e6)"], base))
    return found


def measure(items: Sequence[Candidate], settle: float, window: float, notify: socket.socket) -> Tuple[float, List[bytes]]:
    """Start all, wait `settle`, measure over `window`; returns (seconds measured, sd_notify messages)."""
    messages: List[bytes] = []

    def sleep_draining(seconds: float) -> None:
        # systemd reads its notify socket at once; a datagram queue left unread fills up
        # (net.unix.max_dgram_qlen) and the daemon's non-blocking sends would be dropped.
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([notify], [], [], left)
            if ready:
                messages.append(notify.recv(4096))

    for item in items:
        # From /: `python3 -c` puts the working directory first on sys.path, so started from a
        # checkout every shrinkd (the baseline too) would import that checkout's package.
        item.process = subprocess.Popen(
            item.command, env=item.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/",
        )
    try:
        sleep_draining(settle)
        for item in items:
            assert item.process is not None
            item.exit_code = item.process.poll()
            if item.exit_code is None:
                item.cpu_start = cpu_seconds(item.process.pid)
                item.wakes_start = wakes(item.process.pid)
                item.faults_start = minor_faults(item.process.pid)
        started = time.monotonic()
        sleep_draining(window)
        elapsed = time.monotonic() - started
        for item in items:
            assert item.process is not None
            item.exit_code = item.process.poll()
            if item.exit_code is None:
                item.cpu_end = cpu_seconds(item.process.pid)
                item.wakes_end = wakes(item.process.pid)
                item.faults_end = minor_faults(item.process.pid)
                item.rss_kb, item.uss_kb, item.pss_kb = memory_kb(item.process.pid)
                item.anon_kb, item.code_kb = memory_parts(item.process.pid)
        return elapsed, messages
    finally:
        for item in items:
            if item.process is not None and item.process.poll() is None:
                item.process.send_signal(signal.SIGTERM)
        for item in items:
            if item.process is not None:
                try:
                    item.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    item.process.kill()
                    item.process.wait()


def python_version(python: str) -> str:
    result = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip()


# Runs `shrinkd run --dry-run` in this interpreter for a few seconds, then prints the
# modules it has loaded and stops it (SIGTERM, as systemd would).
RUN_AND_LIST = (
    "import os, runpy, signal, sys, threading\n"
    "def done():\n"
    "    print(' '.join(sorted(sys.modules)), file=sys.stdout, flush=True)\n"
    "    os.kill(os.getpid(), signal.SIGTERM)\n"
    "threading.Timer(float(sys.argv[1]), done).start()\n"
    "sys.argv = ['shrinkd', 'run', '--dry-run']\n"
    "runpy.run_module('shrinkd', run_name='__main__')\n"
)
RSS_OF_IMPORT = (
    "import sys\n"
    "def rss():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmRSS:'):\n"
    "            return int(line.split()[1])\n"
    "before = rss()\n"
    "__import__(sys.argv[1])\n"
    "print(rss() - before)\n"
)


# Imports the modules named in argv[1:] one after another, in that order (each one's imports
# before it), and prints for each the Python memory its import keeps (tracemalloc, kB).
KEPT_BY_EACH = (
    "import sys, tracemalloc\n"
    "tracemalloc.start()\n"
    "for name in sys.argv[1:]:\n"
    "    before = tracemalloc.get_traced_memory()[0]\n"
    "    __import__(name)\n"
    "    print(name, (tracemalloc.get_traced_memory()[0] - before) // 1024)\n"
)


def import_order(importtime: str, modules: Set[str]) -> List[str]:
    """The modules of `modules` in the order `-X importtime` saw their imports end: each one's
    own imports before it, but a package before its submodules (importing one of them imports
    the package first, and the package's own imports with it)."""
    order: List[str] = []
    for line in importtime.splitlines():
        fields = line.split("|")
        if line.startswith("import time:") and len(fields) == 3:
            name = fields[2].strip()
            if name not in modules or name in order:
                continue
            parent = name.rpartition(".")[0]
            if parent and parent not in order and parent in modules:
                order.append(parent)
            if name not in order:
                order.append(name)
    return order


def top_level_times(importtime: str, modules: Set[str]) -> List[Tuple[str, int]]:
    """The top-level imports in `-X importtime` output (cumulative microseconds, slowest first),
    only those of `modules`: the configuration is read in a child process that writes its own
    imports (PyYAML, shrinkd.configfile, re, typing, ...) to the same stderr, and those are not
    the daemon's."""
    times: Dict[str, int] = {}
    for line in importtime.splitlines():
        fields = line.split("|")
        if not line.startswith("import time:") or len(fields) != 3 or not fields[1].strip().isdigit():
            continue
        raw = fields[2]
        name = raw.strip()
        if raw.startswith(" ") and not raw.startswith("  ") and name in modules:  # top level, not nested
            times[name] = int(fields[1])
    return sorted(times.items(), key=lambda item: -item[1])


def import_costs(
    python: str,
) -> Tuple[List[str], List[Tuple[str, int]], List[Tuple[str, int]], List[Tuple[str, int]]]:
    """What the running daemon imports: (its non-standard-library top-level packages,
    RSS in kB that each of those, and shrinkd.daemon, adds alone to a bare interpreter,
    the slowest top-level imports by `-X importtime`, cumulative microseconds,
    the Python memory in kB each of shrinkd's modules in the daemon keeps, biggest first)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS="ignore")
    env.pop("NOTIFY_SOCKET", None)
    result = subprocess.run(
        [python, "-X", "importtime", "-c", RUN_AND_LIST, "3"], capture_output=True, text=True, env=env, check=False
    )
    modules = set(result.stdout.split())
    loaded = {name.split(".")[0] for name in modules}
    bare = subprocess.run(
        [python, "-c", "import os, runpy, signal, sys, threading; print(' '.join(n.split('.')[0] for n in sys.modules))"],
        capture_output=True, text=True, env=env, check=False,
    )
    # shrinkd's own, third-party and standard-library packages beyond a bare interpreter's
    # (and beyond what the measuring wrapper itself imports)
    extra = sorted(loaded - set(bare.stdout.split()) - {"shrinkd"})
    ranked = top_level_times(result.stderr, modules)[:12]
    rss: List[Tuple[str, int]] = []
    # the biggest first
    for module in (*extra, "shrinkd.cli", "shrinkd.daemon", "shrinkd.udevwatch"):
        probe = subprocess.run([python, "-c", RSS_OF_IMPORT, module], capture_output=True, text=True, env=env, check=False)
        if probe.returncode == 0:
            rss.append((module, int(probe.stdout.strip())))
    rss.sort(key=lambda item: -item[1])
    own = [name for name in import_order(result.stderr, modules) if name.startswith("shrinkd")]
    kept: List[Tuple[str, int]] = []
    probe = subprocess.run([python, "-c", KEPT_BY_EACH, *own], capture_output=True, text=True, env=env, check=False)
    for line in probe.stdout.splitlines():
        name, _, size = line.partition(" ")
        kept.append((name, int(size)))
    kept.sort(key=lambda item: -item[1])
    return extra, rss, ranked, kept


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--window", type=float, default=600.0, help="measured window in seconds (default 600: shrinkd wakes rarely)"
    )
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after start before measuring (default 15)")
    parser.add_argument("--python", default=None, help="interpreter for shrinkd and the bare one (default: Debian's python3)")
    parser.add_argument("--act", action="store_true", help="run shrinkd without --dry-run")
    parser.add_argument("--imports", action="store_true", help="also show what each import costs")
    parser.add_argument("--quick", action="store_true", help="3 s window, 2 s settling (checks the script only)")
    parser.add_argument("--outputs", action="store_true", help="also a shrinkd that keeps a trace and a textfile")
    parser.add_argument("--baseline", metavar="DIR", help="also the shrinkd of another source tree (before/after)")
    parser.add_argument(
        "--variants", action="store_true", help="also shrinkd with gc.freeze() after start-up, and under python3 -S"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.window, args.settle = 3.0, 2.0
    python = args.python or default_python()
    # Bytecode present, as an installed package has it: without it (stale .pyc files, or a shell
    # that sets PYTHONDONTWRITEBYTECODE) every start compiles from source, about 1 to 2 MB more RSS.
    for tree in [REPO] + ([Path(args.baseline)] if args.baseline else []):
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([python, "-m", "compileall", "-q", str(tree / "shrinkd")], env=env, check=True,
                       stdout=subprocess.DEVNULL)

    with tempfile.TemporaryDirectory(prefix="shrinkd-idle-") as scratch:
        notify_path = os.path.join(scratch, "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        outputs = None
        if args.outputs:
            outputs = os.path.join(scratch, "out")
            os.mkdir(outputs, 0o755)
        items = candidates(
            python, notify_path, dry_run=not args.act, outputs=outputs, baseline=args.baseline, variants=args.variants
        )
        elapsed, messages = measure(items, args.settle, args.window, notify)
        notify.close()

    print(f"idle: kernel {platform.release()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}")
    print(f"python for shrinkd and bare: {python} ({python_version(python)})")
    print(f"window {elapsed:.1f} s after {args.settle:.0f} s settling; CPU = scheduler run time (schedstat) per minute")
    print("wakes = voluntary context switches; faults = minor page faults")
    print(f"{'process':12s} {'CPU ms/min':>11s} {'wakes/min':>10s} {'ms/wake':>8s} {'faults/wake':>12s} {'RSS MB':>8s} {'USS MB':>8s} {'PSS MB':>8s}")
    figures: Dict[str, Tuple[float, float]] = {}
    unique: Dict[str, Tuple[float, float]] = {}
    for item in items:
        if item.exit_code is not None:
            print(f"{item.name:12s} exited early with code {item.exit_code}: {' '.join(item.command)}")
            continue
        cpu = (item.cpu_end - item.cpu_start) * 1000 * 60 / elapsed
        woke = item.wakes_end - item.wakes_start
        per_minute = woke * 60 / elapsed
        per_wake = f"{cpu / per_minute:8.2f}" if woke else f"{'-':>8s}"
        faults = f"{(item.faults_end - item.faults_start) / woke:12.1f}" if woke else f"{'-':>12s}"
        rss = item.rss_kb / 1024
        figures[item.name] = (cpu, rss)
        unique[item.name] = (item.uss_kb / 1024, item.pss_kb / 1024)
        print(f"{item.name:12s} {cpu:11.2f} {per_minute:10.2f} {per_wake} {faults} {rss:8.1f} {item.uss_kb / 1024:8.1f} {item.pss_kb / 1024:8.1f}")
    bare_item = next((item for item in items if item.name == "bare" and item.exit_code is None), None)
    if bare_item is not None:
        print("RSS beyond the bare interpreter's, by kind (kB): anonymous memory (Python's objects and heap),")
        print("and machine code run (executable mappings, the interpreter's own above all):")
        for item in items:
            if item.exit_code is None and item.name not in ("bare", "earlyoom", "nohang"):
                print(f"  {item.name:12s} anonymous {item.anon_kb - bare_item.anon_kb:+6d}   code {item.code_kb - bare_item.code_kb:+6d}")
    ready = sum(1 for message in messages if b"READY=1" in message)
    pings = sum(1 for message in messages if b"WATCHDOG=1" in message)
    print(f"shrinkd sd_notify: READY=1 x{ready}, WATCHDOG=1 x{pings}")
    if "shrinkd" in figures:
        cpu, rss = figures["shrinkd"]
        if "earlyoom" in figures:
            base = figures["earlyoom"][0]
            ratio = f"{cpu / base:.2f}x" if base > 0 else "n/a (earlyoom used no measurable CPU)"
            print(f"CPU shrinkd/earlyoom: {ratio} (target <= 1x)")
        if "bare" in figures:
            print(f"RSS shrinkd/bare: {rss / figures['bare'][1]:.2f}x (target <= 1.25x)")
        if "nohang" in figures:
            print(f"RSS shrinkd/nohang: {rss / figures['nohang'][1]:.2f}x")
        for peer in ("bare", "earlyoom", "nohang"):
            if peer in unique and unique[peer][0] > 0:
                uss, pss = unique["shrinkd"]
                print(f"USS shrinkd/{peer}: {uss / unique[peer][0]:.2f}x; PSS shrinkd/{peer}: {pss / unique[peer][1]:.2f}x")
        for other in ("shrinkd+out", "baseline", "gc.freeze", "no site"):
            if other in figures:
                base_cpu, base_rss = figures[other]
                ratio = f"{cpu / base_cpu:.2f}x" if base_cpu > 0 else "n/a"
                uss_ratio = unique["shrinkd"][0] / unique[other][0] if unique[other][0] else 0.0
                print(f"shrinkd/{other}: CPU {ratio}, RSS {rss / base_rss:.2f}x, USS {uss_ratio:.2f}x")
    if args.imports:
        extra, rss_costs, times, kept = import_costs(python)
        print(f"modules the running daemon loads beyond a bare interpreter: {' '.join(extra) or 'none'}")
        print("RSS added by each import alone (kB over a bare interpreter):")
        for module, added in rss_costs:
            print(f"  {module:20s} {added:8d}")
        print("slowest top-level imports of the `shrinkd run` process (cumulative us, -X importtime;")
        print("the configuration reader's child and its imports left out):")
        for module, micros in times:
            print(f"  {module:20s} {micros:8d}")
        print(f"Python memory each of shrinkd's modules in the daemon keeps (kB, tracemalloc), total {sum(k for _, k in kept)}")
        print("(imported in the daemon's order; a package's count holds the submodules it imports):")
        for module, size in kept:
            print(f"  {module:32s} {size:6d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
