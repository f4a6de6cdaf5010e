"""Process plumbing: signals that only set flags, and the sleep between polls.

SIGTERM and SIGINT ask the daemon to stop, SIGHUP to reload. The handlers set
a flag; the signal module's wakeup descriptor (a self-pipe) makes the sleep in
poll(2) return at once. sleep() also watches the descriptors the daemon hands
it (the PSI trigger, the uevent socket) and pings systemd's watchdog on time.
"""

from __future__ import annotations

import os
import select

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from typing import Callable, Dict, List, Optional, Sequence, Tuple

    from .notify import Notifier

    Clock = Callable[[], float]
    # A descriptor to watch, the poll(2) events to wait for, what to do when they come,
    # and the name of the cause when it wakes the daemon.
    Watch = Tuple[int, int, Callable[[int], int], str]
else:
    # The C module behind `signal`, with the same functions and constants: the
    # `signal` wrapper adds enum, functools and collections, 0.8 MB resident
    # in a daemon that needs none of them.
    import _signal as signal

# What a watch's handler answers.
STAY = 0  # keep sleeping
WAKE = 1  # return now: poll at once
DROP = 2  # the descriptor is gone: stop watching it, keep sleeping


class Signals:
    """SIGTERM/SIGINT (stop) and SIGHUP (reload) handlers that only set flags, and the self-pipe they wake."""

    def __init__(self) -> None:
        self.stop_requested = False
        self.reload_requested = False
        self._read = -1
        self._write = -1
        self._old_handlers: Dict[int, object] = {}
        self._old_wakeup_fd = -1

    @property
    def interrupted(self) -> bool:
        return self.stop_requested or self.reload_requested

    def install(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old_wakeup_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for number, handler in (
            (signal.SIGTERM, self._on_stop),
            (signal.SIGINT, self._on_stop),
            (signal.SIGHUP, self._on_reload),
        ):
            self._old_handlers[number] = signal.signal(number, handler)

    def _on_stop(self, number: int, frame: object) -> None:
        self.stop_requested = True

    def _on_reload(self, number: int, frame: object) -> None:
        self.reload_requested = True

    def watch(self) -> List[Watch]:
        """The self-pipe, for sleep(): drained when a signal arrives (the flags say what it was)."""
        return [(self._read, select.POLLIN, self._drain, "signal")] if self._read >= 0 else []

    def _drain(self, mask: int) -> int:
        try:
            while os.read(self._read, 64):
                pass
        except BlockingIOError:
            pass
        return WAKE if self.interrupted else STAY

    def restore(self) -> None:
        for number, handler in self._old_handlers.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        self._old_handlers.clear()
        if self._write >= 0:
            signal.set_wakeup_fd(self._old_wakeup_fd)
            os.close(self._read)
            os.close(self._write)
            self._read = self._write = -1


def sleep(
    timeout: float,
    clock: Clock,
    notifier: Notifier,
    watches: Sequence[Watch],
    interrupted: Callable[[], bool],
    woken: Optional[Callable[[str], None]] = None,
) -> str:
    """Sleep up to `timeout` seconds in poll(2), pinging systemd's watchdog on time. Returns why it
    ended: "timer", or the name of the watch whose handler answered WAKE ("signal" for the signals).
    `woken(cause)` hears of the wake-ups that went back to sleep: a watchdog ping ("watchdog"), or a
    descriptor whose handler answered STAY; so the daemon can say how often it wakes and why."""
    deadline = clock() + timeout
    poller = select.poll()
    handlers: Dict[int, Tuple[Callable[[int], int], str]] = {}
    for fd, mask, handler, name in watches:
        poller.register(fd, mask)
        handlers[fd] = (handler, name)
    ping: Optional[float] = notifier.watchdog_interval()
    next_ping = clock()
    while not interrupted():
        now = clock()
        if ping is not None and now >= next_ping:
            notifier.watchdog()
            next_ping = now + ping
        left = deadline - now
        if left <= 0:
            return "timer"
        if ping is not None:
            left = min(left, max(next_ping - now, 0.0))
        events = poller.poll(max(int(left * 1000), 1))
        cause = ""
        quiet = "" if events else "watchdog"
        for fd, mask in events:
            handler, name = handlers[fd]
            answer = handler(mask)
            if answer == DROP:
                poller.unregister(fd)
            elif answer == WAKE:
                cause = cause or name
            quiet = quiet or name
        if cause:
            return cause
        if woken is not None and clock() < deadline:
            woken(quiet)
    return "signal"
