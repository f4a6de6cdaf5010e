"""Events: journald's native protocol against a real datagram socket, and the stderr form."""

from __future__ import annotations

import io
import os
import re
import socket
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from shrinkd import journal
from shrinkd.journal import Journal

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} (err|warning|notice|info|debug) (?=shrinkd: )")


def told(text: str) -> List[str]:
    """The lines shrinkd wrote on stderr, each checked to start with its time and priority, without them."""
    lines = text.splitlines()
    assert all(STAMP.match(line) for line in lines), lines
    return [STAMP.sub("", line) for line in lines]


def decode(data: bytes) -> Dict[str, str]:
    """Parse one native-protocol datagram (both the KEY=value and the length-prefixed forms)."""
    fields: Dict[str, str] = {}
    while data:
        newline = data.index(b"\n")
        line = data[:newline]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            data = data[newline + 1 :]
        else:
            key = line
            size = int.from_bytes(data[newline + 1 : newline + 9], "little")
            value = data[newline + 9 : newline + 9 + size]
            assert data[newline + 9 + size : newline + 10 + size] == b"\n"
            data = data[newline + 10 + size :]
        fields[key.decode()] = value.decode()
    return fields


@pytest.fixture
def journald(tmp_path: Path) -> Iterator[Tuple[socket.socket, str]]:
    path = str(tmp_path / "socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_event_to_journald_with_message_id_and_fields(journald: Tuple[socket.socket, str]) -> None:
    sock, path = journald
    stream = io.StringIO()
    log = Journal("auto", stream=stream, socket_path=path)
    assert log.target == "journal"
    log.event(
        "reclaimed",
        "reclaimed 100 pages",
        journal.NOTICE,
        {"node": 0, "zone": "Normal", "before": "0.962", "partial": False, "tried": None},
    )
    fields = decode(sock.recv(65536))
    assert fields == {
        "MESSAGE": "reclaimed 100 pages",
        "PRIORITY": "5",
        "SYSLOG_IDENTIFIER": "shrinkd",
        "MESSAGE_ID": journal.MESSAGE_IDS["reclaimed"],
        "SHRINKD_EVENT": "reclaimed",
        "SHRINKD_NODE": "0",
        "SHRINKD_ZONE": "Normal",
        "SHRINKD_BEFORE": "0.962",
        "SHRINKD_PARTIAL": "0",
    }
    assert stream.getvalue() == ""  # not a terminal: nothing on stderr


def test_values_with_newlines_use_the_length_prefixed_form(journald: Tuple[socket.socket, str]) -> None:
    sock, path = journald
    Journal("journal", socket_path=path, stream=io.StringIO()).event(
        "poll_failed", "two\nlines", journal.ERR, {"error": "a\nb"}
    )
    fields = decode(sock.recv(65536))
    assert fields["MESSAGE"] == "two\nlines" and fields["SHRINKD_ERROR"] == "a\nb"


def test_encode_is_the_documented_wire_format() -> None:
    assert journal.encode([("A", "1"), ("B", "x\ny")]) == b"A=1\nB\n" + (3).to_bytes(8, "little") + b"x\ny\n"


def test_message_ids_are_distinct_128_bit_ids() -> None:
    ids = list(journal.MESSAGE_IDS.values())
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_without_journald_one_line_on_stderr(tmp_path: Path) -> None:
    stream = io.StringIO()
    log = Journal("auto", stream=stream, socket_path=str(tmp_path / "absent"), syslog_path=str(tmp_path / "no-log"))
    assert log.target == "stderr" and log.fallback_reason == f"no journald socket at {tmp_path / 'absent'}"
    log.event("compacted", "compacted node 0", journal.NOTICE, {"node": 0})
    log.debug("not shown")
    log.log("plain line", journal.WARNING)
    assert told(stream.getvalue()) == ["shrinkd: compacted node 0", "shrinkd: plain line"]
    assert stream.getvalue().split()[1:3] == ["notice", "shrinkd:"]  # the event's priority


def test_journald_going_away_falls_back_to_stderr(tmp_path: Path) -> None:
    path = tmp_path / "socket"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    stream = io.StringIO()
    log = Journal("auto", stream=stream, socket_path=str(path))
    sock.close()
    os.unlink(path)
    log.event("stopped", "stopped after 3 polls")
    lines = told(stream.getvalue())
    assert lines[0].startswith("shrinkd: journald unreachable (")
    assert lines[1] == "shrinkd: stopped after 3 polls"
    assert log.target == "stderr"


def test_stderr_owned_by_journald_keeps_priorities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Under systemd with StandardError=journal, JOURNAL_STREAM names stderr's device and inode.
    target = tmp_path / "stream"
    with open(target, "w") as stream:
        status = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")
        log = Journal("stderr", stream=stream)
        log.log("careful", journal.WARNING)
    assert target.read_text() == "<4>careful\n"


def test_debug_lines_only_with_debug() -> None:
    stream = io.StringIO()
    Journal("stderr", debug=True, stream=stream).debug("PSI trigger fired")
    assert told(stream.getvalue()) == ["shrinkd: PSI trigger fired"]


def test_docs_events_md_lists_every_event_with_its_message_id() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "events.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`"): line.split("|")[2].strip()
        for line in text.splitlines()
        if line.startswith("| `")
    }
    documented = {name: mid for name, mid in rows.items() if name in journal.MESSAGE_IDS or len(mid) == 32}
    assert documented == journal.MESSAGE_IDS


