"""vm.vfs_cache_pressure raised for the length of one reclaim.

Where compaction could not fix fragmentation, what stands in the way is mostly what it cannot
move: reclaimable slab, the dentries and inodes of files looked up once. The kernel's reclaim
frees those through its shrinkers, in proportion to vfs_cache_pressure (100: as much as the
page cache). Raised for one reclaim, the same request frees them first: in the outcome study
(docs/outcome.md) a 64 MiB memory.reclaim then compaction took the unusable index at order 9
from 0.995 to 0.49 with vfs_cache_pressure at 10000, and only to 0.979 at 100, for the same
65 MiB of page cache.

The value before is written to a file in shrinkd's runtime directory while it is raised, so a
daemon killed in between (SIGKILL, a watchdog abort) puts it back when it starts again.
"""

from __future__ import annotations

from ..errors import ActionError, MissingInputError
from ..procfs import ProcFS, Tunables
from ..safefile import OutputError, read_file, remove_file, write_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional


class CachePressure:
    def __init__(self, procfs: ProcFS, tunables: Tunables, saved: Optional[str]) -> None:
        self.tunables = tunables
        self.path = procfs.proc("sys/vm/vfs_cache_pressure")
        self.saved = saved  # where the value before is kept while raised (None: not kept)

    def read(self) -> int:
        text = ProcFS.read_head(self.path, 64).strip()
        if not text.isdigit():
            raise MissingInputError(self.path, f"not a number: {text[:20]!r}")
        return int(text)

    def raised(self, value: int, notes: List[str]) -> Raised:
        """vfs_cache_pressure at least `value` inside a `with` block, as it was after it; the block
        gets whether shrinkd raised it. What could not be done is appended to `notes` (the reclaim
        runs all the same). (A class, not contextlib: the daemon does not import contextlib, which
        brings collections and functools, about 660 kB of resident memory.)"""
        return Raised(self, value, notes)

    def _raise(self, value: int, notes: List[str]) -> Optional[int]:
        """Raise it to `value`; the value before when shrinkd raised it, else None."""
        try:
            before = self.read()
        except MissingInputError as error:
            notes.append(f"vfs_cache_pressure not raised: {error}")
            return None
        if before >= value:
            return None
        self._save(before, notes)
        try:
            self.tunables.write(self.path, f"{value}\n")
        except (ActionError, MissingInputError) as error:
            notes.append(f"vfs_cache_pressure not raised: {error}")
            self._forget()
            return None
        return before

    def _put_back(self, before: int) -> None:
        try:
            self.tunables.write(self.path, f"{before}\n")
        finally:
            self._forget()

    def restore_left(self) -> Optional[int]:
        """A value saved by a daemon that ended while it was raised goes back to the kernel. Returns
        it, or None when there was none; raises ActionError when it could not be put back."""
        if self.saved is None:
            return None
        try:
            data = read_file(self.saved, 64)
        except OutputError as error:
            raise ActionError(str(error)) from None
        if data is None:
            return None
        text = data.decode("ascii", "replace").strip()
        if not text.isdigit():
            self._forget()
            raise ActionError(f"{self.saved}: not a number: {text[:20]!r}; removed")
        self.tunables.write(self.path, f"{text}\n")
        self._forget()
        return int(text)

    def _save(self, before: int, notes: List[str]) -> None:
        if self.saved is None:
            return
        try:
            write_file(self.saved, f"{before}\n".encode())
        except OutputError as error:
            notes.append(f"{error} (not kept for a restart)")

    def _forget(self) -> None:
        if self.saved is None:
            return
        try:  # noqa: SIM105 (contextlib.suppress: the daemon does not import contextlib)
            remove_file(self.saved)
        except OutputError:
            pass


class Raised:
    """The `with` block of CachePressure.raised."""

    __slots__ = ("before", "notes", "owner", "value")

    def __init__(self, owner: CachePressure, value: int, notes: List[str]) -> None:
        self.owner = owner
        self.value = value
        self.notes = notes
        self.before: Optional[int] = None

    def __enter__(self) -> bool:
        self.before = self.owner._raise(self.value, self.notes)
        return self.before is not None

    def __exit__(self, *exc: object) -> None:
        if self.before is not None:
            self.owner._put_back(self.before)
