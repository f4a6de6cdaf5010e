"""A month in minutes: the real daemon loop (Daemon.run) on fake /proc and /sys trees whose
state a script changes, for as many polls as asked, measuring the process as it goes.

What runs is shrinkd's own loop: Daemon.run() polls (tick: read, parse, decide, act,
measure again, tell), sleeps between polls in process.sleep(), reloads on SIGHUP (the
configuration read in a child process, as `shrinkd run` does, trust checks included)
and stops on SIGTERM. Two things are not the machine's: the clock is injected and
jumps over each sleep instead of waiting (process.sleep runs, sees its deadline
passed, and returns), and the kernel is a fake tree (tests/fakekernel.py) that the
script below changes between polls and that answers shrinkd's writes:

- fragmentation rises one captured state every few polls (idle, frag1, frag2, frag3,
  hog, from tests/fixtures/kernels/6.1-*) and falls when shrinkd compacts (one state)
  or reclaims (two), so conditions trigger, act, clear and cool down all month;
- the shrinkmem module appears and vanishes (its device node; its ioctl fails on the
  stand-in node, so reclaim falls back to memory.reclaim with the failure noted);
- reloads (SIGHUP): two valid configurations in turn, an invalid one and a file made
  writable by others (both refused: reload_failed, the running configuration stays);
- writes fail for a while (the node's compact file and memory.reclaim replaced by
  directories: EISDIR), and a /proc/buddyinfo that does not parse, for one poll;
- refaults jump after some reclaims (the thrash guard backs off);
- the kernel log reports an allocation failure now and then (a socket stands in for
  /dev/kmsg, one record per read).

Events go to a datagram socket in journald's native protocol, and sd_notify messages to
another, both read by a thread, so every event is counted where it arrives. At each
checkpoint the process's resident memory, open descriptors, Python objects (gc-tracked)
and allocated memory blocks (sys.getallocatedblocks: every object, strings included)
are measured after a full collection.

bench/soak.py runs a million polls and prints the table; tests/test_soak.py runs a
shorter soak with the same code and asserts the same things.
"""

from __future__ import annotations

import fcntl
import gc
import io
import os
import select
import shutil
import signal
import socket
import sys
import termios
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from shrinkd import configload
from shrinkd.actions import Tunables
from shrinkd.daemon import Daemon
from shrinkd.errors import ShrinkdError
from shrinkd.journal import Journal
from shrinkd.kmsg import KernelLog
from shrinkd.notify import Notifier

from .fakekernel import STATES, Tree

LADDER = ("6.1-idle", "6.1-frag1", "6.1-frag2", "6.1-frag3", "6.1-hog")

# Two configurations reloads switch between. A: the unusable index of DMA32 at order 9
# triggers from frag3 (0.671) and clears at frag1 (0.129); compaction, then reclaim; polls
# every 1 to 10 s. B adds the fragmentation index (hog trips it; compaction only, so the
# unusable index, which may reclaim, wins the zone over it), a watermark rule (zoneinfo
# every poll) and a vmstat rate trigger, and polls at the default 1 to 120 s. Both keep the default
# allocation_failures trigger (kernel log reports and failure counters: compaction of
# every node).
CONFIG_A = """
rules:
  - name: huge
    zones: [DMA32]
    orders: [9]
    unusable_index: {trigger: 0.6, clear: 0.3}
    sustain: 2
    min_zone_size: 64M
backends:
  shrinkmem: {device: DEVICE}
guards:
  cooldown: 60
  thrash: {watch: 30, backoff: 120, backoff_max: 960}
reclaim:
  min: 4M
  max_per_event: 64M
  max_per_hour: 256M
poll:
  max_interval: 10
psi:
  wakeup: false
log:
  target: journal
"""
CONFIG_B = (
    CONFIG_A.replace("poll:\n  max_interval: 10\n", "")
    .replace(
        "    min_zone_size: 64M\n",
        "    min_zone_size: 64M\n"
        "  - name: costly\n"
        '    zones: ["*"]\n'
        "    orders: [9]\n"
        "    extfrag_index: {trigger: 0.5, clear: 0.3}\n"
        "    sustain: 1\n"
        "    reclaim: false\n"
        "  - name: low\n"
        "    zones: [DMA32]\n"
        "    orders: [0]\n"
        "    watermark: {below: min, clear: low}\n",
    )
    .replace("guards:", "triggers:\n  vmstat: [{counter: compact_stall, rate: 1000, clear: 100}]\nguards:")
)
CONFIG_BAD = CONFIG_A.replace("cooldown: 60", "cooldown: -1")


