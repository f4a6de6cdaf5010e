"""Device changes from the kernel's uevents: the shrinkmem device appearing or
vanishing (module loaded or removed), memory blocks going on- or offline.

A NETLINK_KOBJECT_UEVENT socket bound to the kernel's multicast group gets
the same events udev and pyudev's "kernel" monitor see, without loading
libudev and ctypes into the daemon (several megabytes: more than the rest of
shrinkd). devtmpfs creates /dev/NAME before the kernel sends the "add"
event, so the node exists when the event arrives. The socket joins the
daemon's poll set: no thread.
"""

from __future__ import annotations

import _socket  # the C module the socket module wraps: the same calls, without its imports (enum, selectors)
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

NETLINK_KOBJECT_UEVENT = 15
KERNEL_GROUP = 1  # group 2 carries udevd's re-broadcasts, in libudev's own format
MEMORY_ACTIONS = ("online", "offline", "add", "remove")


def parse_uevent(data: bytes) -> Optional[Dict[str, str]]:
    """A kernel uevent ("ACTION@DEVPATH\\0KEY=VALUE\\0...") as a dict, or None for anything else."""
    parts = data.split(b"\0")
    header = parts[0].decode("utf-8", "replace")
    if "@" not in header:
        return None  # e.g. libudev's "libudev\0..." messages
    fields: Dict[str, str] = {}
    for part in parts[1:]:
        key, sep, value = part.decode("utf-8", "replace").partition("=")
        if sep:
            fields[key] = value
    action, _, devpath = header.partition("@")
    fields.setdefault("ACTION", action)
    fields.setdefault("DEVPATH", devpath)
    return fields


def classify(fields: Dict[str, str], device_name: str) -> Optional[Tuple[str, str, str]]:
    """(what, name, action) for the events shrinkd cares about: what is "device" (the shrinkmem node) or "memory"."""
    subsystem = fields.get("SUBSYSTEM", "")
    action = fields.get("ACTION", "")
    name = fields.get("DEVPATH", "").rsplit("/", 1)[-1]
    if subsystem == "misc" and (fields.get("DEVNAME", "").rsplit("/", 1)[-1] == device_name or name == device_name):
        return ("device", device_name, action)
    if subsystem == "memory" and action in MEMORY_ACTIONS:
        return ("memory", name, action)
    return None


class UeventWatch:
    def __init__(self, device: str) -> None:
        self.device_name = os.path.basename(device)
        self.socket: Optional[_socket.socket] = _socket.socket(
            _socket.AF_NETLINK,
            _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC | _socket.SOCK_NONBLOCK,
            NETLINK_KOBJECT_UEVENT,
        )
        try:
            self.socket.bind((0, KERNEL_GROUP))
        except OSError:
            self.socket.close()
            raise

    def fileno(self) -> int:
        assert self.socket is not None
        return self.socket.fileno()

    def read(self) -> List[Tuple[str, str, str]]:
        """Pending changes as (what, name, action). A lost burst (ENOBUFS) reads as ("overflow", "", "")."""
        assert self.socket is not None
        changes: List[Tuple[str, str, str]] = []
        while True:
            try:
                data, (pid, _groups) = self.socket.recvfrom(65536)
            except BlockingIOError:
                return changes
            except OSError:  # ENOBUFS: events were dropped; whatever they were, look again
                changes.append(("overflow", "", ""))
                continue
            if pid != 0:
                continue  # only the kernel itself sends on this group
            fields = parse_uevent(data)
            change = classify(fields, self.device_name) if fields is not None else None
            if change is not None:
                changes.append(change)

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None


def start(device: str) -> Tuple[Optional[UeventWatch], str]:
    """(watch, "") or (None, why not): no netlink in this sandbox, for example."""
    try:
        return UeventWatch(device), ""
    except OSError as error:
        return None, f"uevent socket: {os.strerror(error.errno) if error.errno else error}"