def test_without_journald_events_go_to_syslog_and_stderr(tmp_path: Path) -> None:
    # A board without systemd: syslogd (BusyBox, rsyslog) listens on /dev/log, a datagram socket.
    devlog = tmp_path / "log"
    syslogd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslogd.bind(str(devlog))
    syslogd.settimeout(5)
    stream = io.StringIO()
    log = Journal("auto", stream=stream, socket_path=str(tmp_path / "absent"), syslog_path=str(devlog))
    assert log.target == "syslog"
    log.event("reclaimed", 'reclaimed 1.0 MiB for "huge"', journal.NOTICE, {"node": 0, "zone": "DMA32", "dry_run": False})
    log.log("plain line", journal.WARNING)
    first, second = syslogd.recv(4096).decode(), syslogd.recv(4096).decode()
    log.close()
    syslogd.close()
    # RFC 3164: <PRI> (facility daemon = 3, notice = 5: 3 * 8 + 5), the time, shrinkd[PID]:, the message and fields.
    assert re.fullmatch(
        r"<29>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d shrinkd\[\d+\]: reclaimed 1\.0 MiB for \"huge\" "
        r'MESSAGE_ID="d871737f2a2d4c57942a00fbc61ddfa4" SHRINKD_EVENT="reclaimed" SHRINKD_NODE="0" '
        r'SHRINKD_ZONE="DMA32" SHRINKD_DRY_RUN="0"',
        first,
    ), first
    assert f"shrinkd[{os.getpid()}]: " in first
    assert re.fullmatch(r"<28>.* shrinkd\[\d+\]: plain line", second), second
    # ... and the same lines on stderr, with their time and priority.
    assert told(stream.getvalue()) == ['shrinkd: reclaimed 1.0 MiB for "huge"', "shrinkd: plain line"]


def test_syslog_going_away_leaves_stderr(tmp_path: Path) -> None:
    devlog = tmp_path / "log"
    syslogd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslogd.bind(str(devlog))
    stream = io.StringIO()
    log = Journal("auto", stream=stream, socket_path=str(tmp_path / "absent"), syslog_path=str(devlog))
    syslogd.close()
    os.unlink(devlog)
    log.log("still here")
    lines = told(stream.getvalue())
    assert lines[0].startswith(f"shrinkd: syslog unreachable at {devlog} (") and lines[1] == "shrinkd: still here"
    assert log.target == "stderr"
