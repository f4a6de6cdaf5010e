"""shrinkd on a board whose PID 1 is BusyBox init: no systemd, no journald (Buildroot's default).

The third boot of each board session outside boards.LIFECYCLE (tests/boards.py BUSYBOX): the
same disk, with the packages the first boot installed, booted with
init=/usr/local/lib/shrinkd-vmtest/init (tests/rootfs.py). BusyBox's rcS starts
/etc/init.d/S01syslogd (BusyBox's syslogd, as Buildroot's) and S02shrinkd, which is
packaging/init.d/shrinkd as Buildroot and Yocto install it. A fragmenting workload brings a
compaction; its event must be in syslog with its fields, `shrinkd status` must find the
daemon the init script started, and the script's status and stop must say what happened.
"""

from __future__ import annotations

import json
import re
from typing import Dict, List

import pytest

from shrinkd.journal import MESSAGE_IDS
from tests import boards
from tests.test_boards_vm import board_session

pytestmark = pytest.mark.vm

TARGETS = [name for name in boards.targets() if name not in boards.LIFECYCLE]
SYSLOG_LINE = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (?P<facility>\w+)\.(?P<level>\w+) shrinkd\[(?P<pid>\d+)\]: (?P<text>.*)$")


@pytest.fixture(scope="module", params=TARGETS)
def board(request: pytest.FixtureRequest) -> boards.Session:
    return board_session(request.param, ran="bb-pid1.txt", what="the BusyBox init boot's script")


def fields(text: str) -> Dict[str, str]:
    """The KEY="value" fields shrinkd puts after the message in a syslog line."""
    return {key: value.replace('\\"', '"').replace("\\\\", "\\")
            for key, value in re.findall(r'\b([A-Z][A-Z0-9_]*)="((?:[^"\\]|\\.)*)"', text)}


def syslog(board: boards.Session) -> List[Dict[str, str]]:
    """shrinkd's lines in /var/log/messages: facility, level, pid, message and fields."""
    entries = []
    for line in board.text("bb-messages.txt").splitlines():
        match = SYSLOG_LINE.match(line)
        if match:
            entry = dict(match.groupdict())
            entry.update(fields(match.group("text")))
            entries.append(entry)
    return entries


def pid(board: boards.Session) -> str:
    return board.text("bb-pidfile.txt").strip()


def test_pid_1_is_busybox_init(board: boards.Session) -> None:
    # BusyBox init names itself "init" in its command line; the executable is busybox.
    cmdline, exe = board.text("bb-pid1.txt").splitlines()[:2]
    assert cmdline.split() == ["init"] and exe.endswith("/busybox"), (cmdline, exe)


def test_the_init_script_started_shrinkd_at_boot(board: boards.Session) -> None:
    rcs = board.text("bb-rcS.log")
    assert "Starting syslogd: OK" in rcs and "Starting shrinkd: OK" in rcs, rcs
    assert re.fullmatch(r"\d+", pid(board)), board.text("bb-pidfile.txt")
    assert board.text("bb-status-at-boot.txt").splitlines() == [f"shrinkd is running (pid {pid(board)})", "rc=0"]


def test_shrinkd_status_finds_the_daemon_the_init_script_started(board: boards.Session) -> None:
    status = json.loads(board.text("bb-status.json"))
    assert str(status["daemon"]["pid"]) == pid(board), (status.get("daemon"), board.text("bb-status.err"))
    # The module was loaded by the init script (modprobe): the running daemon has it.
    reclaim = status["reclaim"]
    assert reclaim["from"] == f"the running daemon, pid {pid(board)}", reclaim
    assert {"name": "shrinkmem", "why": None} in reclaim["backends"], reclaim


def test_events_reach_syslog_with_their_fields(board: boards.Session) -> None:
    assert board.text("bb-event.rc").strip() == "0", board.text("bb-messages.txt")[-3000:]
    entries = [e for e in syslog(board) if e["pid"] == pid(board)]
    kinds = [e.get("SHRINKD_EVENT") for e in entries]
    assert "started" in kinds and "compacted" in kinds, board.text("bb-messages.txt")[-3000:]
    for entry in entries:
        assert entry["facility"] == "daemon", entry
        if "SHRINKD_EVENT" in entry:
            assert entry["MESSAGE_ID"] == MESSAGE_IDS[entry["SHRINKD_EVENT"]], entry
    compacted = next(e for e in entries if e.get("SHRINKD_EVENT") == "compacted")
    assert compacted["SHRINKD_RULE"] == "board-huge", compacted
    assert compacted["SHRINKD_ORDER"] == board.text("huge-order.txt").strip(), compacted
    for name in ("SHRINKD_BACKEND", "SHRINKD_BEFORE", "SHRINKD_AFTER", "SHRINKD_ZONE", "SHRINKD_NODE"):
        assert name in compacted, compacted
    assert compacted["text"].startswith("compacted node "), compacted


def test_the_init_script_stops_shrinkd(board: boards.Session) -> None:
    assert board.text("bb-stop.txt").splitlines() == ["Stopping shrinkd: OK", "rc=0"], board.text("bb-stop.txt")
    assert board.text("bb-status-after-stop.txt").splitlines() == ["shrinkd is not running", "rc=3"]
    stopped = [e for e in syslog(board) if e["pid"] == pid(board) and e.get("SHRINKD_EVENT") == "stopped"]
    assert len(stopped) == 1, board.text("bb-messages.txt")[-2000:]
