"""Guest side of the board tests (tests/boards.py): small helpers run with the guest's own python3.

Standard library only (the guest has python3 and python3-yaml, nothing from PyPI):

    python3 tests/board_guest.py fs-list           every path of the root file system, one per line
    python3 tests/board_guest.py huge-order        the order a rule must name for this kernel's huge page
    python3 tests/board_guest.py wait-event EVENT SECONDS [AFTER_CURSOR]
                                                   wait for a shrinkd event in the journal
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

# Paths whose content changes with every boot or with any apt run, whoever runs it:
# mounted pseudo file systems, the test's own shares, logs, apt's and dpkg's own state,
# and systemd's per-boot state. Everything else a package leaves behind shows.
VOLATILE = (
    "/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/mnt", "/boot/efi",
    "/var/log", "/var/cache/apt", "/var/cache/debconf", "/var/cache/ldconfig", "/var/lib/apt",
    "/var/lib/dpkg", "/var/lib/systemd/random-seed", "/var/lib/systemd/timers", "/var/lib/systemd/catalog",
    "/var/lib/systemd/coredump", "/var/lib/systemd/pstore", "/var/lib/systemd/linger",
    "/var/lib/private", "/var/lib/ucf",
    # The kernel packages' own trees (most of the files, and minutes to list under
    # emulation): neither package writes there (DKMS installs under updates/).
    "/usr/src/linux-headers-*", "/usr/lib/modules/*/kernel",
)


def fs_list(root: str = "/") -> List[str]:
    """`TYPE PATH` for every entry on the root file system (not crossing mounts), sorted.

    find(1) does the walk: a Python walk of a Debian root takes minutes under emulation."""
    prune: List[str] = []
    for path in VOLATILE:
        prune += ["-path", path, "-o"]
    command = ["find", root, "-xdev", "(", *prune[:-1], ")", "-prune", "-o", "-printf", "%y %p\\n"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return sorted(line for line in out.splitlines() if line and line != f"d {root}")


def huge_order() -> int:
    """The kernel's PMD huge-page order (hpage_pmd_size over the page size), else its pageblock order."""
    page = os.sysconf("SC_PAGE_SIZE")
    thp = Path("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
    if thp.exists():
        return (int(thp.read_text()) // page).bit_length() - 1
    for line in Path("/proc/pagetypeinfo").read_text().splitlines():
        if line.startswith("Page block order:"):
            return int(line.split(":")[1])
    raise RuntimeError("neither hpage_pmd_size nor a pageblock order in /proc/pagetypeinfo")


def journal(unit: str, cursor: Optional[str]) -> List[dict[str, str]]:
    command = ["journalctl", "-u", unit, "-o", "json", "--no-pager"]
    if cursor:
        command += ["--after-cursor", cursor]
    out = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def wait_event(event: str, seconds: float, cursor: Optional[str]) -> int:
    """Print the first shrinkd journal entry with SHRINKD_EVENT=event (after cursor) as JSON; 1 on timeout."""
    deadline = time.monotonic() + seconds
    while True:
        for entry in journal("shrinkd", cursor):
            if entry.get("SHRINKD_EVENT") == event:
                print(json.dumps(entry))
                return 0
        if time.monotonic() > deadline:
            return 1
        time.sleep(1)


def main(argv: List[str]) -> int:
    if argv[:1] == ["fs-list"]:
        sys.stdout.write("".join(f"{line}\n" for line in fs_list()))
        return 0
    if argv[:1] == ["huge-order"]:
        print(huge_order())
        return 0
    if argv[:1] == ["wait-event"] and len(argv) in (3, 4):
        return wait_event(argv[1], float(argv[2]), argv[3] if len(argv) == 4 else None)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
