"""sd_notify(3) in a few lines: datagrams to $NOTIFY_SOCKET.

READY=1, STATUS=..., WATCHDOG=1, RELOADING=1 (with MONOTONIC_USEC, which
Type=notify-reload wants), STOPPING=1. A name starting with '@' is an
abstract socket. Without $NOTIFY_SOCKET (not started by systemd) every call
does nothing. The watchdog interval comes from $WATCHDOG_USEC (and
$WATCHDOG_PID, when set, must be this process).
"""

from __future__ import annotations

import _socket  # the C module the socket module wraps: the same calls, without its imports (enum, selectors)
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Mapping, Optional


class Notifier:
    def __init__(self, environ: Optional[Mapping[str, str]] = None) -> None:
        env: Mapping[str, str] = os.environ if environ is None else environ
        self.address: Optional[str] = env.get("NOTIFY_SOCKET") or None
        self.watchdog_usec = _watchdog_usec(env)
        self._socket: Optional[_socket.socket] = None
        self._last: Dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def watchdog_interval(self) -> Optional[float]:
        """Seconds between WATCHDOG=1 pings (half of WatchdogSec, as sd_watchdog_enabled(3) advises), or None."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def send(self, **fields: str) -> bool:
        """Send KEY=value lines (keyword names are upper-cased); False when not under systemd or on error."""
        if self.address is None:
            return False
        message = "\n".join(f"{key.upper()}={value}" for key, value in fields.items()).encode("utf-8", "replace")
        address = self.address
        target = "\0" + address[1:] if address.startswith("@") else address
        try:
            if self._socket is None:
                self._socket = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
            # Never wait: a full queue (systemd busy) costs a message, not the daemon's loop.
            self._socket.sendto(message, _socket.MSG_DONTWAIT, target)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> bool:
        """READY=1 with the status line; with the watchdog on, also a ping (a reload's READY ends a
        stretch of work, parsing the configuration and detecting backends, that sent none)."""
        self._last["status"] = status
        return self.send(ready="1", status=status, **self._ping())

    def status(self, status: str) -> bool:
        """STATUS=..., sent only when it changed."""
        if self._last.get("status") == status:
            return True
        self._last["status"] = status
        return self.send(status=status)

    def watchdog(self) -> bool:
        return self.send(watchdog="1")

    def reloading(self) -> bool:
        """RELOADING=1 (with a ping, when the watchdog is on: the loop is alive and about to work)."""
        now = str(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)
        return self.send(reloading="1", monotonic_usec=now, **self._ping())

    def _ping(self) -> Dict[str, str]:
        return {"watchdog": "1"} if self.watchdog_usec else {}

    def stopping(self) -> bool:
        return self.send(stopping="1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _watchdog_usec(env: Mapping[str, str]) -> int:
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return 0
    value = env.get("WATCHDOG_USEC", "")
    return int(value) if value.isdigit() else 0