def _statm_rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # less the one listdir holds


class Figures:
    """The process at one checkpoint."""

    def __init__(self, polls: int, seconds: float) -> None:
        gc.collect()
        self.polls = polls
        self.seconds = seconds
        self.rss = _statm_rss()
        self.fds = _open_fds()
        self.objects = len(gc.get_objects())
        self.blocks = sys.getallocatedblocks()

    def row(self) -> str:
        return f"{self.polls:>9} {self.rss / 1024:>10.0f} {self.fds:>5} {self.objects:>9} {self.blocks:>9} {self.seconds:>9.1f}"

    HEADER = f"{'polls':>9} {'RSS KiB':>10} {'fds':>5} {'objects':>9} {'blocks':>9} {'seconds':>9}"


class Listener:
    """journald and systemd stand-ins: datagram sockets read by a child process that counts what arrives.

    A process, not a thread: a thread woken by every datagram would take the GIL from the
    daemon's loop at each send (the send costs more than the poll). tally() asks the child
    for its counts once everything sent so far has been read.
    """

    def __init__(self, directory: Path) -> None:
        self.journal_path = str(directory / "journal.socket")
        self.notify_path = str(directory / "notify.socket")
        journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        journal.bind(self.journal_path)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(self.notify_path)
        ask_read, self._ask = os.pipe()
        self._answer, answer_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: count until asked to stop
            status = 0
            try:
                os.close(self._ask)
                os.close(self._answer)
                _count(journal, notify, ask_read, answer_write)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(ask_read)
        os.close(answer_write)
        self._sockets = (journal, notify)
        self.events: Dict[str, int] = {}
        self.notifications: Dict[str, int] = {}
        self.lines = self.internal_errors = self.malformed = 0
        self.last_error = ""

    def settle(self) -> None:
        """Wait until the child has read everything sent, and take its counts."""
        for _ in range(1000):
            if all(_queued(sock) == 0 for sock in self._sockets):
                break
            time.sleep(0.01)
        os.write(self._ask, b"?")
        tally = _read_all(self._answer)
        self.events, self.notifications = tally["events"], tally["notifications"]
        self.lines, self.internal_errors = tally["lines"], tally["internal_errors"]
        self.malformed, self.last_error = tally["malformed"], tally["last_error"]

    def close(self) -> None:
        os.write(self._ask, b"x")
        os.waitpid(self.pid, 0)
        os.close(self._ask)
        os.close(self._answer)
        for sock in self._sockets:
            sock.close()


def _queued(sock: socket.socket) -> int:
    buffer = bytearray(4)
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, buffer)
    return int.from_bytes(buffer, sys.byteorder)


def _read_all(fd: int) -> Dict[str, Any]:
    import marshal

    size = int.from_bytes(os.read(fd, 8), "little")
    data = b""
    while len(data) < size:
        data += os.read(fd, size - len(data))
    tally: Dict[str, Any] = marshal.loads(data)
    return tally


