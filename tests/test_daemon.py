"""The daemon loop on fake /proc and /sys trees.

/proc holds states captured from a Debian 6.1 kernel (tests/fixtures/kernels);
a scripted kernel (ScriptedKernel) swaps in the next captured state when
shrinkd writes a control file, as compaction and reclaim would change the
free lists. Events go to a real datagram socket in journald's format, and
sd_notify messages to another.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from shrinkd import config, configload, metrics, parse
from shrinkd.actions import Tunables
from shrinkd.daemon import ZONEINFO_REFRESH, Daemon
from shrinkd.journal import MESSAGE_IDS, Journal
from shrinkd.notify import Notifier
from shrinkd.udevwatch import classify, parse_uevent

from .configs import config_from
from .fakekernel import STATES, Clock, ScriptedKernel, Tree, install, zoneinfo_free
from .test_journal import decode, told

# DMA32's unusable index at order 9 in each captured state (debugfs extfrag/unusable_index, captured with it):
# 6.1-hog 1.000, 6.1-frag3 0.671, 6.1-frag1 0.129, 6.1-idle 0.002.

RULES = """
rules:
  - name: huge
    zones: [DMA32]
    orders: [9]
    unusable_index: {trigger: 0.9, clear: 0.5}
    sustain: 2
    min_zone_size: 64M
guards:
  cooldown: 60
reclaim:
  min: 1M
  max_per_event: 512M
  max_per_hour: 1G
psi:
  wakeup: false
log:
  target: stderr
poll:
  max_interval: 10
