"""The trace: every poll's observation and every event, as the policy saw them, for replay and plots.

A trace is JSON lines (one object per line), written by the daemon
(TraceWriter, fed by shrinkd.outputs) and read by `shrinkd replay` and
`shrinkd plot` (read_trace). The writer runs in the long-running daemon: it
composes the lines itself (no json module, which imports re), keeps only the
lines not yet written in memory, and writes at a bounded rate.

The lines, in order (docs/tools.md describes each field):

  {"format": "shrinkd-trace", "version": 1, "recording": ID, "segment": N,
   "wall": unix time, "clock": the policy's clock at that moment,
   "page_size": bytes, "orders": {"huge": 9, ...}, "kernel": release,
   "backends": [names detected], "shrinkd": version}              first line
  {"zones": [[node, zone, managed, present, spanned, [min, low, high]], ...]}
                                   the zone layout, again whenever it changes
  {"t": clock, "free": [[blocks per order] per zone], "pages": [free pages per
   zone], "vmstat": {counter: value}, "psi": [some avg10, full avg10],
   "failures": [[order, mode, zone, process, ts_usec], ...]}        a poll
  {"t": clock, "event": kind, "message": text, "fields": {...}}      an event

Bounded: the file holds at most SEGMENT bytes; then it is renamed to
FILE.<n> (n rising) and a new one starts, with its own header and layout so
each file replays alone; the oldest FILE.<n> go when all of them pass
`record.max_size`. Every write replaces the file whole (shrinkd.safefile).
"""

from __future__ import annotations

import os

from . import __version__
from .errors import EXIT_USAGE, ShrinkdError
from .jsontext import to_json
from .safefile import SafeDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

    from .view import Observation

    Layout = Tuple[Tuple[Any, ...], ...]

FORMAT = "shrinkd-trace"
VERSION = 1
SEGMENT = 256 << 10  # bytes per file at most; each write rewrites the current file
PENDING_MAX = 64 << 10  # lines kept in memory before an early write


# ---------------------------------------------------------------------------
# Writing: JSON composed by hand (shrinkd.jsontext).


def layout_of(obs: Observation) -> Layout:
    return tuple(
        (
            zone.node,
            zone.zone,
            zone.managed,
            zone.present,
            zone.spanned,
            None if zone.marks is None else (zone.marks["min"], zone.marks["low"], zone.marks["high"]),
        )
        for zone in obs.zones.values()
    )


def poll_line(now: float, obs: Observation) -> str:
    zones = obs.zones.values()
    parts = [
        '{"t":' + to_json(float(now)),
        '"free":' + to_json([zone.free for zone in zones]),
        '"pages":' + to_json([zone.free_pages for zone in zones]),
    ]
    if obs.vmstat:
        parts.append('"vmstat":' + to_json(obs.vmstat))
    if obs.psi_some is not None or obs.psi_full is not None:
        parts.append('"psi":' + to_json([obs.psi_some, obs.psi_full]))
    if obs.failures:
        parts.append(
            '"failures":' + to_json([[f.order, f.mode, f.zone, f.process, f.ts_usec] for f in obs.failures])
        )
    return ",".join(parts) + "}\n"


