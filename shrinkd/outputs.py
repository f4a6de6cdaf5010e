"""What the daemon writes besides the journal: the trace (record) and the Prometheus textfile.

The daemon hands every poll's observation and every event to Outputs, and
after each poll lets it write what is due. Only the writers the configuration
asks for are imported and built (shrinkd.trace, shrinkd.prom); with neither,
`active` is False and the daemon does not call in at all. A file that cannot
be written is said once in the log (and again when it can be written again);
the daemon goes on.
"""

from __future__ import annotations

import time

from .journal import WARNING
from .safefile import OutputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, Mapping, Optional

    from .config import Config
    from .prom import Textfile
    from .trace import TraceWriter
    from .view import Observation

    Log = Callable[[str, int], None]


class Outputs:
    def __init__(
        self,
        page_size: int,
        orders: Mapping[str, Optional[int]],
        clock: Callable[[], float],
        log: Log,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.page_size = page_size
        self.orders = orders
        self.clock = clock
        self.wall = wall
        self.log = log
        self.trace: Optional[TraceWriter] = None
        self.textfile: Optional[Textfile] = None
        self.failing: Dict[str, str] = {}  # path -> the error last said

    @property
    def active(self) -> bool:
        return self.trace is not None or self.textfile is not None

    @property
    def wants_counters(self) -> bool:
        """A trace keeps /proc/vmstat and PSI every poll, so that a replay can try triggers on them."""
        return self.trace is not None

    def configure(self, config: Config) -> None:
        """Start, stop or move the writers as the configuration says (at start and on reload)."""
        record, prometheus = config.record, config.prometheus
        if self.trace is not None and (record.path is None or self.trace.path != record.path):
            self._write("trace", self.trace.path, self.trace.close)
            self.trace = None
        if record.path is not None:
            if self.trace is None:
                from .trace import TraceWriter

                self.trace = TraceWriter(
                    record.path, record.max_size, record.interval, self.page_size, self.orders, self.clock, self.wall
                )
            else:
                self.trace.max_size, self.trace.interval = record.max_size, record.interval
        if prometheus.textfile is None:
            self.textfile = None
        else:
            from .prom import Textfile

            if self.textfile is None:
                self.textfile = Textfile(prometheus.textfile, prometheus.interval, self.page_size, self.wall)
            elif self.textfile.path != prometheus.textfile:
                self.textfile.move(prometheus.textfile)  # same counters, new place
            self.textfile.interval = prometheus.interval

    # -- fed by the daemon ------------------------------------------------------

    def poll(self, now: float, obs: Observation) -> None:
        if self.trace is not None:
            self.trace.poll(now, obs)
        if self.textfile is not None:
            self.textfile.poll(now, obs)

    def event(self, kind: str, message: str, fields: Mapping[str, object]) -> None:
        if self.trace is not None:
            self.trace.event(self.clock(), kind, message, fields)
        if self.textfile is not None:
            self.textfile.event(kind, fields)

    def write_due(self, now: float) -> None:
        """After a poll: write what is due."""
        if self.trace is not None and self.trace.due(now):
            self._write("trace", self.trace.path, self.trace.write)
        if self.textfile is not None and self.textfile.due(now):
            textfile = self.textfile
            self._write("metrics", textfile.path, lambda: textfile.write(now))

    def close(self) -> None:
        """Write everything still pending (the daemon is stopping)."""
        if self.trace is not None:
            self._write("trace", self.trace.path, self.trace.close)
        if self.textfile is not None:
            textfile = self.textfile
            self._write("metrics", textfile.path, lambda: textfile.write(self.clock()))

    def _write(self, what: str, path: str, write: Callable[[], None]) -> None:
        try:
            write()
        except OutputError as error:
            if self.failing.get(path) != str(error):
                self.failing[path] = str(error)
                self.log(f"{what} not written: {error}; trying again later", WARNING)
        else:
            if self.failing.pop(path, None) is not None:
                self.log(f"{what} written again to {path}", WARNING)
