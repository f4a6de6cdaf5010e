"""Events and log lines: to journald as structured fields, or one line each on stderr.

Every event has a MESSAGE_ID (docs/events.md lists them and their fields),
a one-line human MESSAGE, a PRIORITY, and fields named SHRINKD_*, so that
`journalctl -u shrinkd` reads well and `journalctl MESSAGE_ID=...` filters.

journald is reached with its native protocol (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/):
one datagram per entry to /run/systemd/journal/socket, `KEY=value` lines,
with a length-prefixed form for values that hold a newline. That is what
systemd-python's journal.send() does through libsystemd; speaking it here
keeps libsystemd (and systemd.journal's imports) out of a daemon that must
stay small. Without journald (a board whose init is BusyBox or sysvinit), an
event goes to syslog through /dev/log, one RFC 3164 datagram (facility daemon,
the MESSAGE then its MESSAGE_ID and SHRINKD_* fields as KEY="value"), and to
stderr; with log.target: stderr, to stderr only. A line on stderr carries the
time and the priority, unless stderr is itself the journal (then `<N>` first).
"""

from __future__ import annotations

import _socket  # the C module the socket module wraps: the same calls, without its imports (enum, selectors)
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, TextIO, Tuple

# One MESSAGE_ID per event type (128-bit, as journald wants them).
MESSAGE_IDS: Dict[str, str] = {
    "started": "75226b5fb7af4b6eb72a7663d33c38dc",
    "stopped": "275211532a7543f2983c097c180d9d1a",
    "reloaded": "30d59e194eac45fa8b352cdd02e2285e",
    "reload_failed": "50f3780874b9424e857caf6ac5bacd3f",
    "config_warning": "c2d5e0b8a3f94f1c9d7e6b5a4c3b2a19",
    "triggered": "0fc04d3d06ee4297ac06259150a47137",
    "cleared": "44c974ae47f64693a670f19f82aee5f0",
    "compacted": "1e06a57cc56742d8b7ca2d1f5d94baee",
    "reclaimed": "d871737f2a2d4c57942a00fbc61ddfa4",
    "would_compact": "bcff4d9fcb7a4b48b5e20c8ed467a458",
    "would_reclaim": "20def788163745139093e114113a1596",
    "skipped": "2807b733f06147d2aaf11bd9b1f28c15",
    "reclaim_unavailable": "999be2c170b34ea99aa1cf7d8fba6900",
    "action_failed": "f7cd043e004f4c1c90b7a07e9c637dc3",
    "thrash_backoff": "ffb2b54585dc4b4e8923dcb3d013d8da",
    "backed_off": "487bbb42955a4739912933915c08f864",
    "backends_changed": "be2c5c87d0ab491b8586d31c5f4bad7c",
    "memory_changed": "f270c2a4a8a148e7a12ae53858c92d9e",
    "poll_failed": "501bd6c70fb041b0b19a1f79356730c5",
    "allocation_failed": "5f5a89ce4a0c48438c12eb5335dba8a5",
}

# syslog priorities
ERR = 3
WARNING = 4
NOTICE = 5
INFO = 6
DEBUG = 7

JOURNAL_SOCKET = "/run/systemd/journal/socket"
SYSLOG_SOCKET = "/dev/log"
IDENTIFIER = "shrinkd"
FACILITY_DAEMON = 3
LEVELS = {ERR: "err", WARNING: "warning", NOTICE: "notice", INFO: "info", DEBUG: "debug"}


def encode(fields: List[Tuple[str, str]]) -> bytes:
    """One journal entry in the native protocol."""
    parts = []
    for name, value in fields:
        data = value.encode("utf-8", "replace")
        key = name.encode("ascii")
        if b"\n" in data:
            parts.append(key + b"\n" + len(data).to_bytes(8, "little") + data + b"\n")
        else:
            parts.append(key + b"=" + data + b"\n")
    return b"".join(parts)


