"""sd_notify against a real AF_UNIX datagram socket, by path and abstract."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

from shrinkd.notify import Notifier


def receive(sock: socket.socket) -> Dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.split("\n"))


@pytest.fixture(params=["path", "abstract"])
def listener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = str(tmp_path / "notify")
        sock.bind(address)
    else:
        name = f"shrinkd-test-{os.getpid()}-{time.monotonic_ns()}"
        sock.bind("\0" + name)
        address = "@" + name
    sock.settimeout(5)
    yield sock, address
    sock.close()


def test_messages(listener: Tuple[socket.socket, str]) -> None:
    sock, address = listener
    notifier = Notifier({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    assert notifier.ready("worst: none")
    assert receive(sock) == {"READY": "1", "STATUS": "worst: none"}
    assert notifier.status("worst: node 0 zone Normal")
    assert receive(sock) == {"STATUS": "worst: node 0 zone Normal"}
    assert notifier.watchdog()
    assert receive(sock) == {"WATCHDOG": "1"}
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    message = receive(sock)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert message["RELOADING"] == "1" and before <= int(message["MONOTONIC_USEC"]) <= after
    assert notifier.stopping()
    assert receive(sock) == {"STOPPING": "1"}
    notifier.close()


def test_reload_messages_ping_the_watchdog_when_it_is_on(listener: Tuple[socket.socket, str]) -> None:
    """A reload's work (parse, detect) between two sleeps must not look like a hang: RELOADING=1
    and the READY=1 that ends it carry WATCHDOG=1; without a watchdog they do not."""
    sock, address = listener
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "10000000"})
    assert notifier.reloading() and receive(sock)["WATCHDOG"] == "1"
    assert notifier.ready("worst: none")
    assert receive(sock) == {"READY": "1", "STATUS": "worst: none", "WATCHDOG": "1"}
    notifier.close()
    plain = Notifier({"NOTIFY_SOCKET": address})
    assert plain.reloading() and "WATCHDOG" not in receive(sock)
    plain.close()


def test_an_unchanged_status_is_not_sent_again(listener: Tuple[socket.socket, str]) -> None:
    sock, address = listener
    notifier = Notifier({"NOTIFY_SOCKET": address})
    notifier.status("a")
    notifier.status("a")
    notifier.status("b")
    assert receive(sock) == {"STATUS": "a"}
    assert receive(sock) == {"STATUS": "b"}


def test_without_systemd_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready("x") is False
    assert notifier.watchdog_interval() is None


def test_a_vanished_socket_is_not_an_error(tmp_path: Path) -> None:
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready("x") is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000"}).watchdog_interval() == 15.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_interval() == 15.0
    # Meant for another process (a parent that exec'd without clearing it): not ours.
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_interval() is None
    assert Notifier({"WATCHDOG_USEC": "soon"}).watchdog_interval() is None