def _count(journal: socket.socket, notify: socket.socket, ask: int, answer: int) -> None:
    """The listener child's loop: count journal entries per event and sd_notify messages per key."""
    import marshal

    tally: Dict[str, Any] = {
        "events": {},
        "notifications": {},
        "lines": 0,
        "internal_errors": 0,
        "malformed": 0,
        "last_error": "",
    }
    journal.setblocking(False)
    notify.setblocking(False)
    poller = select.poll()
    for fd in (journal.fileno(), notify.fileno(), ask):
        poller.register(fd, select.POLLIN)
    while True:
        ready = {fd for fd, _ in poller.poll()}
        if ask not in ready:
            # Read in batches: woken for each datagram, this process would take the CPU from the daemon
            # at every send on a busy machine. (A full sd_notify queue costs a message, as under systemd;
            # the journal's sender waits.)
            time.sleep(0.005)
        for sock, handle in ((journal, _entry), (notify, _notification)):
            while True:
                try:
                    handle(sock.recv(65536), tally)
                except BlockingIOError:
                    break
        if ask in ready:
            if os.read(ask, 1) != b"?":
                return
            data = marshal.dumps(tally)
            os.write(answer, len(data).to_bytes(8, "little") + data)


def _notification(data: bytes, tally: Dict[str, Any]) -> None:
    for line in data.decode().splitlines():
        key = line.partition("=")[0]
        tally["notifications"][key] = tally["notifications"].get(key, 0) + 1


def _entry(data: bytes, tally: Dict[str, Any]) -> None:
    """One journal entry in the native protocol (KEY=value lines, or KEY, a length and the value)."""
    fields: Dict[bytes, bytes] = {}
    while data:
        newline = data.index(b"\n")
        line = data[:newline]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            data = data[newline + 1 :]
        else:
            size = int.from_bytes(data[newline + 1 : newline + 9], "little")
            key, value = line, data[newline + 9 : newline + 9 + size]
            data = data[newline + 10 + size :]
        fields[key] = value
    if b"PRIORITY" not in fields or b"MESSAGE" not in fields:
        tally["malformed"] += 1
    if b"internal error" in fields.get(b"MESSAGE", b""):
        tally["internal_errors"] += 1
        tally["last_error"] = fields[b"MESSAGE"].decode(errors="replace")
    kind = fields.get(b"SHRINKD_EVENT")
    if kind is None:
        tally["lines"] += 1
    else:
        events = tally["events"]
        events[kind.decode()] = events.get(kind.decode(), 0) + 1


class Kernel(Tunables):
    """The fake kernel's answer to writes: compaction and reclaim bring fragmentation down.

    Counts every write that took and every one that failed, per file, as the
    independent tally the events are checked against.
    """

    def __init__(self, soak: Soak) -> None:
        self.soak = soak
        self.done: Dict[str, int] = {}
        self.failed: Dict[str, int] = {}

    def write(self, path: str, value: str) -> None:
        name = os.path.basename(path)
        try:
            super().write(path, value)
        except ShrinkdError:
            self.failed[name] = self.failed.get(name, 0) + 1
            raise
        self.done[name] = self.done.get(name, 0) + 1
        if name in ("compact", "compact_memory"):
            self.soak.level_to(self.soak.level - 1)
        elif name == "memory.reclaim":
            self.soak.level_to(self.soak.level - 2)
            self.soak.reclaims += 1