class TraceWriter:
    """Appends polls and events to a bounded trace at `path`, writing at most every `interval` seconds."""

    def __init__(
        self,
        path: str,
        max_size: int,
        interval: float,
        page_size: int,
        orders: Mapping[str, Optional[int]],
        clock: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self.directory, self.name = os.path.split(os.path.abspath(path))
        self.path = os.path.join(self.directory, self.name)
        self.max_size = max_size
        self.segment_limit = min(SEGMENT, max(max_size // 4, 4096))
        self.interval = interval
        self.page_size = page_size
        self.orders = dict(orders)
        self.clock = clock
        self.wall = wall
        self.recording = os.urandom(8).hex()
        self.segment = 0
        self.pending: List[str] = []
        self.pending_bytes = 0
        self.dropped = 0  # lines lost while the file could not be written
        self.written = -1  # bytes in the current file; -1: this recording has not written it yet
        self.started = False  # whether this recording has started a file (the next one is a new segment)
        self.layout: Optional[Layout] = None  # the layout of the last line added
        self.layout_written: Optional[Layout] = None  # ... of the last line written
        self.backends: List[str] = []
        self.backends_written: List[str] = []
        self.last_write = clock()

    # -- what the daemon hands over --------------------------------------------

    def poll(self, now: float, obs: Observation) -> None:
        layout = layout_of(obs)
        if layout != self.layout:
            self.layout = layout
            self._add('{"zones":' + to_json(layout) + "}\n")
        self._add(poll_line(now, obs))

    def event(self, now: float, kind: str, message: str, fields: Mapping[str, object]) -> None:
        if kind in ("started", "backends_changed"):
            names = fields.get("backends")
            self.backends = [name for name in str(names or "").split(",") if name]
        self._add(
            '{"t":' + to_json(float(now)) + ',"event":' + to_json(kind) + ',"message":' + to_json(message)
            + ',"fields":' + to_json({key: value for key, value in fields.items() if value is not None}) + "}\n"
        )

    def _add(self, line: str) -> None:
        self.pending.append(line)
        self.pending_bytes += len(line)
        # Nothing could be written for a long time: keep the newest lines only.
        while self.pending_bytes > self.segment_limit and len(self.pending) > 1:
            self.pending_bytes -= len(self.pending.pop(0))
            self.dropped += 1

    def due(self, now: float) -> bool:
        return bool(self.pending) and (now - self.last_write >= self.interval or self.pending_bytes >= PENDING_MAX)

    # -- writing ----------------------------------------------------------------------

    def header(self) -> str:
        return to_json(
            {
                "format": FORMAT,
                "version": VERSION,
                "recording": self.recording,
                "segment": self.segment,
                "wall": self.wall(),
                "clock": self.clock(),
                "page_size": self.page_size,
                "orders": self.orders,
                "kernel": os.uname().release,
                "backends": self.backends_written,
                "shrinkd": __version__,
            }
        ) + "\n"

    def write(self) -> None:
        """Write the pending lines (raises safefile.OutputError; they are kept for the next try)."""
        self.last_write = self.clock()
        if not self.pending:
            return
        body = "".join(self.pending)
        with SafeDir(self.directory) as folder:
            on_disk = folder.size(self.name)
            if on_disk is not None and (on_disk != self.written or self.written + len(body) > self.segment_limit):
                # Full, or not the file this recording wrote (an earlier run's, or changed meanwhile): kept aside.
                self._seal(folder)
            elif on_disk is None and self.written > 0:
                self.written = 0  # removed meanwhile: a new file
            if self.written <= 0:
                if self.started:
                    self.segment += 1
                self.started = True
                start = self.header()
                if self.layout_written is not None:
                    start += '{"zones":' + to_json(self.layout_written) + "}\n"
                data = (start + body).encode("utf-8", "replace")
                folder.replace(self.name, data)
                self.written = len(data)
            else:
                data = body.encode("utf-8", "replace")
                folder.replace(self.name, data, keep=True)
                self.written += len(data)
            self._prune(folder)
        self.pending = []
        self.pending_bytes = 0
        self.layout_written = self.layout
        self.backends_written = list(self.backends)

    def _segments(self, folder: SafeDir) -> List[Tuple[int, str]]:
        """The sealed files FILE.<n>, oldest first."""
        found = []
        prefix = self.name + "."
        for name in folder.names():
            if name.startswith(prefix) and name[len(prefix) :].isdigit():
                found.append((int(name[len(prefix) :]), name))
        return sorted(found)

    def _seal(self, folder: SafeDir) -> None:
        sealed = self._segments(folder)
        number = sealed[-1][0] + 1 if sealed else 1
        folder.rename(self.name, f"{self.name}.{number}")
        self.written = 0

    def _prune(self, folder: SafeDir) -> None:
        total = self.written
        sealed = self._segments(folder)
        sizes = [(name, folder.size(name) or 0) for _, name in sealed]
        total += sum(size for _, size in sizes)
        for name, size in sizes:
            if total <= self.max_size:
                break
            folder.remove(name)
            total -= size

    def close(self) -> None:
        self.write()


# ---------------------------------------------------------------------------
# Reading (shrinkd replay, shrinkd plot): any line that is not what the writer writes is an error.


class TraceError(ShrinkdError):
    """A file that is not a trace, or a damaged one: the command was given the wrong file."""

    exit_code = EXIT_USAGE


class Poll:
    __slots__ = ("obs", "t")

    def __init__(self, t: float, obs: Observation) -> None:
        self.t = t
        self.obs = obs


class Event:
    __slots__ = ("fields", "kind", "message", "t")

    def __init__(self, t: float, kind: str, message: str, fields: Dict[str, Any]) -> None:
        self.t = t
        self.kind = kind
        self.message = message
        self.fields = fields


class Trace:
    """One or more files of one recording, in order: the header of the first, then polls and events."""

    def __init__(self, sources: Sequence[str], header: Dict[str, Any], items: List[Any]) -> None:
        self.sources = sources
        self.header = header
        self.items = items  # Poll and Event, in the order they were recorded

    @property
    def page_size(self) -> int:
        return int(self.header["page_size"])

    @property
    def orders(self) -> Dict[str, Optional[int]]:
        return dict(self.header["orders"])

    @property
    def polls(self) -> List[Poll]:
        return [item for item in self.items if isinstance(item, Poll)]

    @property
    def events(self) -> List[Event]:
        return [item for item in self.items if isinstance(item, Event)]

    def wall(self, t: float) -> float:
        """The wall-clock time of a clock reading (unix seconds)."""
        return float(self.header["wall"]) + t - float(self.header["clock"])


def _lines(path: str) -> Iterator[Tuple[int, str]]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise TraceError(f"{path}: cannot read: {error.strerror or error}") from None
    if not data:
        raise TraceError(f"{path}: empty file: not a shrinkd trace")
    if not data.endswith(b"\n"):
        count = data.count(b"\n") + 1
        raise TraceError(f"{path}:{count}: truncated: the last line is incomplete (the file was cut short)")
    for number, raw in enumerate(data.split(b"\n")[:-1], 1):
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise TraceError(f"{path}:{number}: not UTF-8 text: not a shrinkd trace") from None


def _header(path: str, number: int, line: str) -> Dict[str, Any]:
    import json

    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise TraceError(f"{path}:1: not a shrinkd trace (no {FORMAT!r} header on the first line)")
    if header.get("version") != VERSION:
        raise TraceError(f"{path}:1: trace format version {header.get('version')!r}; this shrinkd reads version {VERSION}")
    for key, kind in (("recording", str), ("segment", int), ("wall", float), ("clock", float), ("page_size", int), ("orders", dict)):
        value = header.get(key)
        if not isinstance(value, (int, float) if kind is float else kind) or isinstance(value, bool):
            raise TraceError(f"{path}:1: header: {key} missing or not a {kind.__name__}")
    return header


def read_file(path: str) -> Tuple[Dict[str, Any], List[Any]]:
    """One file: its header and its polls and events."""
    import json

    from .parse import AllocationFailure
    from .view import Observation, ZoneView

    lines = _lines(path)
    first = next(lines, None)
    assert first is not None  # an empty file was refused
    header = _header(path, *first)
    items: List[Any] = []
    layout: Optional[List[Any]] = None
    for number, line in lines:
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except ValueError as error:
            raise TraceError(f"{where}: not JSON: {error}") from None
        if not isinstance(record, dict):
            raise TraceError(f"{where}: not a trace record")
        try:
            if "zones" in record:
                layout = [list(zone) for zone in record["zones"]]
                for zone in layout:
                    if len(zone) != 6 or not isinstance(zone[0], int) or not isinstance(zone[1], str):
                        raise ValueError("a zone is [node, name, managed, present, spanned, marks]")
            elif "event" in record:
                items.append(Event(float(record["t"]), str(record["event"]), str(record.get("message", "")), dict(record["fields"])))
            elif "free" in record:
                if layout is None:
                    raise ValueError("a poll before any zone layout")
                free, pages = record["free"], record["pages"]
                if len(free) != len(layout) or len(pages) != len(layout):
                    raise ValueError(f"{len(free)} zones in a poll, {len(layout)} in the layout")
                zones = {}
                for (node, name, managed, present, spanned, marks), blocks, count in zip(layout, free, pages):
                    if not all(isinstance(n, int) and n >= 0 for n in blocks) or not isinstance(count, int):
                        raise ValueError("free blocks and pages must be counts")
                    zones[(node, name)] = ZoneView(
                        node,
                        name,
                        tuple(blocks),
                        count,
                        managed,
                        None if marks is None else {"min": marks[0], "low": marks[1], "high": marks[2]},
                        present,
                        spanned,
                    )
                psi = record.get("psi") or [None, None]
                vmstat = record.get("vmstat") or {}
                if not all(isinstance(v, int) for v in vmstat.values()):
                    raise ValueError("vmstat values must be counts")
                failures = tuple(
                    AllocationFailure(int(order), str(mode), str(zone), str(process), int(ts))
                    for order, mode, zone, process, ts in record.get("failures") or ()
                )
                items.append(Poll(float(record["t"]), Observation(zones, dict(vmstat), psi[0], psi[1], failures)))
            else:
                raise ValueError("neither zones, a poll nor an event")
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise TraceError(f"{where}: bad record: {error}") from None
    return header, items


def read_trace(paths: Sequence[str]) -> Trace:
    """Files of one recording, put in order by their segment numbers; they must follow one another."""
    if not paths:
        raise TraceError("no trace file given")
    files = [(path, *read_file(path)) for path in paths]
    files.sort(key=lambda item: item[1]["segment"])
    first_path, header, _ = files[0]
    items: List[Any] = []
    previous: Optional[Tuple[str, Dict[str, Any]]] = None
    for path, this, found in files:
        if previous is not None:
            before_path, before = previous
            if this["recording"] != header["recording"]:
                raise TraceError(f"{path}: from another recording than {first_path}: replay them separately")
            if this["segment"] != before["segment"] + 1:
                raise TraceError(
                    f"{path}: segment {this['segment']} does not follow {before_path} (segment {before['segment']})"
                )
        previous = (path, this)
        items.extend(found)
    if not any(isinstance(item, Poll) for item in items):
        raise TraceError(f"{', '.join(paths)}: no polls in the trace")
    return Trace([path for path, _, _ in files], header, items)
