"""The workloads' host-side parts: the slab files' layout and the lookup helper agree."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.workloads import build_dentries, slab_file


def lookups(helper: Path, folder: Path, count: int, *floor: str) -> tuple[int, int]:
    done = subprocess.run([str(helper), str(folder), str(count), *floor], check=True, capture_output=True, text=True)
    looked, found = done.stdout.split()
    return int(looked), int(found)


def test_the_helper_finds_every_file_where_the_disk_puts_it(tmp_path: Path) -> None:
    helper = build_dentries(tmp_path)
    folder = tmp_path / "files"
    for number in range(600):  # three folders, the last one partly filled
        path = slab_file(folder, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    assert lookups(helper, folder, 600) == (600, 600)
    assert lookups(helper, folder, 700) == (700, 600)  # names past the last file: negative dentries


def test_the_helper_stops_below_the_free_memory_floor(tmp_path: Path) -> None:
    helper = build_dentries(tmp_path)
    # A floor above any machine's free memory: nothing is looked up.
    assert lookups(helper, tmp_path, 100, str(1 << 40)) == (0, 0)