"""


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path / "kernel")


@pytest.fixture
def journald(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "journal"))
    sock.settimeout(5)
    yield sock
    sock.close()


def entries(sock: socket.socket) -> List[Dict[str, str]]:
    found = []
    sock.settimeout(0)
    try:
        while True:
            found.append(decode(sock.recv(65536)))
    except BlockingIOError:
        pass
    sock.settimeout(5)
    return found


def daemon(
    tree: Tree, kernel: Optional[Tunables] = None, text: str = RULES, journal: Optional[str] = None, **kwargs: object
) -> Tuple[Daemon, io.StringIO, Clock]:
    """A daemon on the fake tree; events to `stream`, and to the journald socket at `journal` when given."""
    stream = io.StringIO()
    clock = Clock()
    d = Daemon(
        tree.procfs,
        config_from(text),
        Journal("journal", socket_path=journal, stream=stream) if journal else Journal("stderr", stream=stream),
        tunables=kernel,
        clock=clock,
        page_size=4096,
        uevents=False,
        **kwargs,  # type: ignore[arg-type]
    )
    return d, stream, clock


def unusable_at_9(state: str) -> Tuple[int, int, int]:
    """(free pages, pages in order-9-or-larger blocks, unusable index) of DMA32 in a captured state."""
    line = (STATES / state / "proc" / "buddyinfo").read_text().splitlines()[1].split()
    free = [int(n) for n in line[4:]]
    total = sum(n << o for o, n in enumerate(free))
    suitable = sum(n << o for o, n in enumerate(free) if o >= 9)
    return total, suitable, (total - suitable) * 1000 // total


# -- the main sequence ---------------------------------------------------------------------


def test_compaction_then_reclaim_then_cleared(tree: Tree, journald: socket.socket, tmp_path: Path) -> None:
    kernel = ScriptedKernel(
        tree.proc, {"compact": ["6.1-frag3"], "memory.reclaim": ["6.1-frag1"]}, {"memory.reclaim": 23456}
    )
    d, _, clock = daemon(tree, kernel, journal=str(tmp_path / "journal"))
    d.start()
    try:
        assert d.tick() == 1.0  # hog: over the trigger, 1 of 2 polls
        assert kernel.writes == []
        clock.now += 1
        d.tick()  # 2 of 2: triggered; compaction, measured again; reclaim; measured again
        clock.now += 1
        d.tick()  # frag1 is below the clear level
    finally:
        d.close()
    assert d.events == ["started", "triggered", "compacted", "reclaimed", "cleared"]

    # Reclaim sized from the state after compaction (frag3), for the clear level 0.5:
    # R = ceil((F - S) * 1000 / 500) - F pages.
    free, suitable, index = unusable_at_9("6.1-frag3")
    assert index == 671  # as debugfs printed it when the state was captured
    wanted = -(-(free - suitable) * 1000 // 500) - free
    # The reclaim follows a compaction: vm.vfs_cache_pressure raised for it, then put back. It is asked
    # for in parts of an eighth (in whole pages); the fake kernel takes 23456 pages for the first, more
    # than the whole reclaim's size, so there is no second.
    part = wanted * 4096 // 8 // 4096 * 4096
    assert kernel.writes == [
        ("compact", "1"),
        ("vfs_cache_pressure", "10000\n"),
        ("memory.reclaim", str(part)),
        ("vfs_cache_pressure", "100\n"),
    ]
    assert tree.control("sys/devices/system/node/node0/compact") == "1"
    assert tree.control("sys/fs/cgroup/memory.reclaim") == str(part)

    logged = {e["SHRINKD_EVENT"]: e for e in entries(journald)}
    compacted, reclaimed = logged["compacted"], logged["reclaimed"]
    assert compacted["MESSAGE_ID"] == MESSAGE_IDS["compacted"]
    for event in (compacted, reclaimed):
        assert event["SHRINKD_TRIGGER"] == "huge:unusable_index"
        assert (event["SHRINKD_NODE"], event["SHRINKD_ZONE"], event["SHRINKD_ORDER"]) == ("0", "DMA32", "9")
        assert (event["SHRINKD_THRESHOLD"], event["SHRINKD_CLEAR"]) == ("0.900", "0.500")
        assert float(event["SHRINKD_DURATION_MS"]) >= 0
    assert (compacted["SHRINKD_BEFORE"], compacted["SHRINKD_AFTER"]) == ("1.000", "0.671")
    assert compacted["SHRINKD_BACKEND"] == "node0/compact"
    assert (reclaimed["SHRINKD_BEFORE"], reclaimed["SHRINKD_AFTER"]) == ("0.671", "0.129")
    assert reclaimed["SHRINKD_BACKEND"] == "memory_reclaim"
    assert reclaimed["SHRINKD_REQUESTED_BYTES"] == str(wanted * 4096)
    assert (reclaimed["SHRINKD_FREE_PAGES_BEFORE"], reclaimed["SHRINKD_FREE_PAGES_AFTER"]) == (
        str(zoneinfo_free("6.1-frag3")),
        str(zoneinfo_free("6.1-frag1")),
    )
    assert (reclaimed["SHRINKD_PAGES_RECLAIMED"], reclaimed["SHRINKD_PAGES_RECLAIMED_SOURCE"]) == ("23456", "vmstat")
    assert reclaimed["MESSAGE"].startswith(f"reclaimed 23456 pages (91.6 MiB) of {wanted * 4096 / 1048576:.1f} MiB")
    assert " asked for huge:unusable_index (node 0 zone DMA32 order 9): 0.671 -> 0.129 in " in reclaimed["MESSAGE"]
    assert reclaimed["MESSAGE"].endswith(" via memory_reclaim at vfs_cache_pressure 10000")
    assert reclaimed["SHRINKD_VFS_CACHE_PRESSURE"] == "10000" and "SHRINKD_TRIED" not in reclaimed
    assert logged["cleared"]["SHRINKD_VALUE"] == "0.129"


def test_a_vfs_cache_pressure_left_raised_is_put_back_at_start(tree: Tree, tmp_path: Path) -> None:
    # The last run was killed during a reclaim: the kernel still has its raised value, and the
    # value before is in the runtime directory, beside the state file.
    (tree.proc / "sys" / "vm" / "vfs_cache_pressure").write_text("10000\n")
    (tmp_path / "vfs_cache_pressure.saved").write_text("120\n")
    d, stream, _ = daemon(tree, state_path=str(tmp_path / "status.json"))
    d.start()
    d.close()
    assert tree.control("proc/sys/vm/vfs_cache_pressure") == "120\n"
    assert not (tmp_path / "vfs_cache_pressure.saved").exists()
    assert "vm.vfs_cache_pressure put back to 120: the last run ended during a reclaim" in stream.getvalue()


def test_cooldown_keeps_a_stubborn_zone_from_being_hammered(tree: Tree) -> None:
    # Nothing helps: the state stays hog. One event, then quiet until the cooldown is over; and since the
    # ladder left the index at 1.000, the poll after it doubles the cooldown (60 -> 120 s), and the next
    # ladder's doubles it again (240 s).
    d, stream, clock = daemon(tree, ScriptedKernel(tree.proc, {}))
    d.start()
    try:
        for _ in range(5):
            d.tick()  # at 1000, 1010 (triggered; the ladder), 1020 (judged), 1030, 1040
            clock.now += 10
        # One event: compaction, reclaim, compaction again (reclaim left small blocks).
        assert d.events[1:] == ["triggered", "compacted", "reclaimed", "compacted", "backed_off"]
        clock.now = 1010 + 60  # the cooldown it had: now 120 s
        d.tick()
        assert d.events[6:] == []
        clock.now = 1010 + 120
        d.tick()
        clock.now += 1
        d.tick()
    finally:
        d.close()
    assert d.events[6:] == ["compacted", "reclaimed", "compacted", "backed_off"]
    # Each stderr line is "TIME PRIORITY shrinkd: MESSAGE": the messages.
    lines = [line.split(" ", 2)[2] for line in stream.getvalue().splitlines() if "bought nothing" in line]
    assert lines == [
        "shrinkd: huge:unusable_index: node 0 zone DMA32 order 9: the last actions bought nothing: 1.000 before,"
        " 1.000 at the next poll (0% of the way to the clear level); next action after 120 s",
        "shrinkd: huge:unusable_index: node 0 zone DMA32 order 9: the last actions bought nothing: 1.000 before,"
        " 1.000 at the next poll (0% of the way to the clear level); next action after 240 s",
    ]


def test_dry_run_decides_and_logs_but_writes_nothing(tree: Tree, journald: socket.socket, tmp_path: Path) -> None:
    kernel = ScriptedKernel(tree.proc, {"compact": ["6.1-idle"]})
    d, _, clock = daemon(tree, kernel, journal=str(tmp_path / "journal"), dry_run=True)
    d.start()
    try:
        d.tick()
        clock.now += 1
        d.tick()
        state = d.state(d.measure())
    finally:
        d.close()
    assert kernel.writes == []
    assert tree.control("sys/devices/system/node/node0/compact") == ""
    # A dry run's steps are events of their own, never compacted or reclaimed.
    assert d.events == ["started", "triggered", "would_compact", "would_reclaim", "would_compact"]
    logged = entries(journald)
    assert logged[0]["MESSAGE"].endswith("; dry run")
    told = {e["SHRINKD_EVENT"]: e for e in logged}
    assert told["would_compact"]["MESSAGE_ID"] == MESSAGE_IDS["would_compact"] != MESSAGE_IDS["compacted"]
    assert told["would_reclaim"]["MESSAGE_ID"] == MESSAGE_IDS["would_reclaim"] != MESSAGE_IDS["reclaimed"]
    assert told["would_compact"]["MESSAGE"] == (
        "would compact node 0 for huge:unusable_index (node 0 zone DMA32 order 9 at 1.000)"
    )
    assert told["would_reclaim"]["MESSAGE"].startswith("would reclaim ")
    # `shrinkd status` and systemctl's status line say "would have".
    assert state["last_action"].startswith("would have compacted node 0 at ")
    assert "last action: would have compacted node 0 at " in d.status_line()


def test_a_failed_action_is_an_event_and_the_loop_goes_on(tree: Tree) -> None:
    # No compaction here, and memory.reclaim refuses every write (a directory: EISDIR).
    (tree.sys / "devices" / "system" / "node" / "node0" / "compact").unlink()
    (tree.proc / "sys" / "vm" / "compact_memory").unlink()
    (tree.sys / "fs" / "cgroup" / "memory.reclaim").unlink()
    (tree.sys / "fs" / "cgroup" / "memory.reclaim").mkdir()
    d, stream, clock = daemon(tree, ScriptedKernel(tree.proc, {}))
    d.start()
    try:
        d.tick()
        clock.now += 1
        d.tick()
        clock.now += 60  # the cooldown also follows a failed event
        d.tick()
    finally:
        d.close()
    assert d.events == ["started", "triggered", "action_failed", "action_failed"]
    line = next(line for line in told(stream.getvalue()) if "reclaim failed" in line)
    assert line == (
        "shrinkd: huge:unusable_index: node 0 zone DMA32 order 9: reclaim failed: memory_reclaim: "
        f"{tree.sys / 'fs' / 'cgroup' / 'memory.reclaim'}: cannot open for writing: Is a directory"
    )


def test_a_malformed_poll_is_logged_and_the_next_one_works(tree: Tree) -> None:
    notify_socket = tree.root / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_socket))
    listener.settimeout(0)
    d, stream, clock = daemon(
        tree, ScriptedKernel(tree.proc, {}), notifier=Notifier({"NOTIFY_SOCKET": str(notify_socket)})
    )
    d.start()
    try:
        (tree.proc / "buddyinfo").write_text("Node 0, zone DMA32 1 2 3\nNode 0, zone Normal 1 2\n")
        assert d.tick() == 10.0  # max_interval after a failure
        with pytest.raises(BlockingIOError):
            listener.recv(100)  # not READY before a good poll
        install(tree.proc, "6.1-idle")
        clock.now += 10
        d.tick()
        ready = listener.recv(4096).decode()
    finally:
        d.close()
        listener.close()
    assert d.events == ["started", "poll_failed"]
    assert (
        f"shrinkd: poll failed: {tree.proc / 'buddyinfo'}:2: zone Normal: 2 orders, earlier lines have 3"
        in stream.getvalue()
    )
    assert ready.startswith(
        "READY=1\nSTATUS=worst: node 0 zone DMA32 order 9 unusable_index 0.002 (huge, 0% of trigger)"
    )


def test_psi_trigger_falls_back_to_polling_and_says_so_once(tree: Tree) -> None:
    d, stream, _ = daemon(tree, text=RULES.replace("wakeup: false", "wakeup: true"))
    d.start()
    d.tick()
    d.close()
    messages = [line for line in told(stream.getvalue()) if "PSI" in line or "polling" in line]
    assert messages == [
        f"shrinkd: no PSI trigger ({tree.proc / 'pressure' / 'memory'}: not a kernel pressure file): plain polling",
        "shrinkd: started: backends compact (nodes 0), memory_reclaim ("
        f"{tree.sys / 'fs' / 'cgroup' / 'memory.reclaim'}); plain polling; config <built-in defaults>;"
        " reclaim backends not used: node_reclaim: no nodeN/reclaim files (not in this kernel)"
        " | shrinkmem: no shrinkmem device (the module is not loaded) | drop_caches: disabled in the configuration",
    ]


# -- devices -----------------------------------------------------------------------------


def test_the_module_appearing_and_vanishing(tree: Tree) -> None:
    device = tree.root / "shrinkmem"
    d, stream, clock = daemon(
        tree, ScriptedKernel(tree.proc, {}), text=RULES + f"backends:\n  shrinkmem: {{device: {device}}}\n"
    )
    d.start()
    try:
        install(tree.proc, "6.1-idle")
        d.tick()
        assert d.backends.names() == ["compact", "memory_reclaim"]
        device.write_text("")  # the module loaded: the node appears
        clock.now += 10
        d.tick()
        assert d.backends.names() == ["compact", "memory_reclaim", "shrinkmem"]
        device.unlink()  # removed
        clock.now += 10
        d.tick()
    finally:
        d.close()
    assert d.events == ["started", "backends_changed", "backends_changed"]
    changes = [line for line in told(stream.getvalue()) if "backends changed" in line]
    assert changes[0].startswith(
        "shrinkd: backends changed (periodic check): added shrinkmem; now compact (nodes 0), memory_reclaim ("
    )
    assert changes[1].startswith(
        "shrinkd: backends changed (periodic check): removed shrinkmem; now compact (nodes 0), memory_reclaim"
    )


NO_RECLAIM = (
    "node_reclaim: no nodeN/reclaim files (not in this kernel)"
    " | memory_reclaim: no memory.reclaim (cgroup v2 not mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified,"
    " or a kernel before 5.19)"
    " | shrinkmem: no shrinkmem device (the module is not loaded)"
    " | drop_caches: disabled in the configuration"
)


def test_without_a_reclaim_backend_ladders_compact_and_say_so_once(tree: Tree, journald: socket.socket, tmp_path: Path) -> None:
    # A 5.10 board: no memory.reclaim, no per-node reclaim, the module not loaded. Nothing helps (the
    # state stays hog), so ladder after ladder wants its reclaim: each compacts, one event says why
    # reclaim is not possible, and no ladder says it again.
    (tree.sys / "fs" / "cgroup" / "memory.reclaim").unlink()
    device = tree.root / "shrinkmem"
    text = RULES.replace("cooldown: 60", "cooldown: 60\n  cooldown_max: 60") + f"backends:\n  shrinkmem: {{device: {device}}}\n"
    d, _, clock = daemon(tree, ScriptedKernel(tree.proc, {}), text=text, journal=str(tmp_path / "journal"))
    d.start()
    logged = entries(journald)
    try:
        for _ in range(40):  # a poll every 30 s for 20 minutes: a ladder at every cooldown's end
            d.tick()
            logged += entries(journald)  # read as they come: a datagram socket holds only a few
            clock.now += 30
        ladders = d.events.count("compacted")
        assert ladders >= 15
        assert d.events.count("reclaim_unavailable") == 1
        assert "skipped" not in d.events and "reclaimed" not in d.events
        assert d.events[:4] == ["started", "triggered", "compacted", "reclaim_unavailable"]
        started = next(entry for entry in logged if entry["SHRINKD_EVENT"] == "started")
        assert started["MESSAGE"].endswith(f"; config <built-in defaults>; reclaim backends not used: {NO_RECLAIM}")
        assert started["SHRINKD_RECLAIM_UNUSED"] == NO_RECLAIM
        event = next(entry for entry in logged if entry["SHRINKD_EVENT"] == "reclaim_unavailable")
        assert event["MESSAGE"] == (
            f"reclaim not possible: no reclaim backend here ({NO_RECLAIM}); wanted by huge:unusable_index"
            " (node 0 zone DMA32 order 9); ladders stop after compaction (said once until the backends change)"
        )
        assert event["MESSAGE_ID"] == MESSAGE_IDS["reclaim_unavailable"]
        assert event["PRIORITY"] == "4"
        assert (event["SHRINKD_MISSING"], event["SHRINKD_BACKENDS"], event["SHRINKD_RULE"]) == (NO_RECLAIM, "compact", "huge")
        # The state file's reclaim backends, for `shrinkd status`: none, and why each is missing.
        assert d.state(d.measure())["reclaim_backends"][2] == {
            "name": "shrinkmem", "why": "no shrinkmem device (the module is not loaded)"
        }
        # The module loaded, then removed: the backends changed, and the next ladder that wants reclaim
        # says again that it is not possible.
        device.write_text("")
        d.refresh_backends("periodic check")
        device.unlink()
        d.refresh_backends("periodic check")
        for _ in range(10):
            d.tick()
            logged += entries(journald)
            clock.now += 30
    finally:
        d.close()
    assert d.events.count("backends_changed") == 2
    assert d.events.count("reclaim_unavailable") == 2
    again = [entry["MESSAGE"] for entry in logged if entry.get("SHRINKD_EVENT") == "reclaim_unavailable"][1]
    assert again.startswith(f"reclaim not possible: no reclaim backend here ({NO_RECLAIM})")


def test_a_reload_that_changes_the_backends_says_again_that_reclaim_is_not_possible(tree: Tree, tmp_path: Path) -> None:
    (tree.sys / "fs" / "cgroup" / "memory.reclaim").unlink()
    path = tmp_path / "shrinkd.yaml"
    text = RULES.replace("cooldown: 60", "cooldown: 60\n  cooldown_max: 60")
    d, _, clock = daemon(tree, ScriptedKernel(tree.proc, {}), text=text, reload=write_config(path, text))
    d.start()
    try:
        for _ in range(6):
            d.tick()
            clock.now += 30
        path.write_text(text.replace("psi:", "reclaim:\n  prefer: [shrinkmem, memory_reclaim]\npsi:"))
        d.reload()  # the same backends: nothing to say again
        for _ in range(6):
            d.tick()
            clock.now += 30
        assert d.events.count("reclaim_unavailable") == 1
        device = tree.root / "shrinkmem"
        device.write_text("")  # the module's node, where a reload now says it is: shrinkmem reclaims
        path.write_text(text + f"backends:\n  shrinkmem: {{device: {device}}}\n")
        d.reload()
        assert d.backends.names() == ["compact", "shrinkmem"]
        path.write_text(text)
        d.reload()  # back to /dev/shrinkmem, which this tree lacks: no reclaim again, and said again
        for _ in range(6):
            d.tick()
            clock.now += 30
    finally:
        d.close()
    assert d.events.count("backends_changed") == 2
    assert d.events.count("reclaim_unavailable") == 2
    last_change = len(d.events) - 1 - d.events[::-1].index("backends_changed")
    assert "reclaim_unavailable" in d.events[last_change:]
    assert "skipped" not in d.events


def test_kernel_uevents_are_read_for_the_device_and_memory_blocks() -> None:
    add = b"add@/devices/virtual/misc/shrinkmem\0ACTION=add\0DEVPATH=/devices/virtual/misc/shrinkmem\0SUBSYSTEM=misc\0DEVNAME=shrinkmem\0MAJOR=10\0MINOR=122\0SEQNUM=2301\0"
    offline = b"offline@/devices/system/memory/memory32\0ACTION=offline\0DEVPATH=/devices/system/memory/memory32\0SUBSYSTEM=memory\0SEQNUM=2302\0"
    other = b"add@/devices/virtual/misc/fuse\0ACTION=add\0SUBSYSTEM=misc\0DEVNAME=fuse\0"
    udev = b"libudev\0\xfe\xed\xca\xfe..."
    fields = parse_uevent(add)
    assert fields is not None and fields["SUBSYSTEM"] == "misc"
    assert classify(fields, "shrinkmem") == ("device", "shrinkmem", "add")
    memory = parse_uevent(offline)
    assert memory is not None and classify(memory, "shrinkmem") == ("memory", "memory32", "offline")
    fuse = parse_uevent(other)
    assert fuse is not None and classify(fuse, "shrinkmem") is None
    assert parse_uevent(udev) is None


# -- signals, reload, sd_notify -------------------------------------------------------------


def write_config(path: Path, text: str) -> Callable[[], config.Config]:
    path.write_text(text)
    return lambda: configload.load_isolated([path])


def test_reload_keeps_the_old_configuration_when_the_new_one_is_invalid(tree: Tree, tmp_path: Path) -> None:
    path = tmp_path / "shrinkd.yaml"
    d, stream, _ = daemon(tree, reload=write_config(path, RULES))
    d.start()
    try:
        path.write_text(RULES.replace("cooldown: 60", "cooldown: -5"))
        d.reload()
        assert d.config.cooldown == 60.0
        path.write_text(RULES.replace("cooldown: 60", "cooldown: 5"))
        d.reload()
        assert d.config.cooldown == 5.0 and d.policy.config.cooldown == 5.0
    finally:
        d.close()
    assert d.events == ["started", "reload_failed", "reloaded"]
    assert (
        f"shrinkd: reload failed, keeping the running configuration: {path}:10: guards.cooldown: "
        "must be between 0 and 86400, got -5" in stream.getvalue()
    )


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[Tuple[socket.socket, str]]:
    address = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(10)
    yield sock, address
    sock.close()


def notifications(sock: socket.socket) -> List[str]:
    found = []
    sock.settimeout(0)
    try:
        while True:
            found.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    return found


def send_later(seconds: float, *signals: signal.Signals) -> threading.Thread:
    def sender() -> None:
        for number in signals:
            threading.Event().wait(seconds)
            os.kill(os.getpid(), number)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    return thread


def test_sighup_reloads_and_sigterm_stops_a_running_loop(
    tree: Tree, tmp_path: Path, notify: Tuple[socket.socket, str]
) -> None:
    sock, address = notify
    install(tree.proc, "6.1-idle")
    path = tmp_path / "shrinkd.yaml"
    slow = RULES.replace("poll:\n  max_interval: 10", "poll:\n  min_interval: 30\n  max_interval: 30")
    stream = io.StringIO()
    d = Daemon(
        tree.procfs,
        config_from(slow),
        Journal("stderr", stream=stream),
        reload=write_config(path, slow),
        notifier=Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"}),
        uevents=False,
    )
    messages: List[str] = []

    def collect() -> None:  # as systemd does: read every message as it comes
        while not messages or not messages[-1].startswith("STOPPING"):
            messages.append(sock.recv(4096).decode())

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    sender = send_later(0.5, signal.SIGHUP, signal.SIGTERM)
    assert d.run() == 0  # returns long before the 30 s poll interval: the signals wake it
    sender.join()
    collector.join(10)
    assert d.events == ["started", "reloaded", "stopped"]
    kinds = [m.split("=", 1)[0] for m in messages]
    assert kinds[0] == "READY" and kinds[-1] == "STOPPING"
    assert "RELOADING" in kinds and kinds[kinds.index("RELOADING") + 1] == "READY"
    assert kinds.count("WATCHDOG") >= 2  # every 0.1 s (half of WATCHDOG_USEC) while waiting
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_sigterm_during_an_action_stops_after_it(tree: Tree, notify: Tuple[socket.socket, str]) -> None:
    sock, address = notify
    kernel = ScriptedKernel(tree.proc, {"compact": ["6.1-frag3"]})
    kernel.hook = lambda name: os.kill(os.getpid(), signal.SIGTERM) if name == "compact" else None
    d, stream, _ = daemon(
        tree, kernel, text=RULES.replace("sustain: 2", "sustain: 1"), notifier=Notifier({"NOTIFY_SOCKET": address})
    )
    assert d.run() == 0
    # The compaction ran to its end and was reported; the reclaim the ladder would have done next did not start.
    assert kernel.writes == [("compact", "1")]
    assert d.events == ["started", "triggered", "compacted", "stopped"]
    assert "shrinkd: huge:unusable_index: stopping: the rest of the ladder is abandoned" in stream.getvalue()
    assert [m.split("=", 1)[0] for m in notifications(sock)] == ["READY", "STOPPING"]


def test_status_line_names_the_worst_zone_and_the_last_action(tree: Tree) -> None:
    kernel = ScriptedKernel(tree.proc, {"compact": ["6.1-idle"]})
    d, _, _ = daemon(tree, kernel, text=RULES.replace("sustain: 2", "sustain: 1"))
    d.start()
    try:
        d.tick()
    finally:
        d.close()
    status = d.status_line()
    assert status.startswith(
        "worst: node 0 zone DMA32 order 9 unusable_index 1.000 (huge, 111% of trigger); last action: compaction of node 0 at "
    )


def test_a_reserve_compacts_reclaims_its_shortfall_and_clears(tree: Tree) -> None:
    # DMA32's pages in blocks of order 9 or larger: 6.1-hog 0; 6.1-frag3 512 + 22 x 1024 = 23040 (90.0 MiB);
    # 6.1-frag1 2 x 512 + 150 x 1024 = 154624 (604.0 MiB). The DMA zone (under 64M) does not count.
    # A 128M reserve is 32768 pages: after compaction (frag3) the shortfall is 9728 pages (38.0 MiB).
    text = RULES.replace(
        "unusable_index: {trigger: 0.9, clear: 0.5}\n    sustain: 2", "reserve: {size: 128M}\n    sustain: 1"
    ).replace("name: huge", "name: camera").replace("zones: [DMA32]", 'zones: ["*"]')
    # The fake kernel takes 12000 pages (46.9 MiB) for the first part.
    kernel = ScriptedKernel(
        tree.proc, {"compact": ["6.1-frag3"], "memory.reclaim": ["6.1-frag1"]}, {"memory.reclaim": 12000}
    )
    d, stream, clock = daemon(tree, kernel, text=text)
    d.start()
    try:
        d.tick()
        clock.now += 1
        d.tick()
        status = d.status_line()
    finally:
        d.close()
    # The reclaim reached the reserve: no second compaction.
    assert d.events == ["started", "triggered", "compacted", "reclaimed", "cleared"]
    # The first part, an eighth of 38 MiB, took more than all 9728 pages: no second part; and what it took
    # counts against the hourly cap, not the 38 MiB asked for.
    assert [w for w in kernel.writes if w[0] == "memory.reclaim"] == [("memory.reclaim", str(9728 * 4096 // 8))]
    assert d.policy.reclaimed_last_hour(clock.now) == 12000 * 4096
    lines = [line.split(" ", 2)[2] for line in stream.getvalue().splitlines()]  # without time and priority
    assert (
        "shrinkd: camera:reserve triggered: node 0 order 9 at 0.0 MiB free in blocks of order 9 or larger "
        "(reserve 128.0 MiB)"
    ) in lines
    reclaimed = next(line for line in lines if line.startswith("shrinkd: reclaimed "))
    assert reclaimed.startswith(
        "shrinkd: reclaimed 12000 pages (46.9 MiB) of 38.0 MiB asked for camera:reserve (node 0 order 9): 90.0 -> 604.0 in "
    )
    # 32768 / 154624 pages: 21% of the trigger level.
    assert status.startswith("worst: node 0 order 9 reserve 604.0 (camera, 21% of trigger); last action: reclaim of 38.0 MiB")


def test_page_size_of_the_sized_reclaim_matches_metrics() -> None:
    # The test above sizes reclaim by hand; this keeps its arithmetic honest against metrics.
    free, suitable, index = unusable_at_9("6.1-hog")
    line = (STATES / "6.1-hog" / "proc" / "buddyinfo").read_text().splitlines()[1].split()
    assert metrics.unusable_index([int(n) for n in line[4:]], 9) == index == 1000 and suitable == 0 and free > 0


# -- what a poll reads -------------------------------------------------------------------


def test_vmstat_counters_picked_for_a_poll() -> None:
    from shrinkd.errors import InputError

    text = "nr_free_pages 10\nnr_allocstall 99\nallocstall_dma32 3\nallocstall_normal 4\ncompact_stall 7\n"
    assert parse.parse_vmstat(
        text, "vmstat", ("allocstall", "allocstall_dma32", "allocstall_normal", "compact_stall", "pgsteal_anon")
    ) == {
        "allocstall_dma32": 3,
        "allocstall_normal": 4,
        "compact_stall": 7,
    }
    with pytest.raises(InputError) as caught:
        parse.parse_vmstat("a 1\ncompact_stall many\n", "/proc/vmstat", ("compact_stall",))
    assert str(caught.value) == "/proc/vmstat:2: compact_stall: expected an integer, got 'many'"


@pytest.mark.parametrize(
    ("extra", "reads_vmstat"),
    [
        # Neither a rate trigger nor allocation failures watched in /proc/vmstat.
        ("triggers:\n  allocation_failures: null\nfailures:\n  counters: []\n", False),
        ("triggers:\n  vmstat: [{counter: compact_stall, rate: 1, clear: 0.1}]\n", True),
    ],
    ids=["idle", "rate-trigger"],
)
def test_a_poll_reads_vmstat_only_when_a_decision_needs_it(tree: Tree, extra: str, reads_vmstat: bool) -> None:
    install(tree.proc, "6.1-idle")
    d, _, clock = daemon(tree, text=RULES + extra)
    d.start()
    try:
        d.tick()  # the first poll reads everything (a baseline)
        (tree.proc / "vmstat").write_text("compact_stall broken\n")
        clock.now += 10
        d.tick()
        clock.now += ZONEINFO_REFRESH  # zoneinfo and the counters are read again then
        d.tick()
    finally:
        d.close()
    assert d.events.count("poll_failed") == (2 if reads_vmstat else 1)


def test_a_bug_in_one_poll_is_logged_and_the_loop_goes_on(tree: Tree) -> None:
    kernel = ScriptedKernel(tree.proc, {})

    def broken(name: str) -> None:
        raise RuntimeError("unexpected")

    kernel.hook = broken
    d, stream, clock = daemon(tree, kernel, text=RULES.replace("sustain: 2", "sustain: 1"))
    d.start()
    try:
        assert d.survive(d.tick) == 10.0
        kernel.hook = None
        install(tree.proc, "6.1-idle")
        clock.now += 10
        assert d.survive(d.tick) == 10.0
    finally:
        d.close()
    assert d.events == ["started", "triggered", "poll_failed", "cleared"]
    assert "shrinkd: poll failed: internal error: RuntimeError: unexpected" in stream.getvalue()


def test_ready_goes_out_before_the_first_ladder(tree: Tree, notify: Tuple[socket.socket, str]) -> None:
    """A board that starts fragmented acts in its first poll: systemd must hear READY=1 first (a
    long first ladder would otherwise outlast the unit's start timeout)."""
    sock, address = notify
    kernel = ScriptedKernel(tree.proc, {"compact": ["6.1-frag3"]})
    heard: List[List[str]] = []
    kernel.hook = lambda name: heard.append(notifications(sock))
    d, _, _ = daemon(
        tree, kernel, text=RULES.replace("sustain: 2", "sustain: 1"), notifier=Notifier({"NOTIFY_SOCKET": address})
    )
    d.start()
    try:
        d.tick()
    finally:
        d.close()
    assert [m.split("=", 1)[0] for m in heard[0]] == ["READY"]  # heard when the compaction was written
    assert [m.split("=", 1)[0] for m in notifications(sock)][-1] == "STATUS"  # then the last action
