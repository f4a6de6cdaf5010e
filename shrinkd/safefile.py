"""Files shrinkd writes besides kernel control files (the trace, the metrics textfile, the state
file, the saved vm.vfs_cache_pressure): one safe way.

shrinkd runs as root, so a file it writes must never be a way for someone
else to make root write elsewhere. Every such file goes through SafeDir:

- the directory is opened with O_DIRECTORY|O_NOFOLLOW and checked through
  that descriptor (fstat): owned by root (or by the user running shrinkd,
  for a tool run by hand) and writable by no group and no other user, the
  way sshd's StrictModes treats its files; so no one else can put a
  symlink or a hard link in it, or swap the directory under shrinkd;
- everything after that is relative to the descriptor (openat, renameat);
- a file is replaced whole: a temporary in the same directory, created with
  O_CREAT|O_EXCL|O_NOFOLLOW, written, fsync'd, renamed over the old name
  (rename replaces a symlink, it never follows one); readers see the old
  file or the new one, never a mix (the state file, in /run and rewritten
  every poll, skips the fsyncs: it does not outlive the boot);
- an existing file is read only when it is a regular file (O_NOFOLLOW).

Every failure is an OutputError naming the path and what is wrong, in one line.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import EXIT_USAGE, ShrinkdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional


class OutputError(ShrinkdError):
    """A file shrinkd writes cannot be written (the directory is missing, unsafe or full)."""

    exit_code = EXIT_USAGE


_CHUNK = 1 << 20


def _why(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "is a symbolic link: refusing to follow it"
    return os.strerror(error.errno) if error.errno else str(error)


class SafeDir:
    """A directory shrinkd may write files in, held open by a descriptor."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as error:
            reason = _why(error)
            if error.errno == errno.ENOTDIR:  # O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR too
                reason = _why(OSError(errno.ELOOP, "")) if os.path.islink(path) else "not a directory"
            raise OutputError(f"{path}: cannot open the directory: {reason}") from None
        try:
            self._check()
        except BaseException:
            os.close(self.fd)
            raise

    def _check(self) -> None:
        status = os.fstat(self.fd)
        if status.st_uid not in (0, os.geteuid()):
            raise OutputError(
                f"{self.path}: owned by uid {status.st_uid}, not by root: refusing to write there"
            )
        if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise OutputError(
                f"{self.path}: writable by group or others (mode {stat.S_IMODE(status.st_mode):04o}): "
                "refusing to write there"
            )

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> SafeDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def where(self, name: str) -> str:
        return os.path.join(self.path, name)

    # -- reading ----------------------------------------------------------------

    def open_existing(self, name: str) -> Optional[int]:
        """A read descriptor of the regular file `name`, or None when there is none."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise OutputError(f"{self.where(name)}: cannot open: {_why(error)}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OutputError(f"{self.where(name)}: not a regular file: refusing to replace it")
        return fd

    def size(self, name: str) -> Optional[int]:
        """The size of the regular file `name`, or None when there is none."""
        try:
            status = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        return status.st_size if stat.S_ISREG(status.st_mode) else None

    def names(self) -> List[str]:
        return os.listdir(self.fd)

    # -- writing ----------------------------------------------------------------

    def replace(self, name: str, data: bytes, keep: bool = False, mode: int = 0o644, sync: bool = True) -> None:
        """Replace `name` with `data` (with `keep`: its current contents followed by `data`),
        through a temporary in the same directory, fsync'd before the rename (without `sync`, for
        a file that does not outlive the boot, in /run: not fsync'd, still replaced whole)."""
        if "/" in name or name in ("", ".", ".."):
            raise OutputError(f"{self.where(name)}: not a file name")
        temporary = f".{name}.{os.getpid()}.tmp"
        self.remove(temporary)  # left by a process that died mid-write
        try:
            fd = os.open(
                temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                mode,
                dir_fd=self.fd,
            )
        except OSError as error:
            raise OutputError(f"{self.where(name)}: cannot create a file in {self.path}: {_why(error)}") from None
        try:
            os.fchmod(fd, mode)  # whatever the umask (the unit's is 0077): node_exporter must read it
            if keep:
                self._copy(name, fd)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        except OSError as error:
            os.close(fd)
            self.remove(temporary)
            raise OutputError(f"{self.where(name)}: writing failed: {_why(error)}") from None
        except BaseException:
            os.close(fd)
            self.remove(temporary)
            raise
        os.close(fd)
        try:
            os.rename(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            if sync:
                os.fsync(self.fd)  # the rename itself
        except OSError as error:
            self.remove(temporary)
            raise OutputError(f"{self.where(name)}: cannot replace: {_why(error)}") from None

    def _copy(self, name: str, out: int) -> None:
        source = self.open_existing(name)
        if source is None:
            return
        try:
            while True:
                try:
                    copied = os.copy_file_range(source, out, _CHUNK)
                except OSError as error:
                    if error.errno not in (errno.ENOSYS, errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP):
                        raise
                    chunk = os.read(source, _CHUNK)
                    copied = len(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view) :]
                if not copied:
                    return
        finally:
            os.close(source)

    def rename(self, old: str, new: str) -> None:
        try:
            os.rename(old, new, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError as error:
            raise OutputError(f"{self.where(old)}: cannot rename to {new}: {_why(error)}") from None

    def remove(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise OutputError(f"{self.where(name)}: cannot remove: {_why(error)}") from None


def make_dir(path: str, mode: int = 0o755) -> None:
    """Make the directory `path` when it is missing (its parent must exist); nothing when it is there
    or cannot be made here: writing in it later checks it as SafeDir does."""
    try:  # noqa: SIM105 (contextlib is not among the daemon's imports)
        os.mkdir(path, mode)
    except OSError:
        pass


def write_file(path: str, data: bytes, mode: int = 0o644, sync: bool = True) -> None:
    """Replace the file at `path` with `data` (SafeDir.replace in its directory); OutputError when it cannot."""
    directory, name = os.path.split(path)
    with SafeDir(directory or ".") as folder:
        folder.replace(name, data, mode=mode, sync=sync)


def read_file(path: str, limit: int) -> Optional[bytes]:
    """The first `limit` bytes of the regular file at `path` in a safe directory, or None when there
    is none; OutputError when the directory or the file is not safe to trust."""
    directory, name = os.path.split(path)
    with SafeDir(directory or ".") as folder:
        fd = folder.open_existing(name)
        if fd is None:
            return None
        try:
            return os.read(fd, limit)
        finally:
            os.close(fd)


def remove_file(path: str) -> None:
    """Remove the file at `path` (nothing when there is none); OutputError when it cannot."""
    directory, name = os.path.split(path)
    with SafeDir(directory or ".") as folder:
        folder.remove(name)


def check_target(path: str) -> None:
    """Raise OutputError when a file could not be written at `path` (the directory's checks, and
    the file itself a regular file or absent); writes nothing."""
    directory, name = os.path.split(path)
    with SafeDir(directory or ".") as folder:
        fd = folder.open_existing(name)
        if fd is not None:
            os.close(fd)
        if not os.access(folder.path, os.W_OK):  # read-only file system (a sandbox) or no permission
            raise OutputError(f"{folder.path}: not writable here (read-only file system or no permission)")