def syslog_line(message: str, priority: int, message_id: Optional[str], fields: Dict[str, str], now: float) -> bytes:
    """One RFC 3164 datagram for /dev/log: facility daemon, the local time, `shrinkd[PID]:`, the
    message, then MESSAGE_ID and the SHRINKD_* fields as KEY="value" (quotes and backslashes escaped)."""
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(now))
    if stamp[4] == "0":
        stamp = stamp[:4] + " " + stamp[5:]  # RFC 3164: the day of the month space-padded
    extra = ([("MESSAGE_ID", message_id)] if message_id else []) + list(fields.items())
    text = " ".join(f'{key}="{_quoted(value)}"' for key, value in extra)
    line = f"<{FACILITY_DAEMON * 8 + priority}>{stamp} {IDENTIFIER}[{os.getpid()}]: {message}" + (f" {text}" if text else "")
    return line.replace("\n", " ").encode("utf-8", "replace")


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _stderr_is_journal(stream: TextIO) -> bool:
    """True when stderr is already connected to journald (systemd sets JOURNAL_STREAM=dev:inode)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not device.isdigit() or not inode.isdigit():
        return False
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return status.st_dev == int(device) and status.st_ino == int(inode)


class Journal:
    """Where events go. target: "journal", "stderr" or "auto" (journald when its socket exists)."""

    def __init__(
        self,
        target: str = "auto",
        debug: bool = False,
        stream: Optional[TextIO] = None,
        socket_path: str = JOURNAL_SOCKET,
        syslog_path: str = SYSLOG_SOCKET,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.socket_path = socket_path
        self.syslog_path = syslog_path
        self.debug_enabled = debug
        self.socket: Optional[_socket.socket] = None
        self.syslog: Optional[_socket.socket] = None  # /dev/log, without journald
        self._choose(target)

    def _choose(self, target: str) -> None:
        self.close()
        self.fallback_reason = ""
        if target == "journal" or (target == "auto" and os.path.exists(self.socket_path)):
            self.socket = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
        elif target == "auto":
            self.fallback_reason = f"no journald socket at {self.socket_path}"
            if os.path.exists(self.syslog_path):
                self.syslog = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
        in_journal = _stderr_is_journal(self.stream)
        # With journald, also one line on stderr when a person is watching it (never twice into the journal).
        self.echo = self.socket is None or (self._isatty() and not in_journal)
        # Under systemd with stderr in the journal, keep priorities with the <N> prefix.
        self.prefix = in_journal

    def _isatty(self) -> bool:
        try:
            return self.stream.isatty()
        except (ValueError, AttributeError):
            return False

    @property
    def target(self) -> str:
        return "journal" if self.socket is not None else "syslog" if self.syslog is not None else "stderr"

    def configure(self, target: str, debug: bool) -> None:
        """Apply a reloaded log configuration."""
        self.debug_enabled = debug
        self._choose(target)

    def close(self) -> None:
        if getattr(self, "socket", None) is not None:
            assert self.socket is not None
            self.socket.close()
            self.socket = None
        if getattr(self, "syslog", None) is not None:
            assert self.syslog is not None
            self.syslog.close()
            self.syslog = None

    def event(self, kind: str, message: str, priority: int = INFO, fields: Optional[Dict[str, object]] = None) -> None:
        """One event: MESSAGE_ID of `kind`, fields as SHRINKD_<NAME> (None values are left out)."""
        entries = {"SHRINKD_EVENT": kind}
        for name, value in (fields or {}).items():
            if value is not None:
                entries["SHRINKD_" + name.upper()] = _text(value)
        self._emit(message, priority, MESSAGE_IDS[kind], entries)

    def log(self, message: str, priority: int = INFO) -> None:
        """A plain line (no MESSAGE_ID)."""
        self._emit(message, priority, None, {})

    def debug(self, message: str) -> None:
        if self.debug_enabled:
            self._emit(message, DEBUG, None, {})

    def _emit(self, message: str, priority: int, message_id: Optional[str], fields: Dict[str, str]) -> None:
        if self.syslog is not None:
            try:
                self.syslog.sendto(syslog_line(message, priority, message_id, fields, time.time()), self.syslog_path)
            except OSError as error:
                self.syslog.close()
                self.syslog = None
                reason = os.strerror(error.errno) if error.errno else str(error)
                self._line(f"syslog unreachable at {self.syslog_path} ({reason}): logging to stderr only", WARNING)
        if self.socket is not None:
            entry = [("MESSAGE", message), ("PRIORITY", str(priority)), ("SYSLOG_IDENTIFIER", IDENTIFIER)]
            if message_id is not None:
                entry.append(("MESSAGE_ID", message_id))
            entry.extend(fields.items())
            try:
                self.socket.sendto(encode(entry), self.socket_path)
            except OSError as error:
                self.close()
                self.echo = True
                reason = os.strerror(error.errno) if error.errno else str(error)
                self._line(f"journald unreachable ({reason}): logging to stderr from now on", WARNING)
            else:
                if not self.echo:
                    return
        self._line(message, priority)

    def _line(self, message: str, priority: int) -> None:
        """One line on stderr: `<N>` first where stderr is the journal, else the time and the priority."""
        if self.prefix:
            text = f"<{priority}>{message}"
        else:
            text = f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} {LEVELS.get(priority, str(priority))} shrinkd: {message}"
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # nowhere left to report to


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)