class Soak:
    def __init__(
        self,
        root: Path,
        polls: int,
        checkpoints: Sequence[int],
        rise_every: int = 7,
        module_every: int = 5000,
        reload_every: int = 2000,
        failing_every: int = 3000,
        failing_for: int = 200,
        malformed_every: int = 1000,
        thrash_every: int = 2,
        failure_every: int = 1500,
    ) -> None:
        self.root = root
        self.polls = polls
        self.checkpoints = sorted(checkpoints)
        self.rise_every = rise_every
        self.module_every = module_every
        self.reload_every = reload_every
        self.failing_every = failing_every
        self.failing_for = failing_for
        self.malformed_every = malformed_every
        self.thrash_every = thrash_every
        self.failure_every = failure_every

        self.tree = Tree(root / "kernel")
        self.device = root / "kernel" / "dev" / "shrinkmem"
        self.device.parent.mkdir()
        self.config_dir = root / "etc"
        self.config_dir.mkdir(mode=0o755)
        self.config_path = self.config_dir / "shrinkd.yaml"
        self.config_path.write_text(self._config(CONFIG_A))
        self.config_path.chmod(0o644)
        self.states = {name: self._state(name) for name in LADDER}
        self.broken = "Node 0, zone DMA32 1 2 3\nNode 0, zone Normal 1 2\n"
        self.level = 0
        self.reclaims = 0
        self.listener = Listener(root)
        self.kernel = Kernel(self)
        self.clock = JumpingClock()
        self.figures: List[Figures] = []
        self.iteration = 0
        self.started_at = 0.0

        # What the script did: the tally the events are checked against.
        self.reloads_sent = 0
        self.reloads_refused = 0
        self.module_toggles = 0
        self.malformed = 0
        self.thrash_bumps = 0
        self.failures_logged = 0
        self.reloads_dropping = 0
        self.active_at_end = 0
        self._restore_buddyinfo = False
        self._failing = False
        self._broken_control: Optional[Path] = None
        self._bumped_at = 0
        self.progress: Optional[Callable[[Figures], None]] = None

    def _config(self, text: str) -> str:
        return text.replace("DEVICE", str(self.device))

    @staticmethod
    def _state(name: str) -> Dict[str, str]:
        return {file: (STATES / name / "proc" / file).read_text() for file in ("buddyinfo", "zoneinfo")}

    # -- the fake kernel's state --------------------------------------------------------

    def level_to(self, level: int) -> None:
        level = min(max(level, 0), len(LADDER) - 1)
        if level == self.level:
            return
        self.level = level
        self._install(self.states[LADDER[level]])

    def _install(self, files: Dict[str, str]) -> None:
        # In place (same inode): the daemon keeps /proc files open and reads them again from offset 0.
        for name, text in files.items():
            with open(self.tree.proc / name, "r+") as handle:
                handle.write(text)
                handle.truncate()

    def _vmstat_add(self, key: str, amount: int) -> None:
        path = self.tree.proc / "vmstat"
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            name, value = line.split()
            if name == key:
                lines[number] = f"{name} {int(value) + amount}"
        with open(path, "r+") as handle:
            handle.write("\n".join(lines) + "\n")
            handle.truncate()

    def _set_failing(self, failing: bool, period: int) -> None:
        """Replace the node's compact file (odd periods) or memory.reclaim (even ones) with a directory, so that
        writes to it fail (EISDIR) while the backend still looks present; or put it back."""
        if failing:
            self._broken_control = self.tree.sys / (
                "devices/system/node/node0/compact" if period % 2 else "fs/cgroup/memory.reclaim"
            )
            self._broken_control.unlink()
            self._broken_control.mkdir()
        elif self._broken_control is not None:
            self._broken_control.rmdir()
            self._broken_control.write_text("")
            self._broken_control = None
        self._failing = failing

    # -- between polls: the script ---------------------------------------------------------

    def between_polls(self, daemon: Daemon) -> None:
        self.iteration += 1
        n = self.iteration
        if n in self.checkpoints:
            self.listener.settle()
            self.figures.append(Figures(n, time.perf_counter() - self.started_at))
            if self.progress is not None:
                self.progress(self.figures[-1])
        if n >= self.polls:
            os.kill(os.getpid(), signal.SIGTERM)  # as systemctl stop does; nothing else is started now
            return
        if self._restore_buddyinfo:
            self._restore_buddyinfo = False
            self._install({"buddyinfo": self.states[LADDER[self.level]]["buddyinfo"]})
        if n % self.rise_every == 0:
            self.level_to(self.level + 1)
        if n % self.module_every == 0:
            self.module_toggles += 1
            if self.device.exists():
                self.device.unlink()
            else:
                self.device.write_text("")
        if n % self.failing_every == 0:
            self._set_failing(True, n // self.failing_every)
        elif self._failing and n % self.failing_every == self.failing_for:
            self._set_failing(False, 0)
        if n % self.malformed_every == 0:
            self.malformed += 1
            self._install({"buddyinfo": self.broken})
            self._restore_buddyinfo = True
        if self.reclaims - self._bumped_at >= self.thrash_every:
            # Refaults jump right after every few reclaims, as if reclaim had taken the working set.
            self._bumped_at = self.reclaims
            self.thrash_bumps += 1
            self._vmstat_add("workingset_refault_file", 1_000_000)
        if n % self.failure_every == 0:
            self.failures_logged += 1
            self._kmsg.send(
                f"4,{n},{n * 1000},-;soak: page allocation failure: order:9, mode:0x800(GFP_NOWAIT), nodemask=(null)\n".encode()
            )
        if n % self.reload_every == 0:
            self._reload()

    def _reload(self) -> None:
        """Rewrite the configuration (one of four variants) and send SIGHUP, as `systemctl reload` does."""
        variant = self.reloads_sent % 4
        self.reloads_sent += 1
        self.config_path.chmod(0o644)
        if variant == 0:
            self.config_path.write_text(self._config(CONFIG_B))
        elif variant == 1:
            self.config_path.write_text(self._config(CONFIG_BAD))
            self.reloads_refused += 1
        elif variant == 2:
            self.config_path.write_text(self._config(CONFIG_A))
            self.config_path.chmod(0o666)  # anyone could have written it: refused
            self.reloads_refused += 1
        else:
            self.config_path.write_text(self._config(CONFIG_A))  # after B: its two extra rules go
            self.reloads_dropping += 1
        os.kill(os.getpid(), signal.SIGHUP)

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> int:
        path = str(self.config_path)

        def load() -> object:  # as `shrinkd run --config FILE` loads, at start and on each SIGHUP
            return configload.load_isolated(configload.resolve(path))

        soak = self
        journal = Journal("journal", socket_path=self.listener.journal_path, stream=_Discard())
        # /dev/kmsg's stand-in: a sequenced-packet socket gives one record per read, as the device does.
        ours, self._kmsg = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        kernel_log = KernelLog("/dev/kmsg", fd=os.dup(ours.fileno()))
        ours.close()
        (self.root / "run").mkdir(mode=0o755)
        notifier = Notifier({"NOTIFY_SOCKET": self.listener.notify_path, "WATCHDOG_USEC": "30000000"})

        class SoakDaemon(Daemon):
            def wait(self, timeout: float) -> None:
                soak.clock.jump(timeout)
                try:
                    super().wait(timeout)  # process.sleep: the deadline has passed when it looks
                finally:
                    soak.clock.land()
                soak.between_polls(self)

        daemon = SoakDaemon(
            self.tree.procfs,
            load(),  # type: ignore[arg-type]
            journal,
            reload=load,  # type: ignore[arg-type]
            notifier=notifier,
            tunables=self.kernel,
            clock=self.clock,
            page_size=4096,
            uevents=False,
            kernel_log=kernel_log,
            state_path=str(self.root / "run" / "status.json"),  # written every poll, as under systemd
        )
        self.daemon = daemon
        self.started_at = time.perf_counter()
        code = daemon.run()
        self.active_at_end = sum(1 for state in daemon.policy.watches.values() if state.active)
        self.listener.settle()
        self.seconds = time.perf_counter() - self.started_at
        self.simulated = self.clock.now - JumpingClock.START
        return code

    def close(self) -> None:
        self.listener.close()
        if getattr(self, "_kmsg", None) is not None:
            self._kmsg.close()
        shutil.rmtree(self.root / "kernel", ignore_errors=True)

    # -- what the events must add up to ------------------------------------------------------

    def expected(self) -> Dict[str, int]:
        """Events whose number the script and the fake kernel's tally fix exactly."""
        failed = self.kernel.failed
        done = self.kernel.done
        return {
            "started": 1,
            "stopped": 1,
            "reloaded": self.reloads_sent - self.reloads_refused,
            "reload_failed": self.reloads_refused,
            "poll_failed": self.malformed,
            "backends_changed": self.module_toggles,
            "compacted": done.get("compact", 0) + done.get("compact_memory", 0),
            "reclaimed": done.get("memory.reclaim", 0),
            "action_failed": failed.get("compact", 0) + failed.get("memory.reclaim", 0),
            "allocation_failed": self.failures_logged,
        }

    def mismatches(self) -> List[str]:
        """Every way the events that arrived differ from what must have happened; empty when all is well."""
        got = self.listener.events
        problems = [
            f"{kind}: {got.get(kind, 0)} logged, {count} expected"
            for kind, count in self.expected().items()
            if got.get(kind, 0) != count
        ]
        # Every condition that started ended, holds still, or went with its rule in a reload from B to A
        # (the fragmentation index and watermark conditions of DMA32: two at most each time).
        triggered, cleared = got.get("triggered", 0), got.get("cleared", 0)
        dropped = triggered - cleared - self.active_at_end
        if not 0 <= dropped <= 2 * self.reloads_dropping:
            problems.append(
                f"triggered {triggered}, cleared {cleared}, {self.active_at_end} holding at the end: "
                f"{dropped} unaccounted for ({self.reloads_dropping} reloads removed rules)"
            )
        for kind in ("triggered", "cleared", "skipped", "thrash_backoff"):
            if not got.get(kind):
                problems.append(f"no {kind} event: the script did not reach it")
        if self.listener.internal_errors:
            problems.append(f"{self.listener.internal_errors} internal errors, last: {self.listener.last_error}")
        if self.listener.malformed:
            problems.append(f"{self.listener.malformed} journal entries without MESSAGE or PRIORITY")
        if self.kernel.failed.get("shrinkmem", 0):
            problems.append("a write to the shrinkmem node (it takes ioctls only)")
        return problems


class JumpingClock:
    """The injected monotonic clock. During a sleep it reads the start once, then the deadline:
    process.sleep() computes its deadline, finds it passed, and returns without waiting."""

    START = 1000.0

    def __init__(self) -> None:
        self.now = self.START
        self._jump: Optional[float] = None
        self._reads = 0

    def __call__(self) -> float:
        if self._jump is None:
            return self.now
        self._reads += 1
        return self.now if self._reads == 1 else self.now + self._jump

    def jump(self, seconds: float) -> None:
        self._jump, self._reads = seconds, 0

    def land(self) -> None:
        if self._jump is not None:
            self.now += self._jump
        self._jump = None


class _Discard(io.StringIO):
    """stderr for the journal's fallback lines: counted, not kept (the soak must not hold a growing buffer)."""

    lines = 0

    def write(self, text: str) -> int:
        self.lines += 1
        return len(text)


# -- flat after warm-up ---------------------------------------------------------------------------

# How much a figure may move between the end of warm-up and the end of a run without it
# counting as growth. Across runs the noise was a few dozen gc-tracked objects (a dict
# resizing, a cached value replaced), a few hundred allocated blocks and one or two
# pymalloc arenas of resident memory (256 KiB each), whatever the length of the run. What
# the slack must stay below: the soak logs about one event per 20 polls, so keeping one
# container per event over the 6,000 polls the CI run measures is 300 objects, and one
# string per poll 6,000 blocks and, at a hundred bytes, 600 KiB. Descriptors must not move.
OBJECT_SLACK = 100
BLOCK_SLACK = 1000
RSS_SLACK = 512 * 1024


def growth(first: Figures, last: Figures) -> List[str]:
    """What grew between two checkpoints beyond the slack; empty when flat."""
    problems = []
    if last.fds != first.fds:
        problems.append(f"open descriptors {first.fds} -> {last.fds}")
    if last.objects - first.objects > OBJECT_SLACK:
        problems.append(f"Python objects {first.objects} -> {last.objects} (+{last.objects - first.objects})")
    if last.blocks - first.blocks > BLOCK_SLACK:
        problems.append(f"allocated blocks {first.blocks} -> {last.blocks} (+{last.blocks - first.blocks})")
    if last.rss - first.rss > RSS_SLACK:
        problems.append(f"resident memory {first.rss // 1024} -> {last.rss // 1024} KiB")
    return problems
