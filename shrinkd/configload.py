"""Finding the configuration files and loading them, in this process or in a short-lived child.

Sources, in order: the built-in defaults (identical to config/shrinkd.yaml),
then /etc/shrinkd/shrinkd.yaml and /etc/shrinkd/conf.d/*.yaml in name order
when present, or only the file given with --config. Reading and validating
YAML is shrinkd.configfile's job; errors read
`/etc/shrinkd/shrinkd.yaml:12: rules[0].orders[1]: must be between 0 and 15, got 22`.

Only root steers a root daemon (docs/security.md): resolve() refuses a
file, or the drop-in directory, that someone other than root could change,
as sshd's StrictModes and sudo do. The file itself, every directory above it
and, through a symlink, every directory on the way to its target must be
owned by root (or by the user shrinkd runs as) and not writable by group or
others; a directory writable by others passes only with the sticky bit (as
/tmp), where no one can rename or remove what root owns. The error is one
line: `/etc/shrinkd/shrinkd.yaml: owner alice (uid 1000), mode 0644: not
owned by root`. `check-config FILE` only warns, so anyone can check a file.

The daemon reads its files in a short-lived child process (load_isolated):
PyYAML, the schema and the node trees never occupy the long-running
process's memory; only the validated plain values come back.
"""

from __future__ import annotations

import os
import stat

from .config import BUILTIN, from_plain
from .errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

    from .config import Config

    PathLike = Union[str, Path]

# Paths are plain strings: the daemon keeps this module loaded and pathlib is heavy.
DEFAULT_FILE = "/etc/shrinkd/shrinkd.yaml"
DEFAULT_DROPIN_DIR = "/etc/shrinkd/conf.d"


def default_sources(main: PathLike = DEFAULT_FILE, dropins: PathLike = DEFAULT_DROPIN_DIR) -> List[str]:
    """The main file (when present) and the drop-ins, in name order."""
    sources = [str(main)] if os.path.exists(main) else []
    try:
        names = sorted(entry.name for entry in os.scandir(dropins) if entry.name.endswith(".yaml"))
    except (FileNotFoundError, NotADirectoryError):
        names = []
    except OSError as error:
        raise ConfigError(str(dropins), None, "", f"cannot list: {error.strerror or error}") from None
    sources.extend(os.path.join(dropins, name) for name in names)
    return sources


def resolve(
    config_file: Optional[PathLike],
    warn: Optional[Callable[[str], None]] = None,
    owners: Optional[Iterable[int]] = None,
    main: PathLike = DEFAULT_FILE,
    dropins: PathLike = DEFAULT_DROPIN_DIR,
) -> List[str]:
    """The files to read: the one given on the command line, else the default ones.

    Each file, and the drop-in directory, must be trusted (untrusted(), by
    `owners`): one that is not is a ConfigError, or with `warn` (check-config
    of a file given to it) a message passed to warn() and the file is read anyway.
    """
    if config_file is not None:
        paths = [str(config_file)]
        checked = paths
    else:
        paths = default_sources(main, dropins)
        checked = ([str(dropins)] if os.path.isdir(dropins) else []) + paths
    for path in checked:
        problem = untrusted(path, owners)
        if problem is None:
            continue
        if warn is None:
            raise ConfigError(path, None, "", problem)
        if not problem.startswith(UNREADABLE):  # reading it will say so
            warn(f"{path}: {problem}")
    return paths


# -- trust ------------------------------------------------------------------------

MAX_SYMLINKS = 40  # as the kernel's path walk
UNREADABLE = "cannot read: "  # as configfile.read_file says it


def trusted_owners() -> Tuple[int, ...]:
    """Who may own the configuration: root, and the user shrinkd runs as (the same when it runs as root)."""
    return (0, os.geteuid())


def untrusted(path: str, owners: Optional[Iterable[int]] = None) -> Optional[str]:
    """Why `path` cannot be trusted (owner, mode, what is wrong), or None when only `owners` can change it.

    Like sshd's StrictModes (secure_filename) and sudo: the file must be owned
    by an owner in `owners` (default trusted_owners()) and not be writable by
    group or others; so must every directory on the way to it, or whoever
    can write one of them could put another file in its place. A directory
    writable by others with the sticky bit set (/tmp) is the exception: there
    no one can rename or remove what another user owns. A path that does not
    exist, or cannot be walked, "cannot read".
    """
    allowed = frozenset(trusted_owners() if owners is None else owners)
    try:
        walked = _walk(path)
    except OSError as error:
        # Refused here, not left to the reader: a file that appeared since would be read unchecked.
        return f"{UNREADABLE}{error.strerror or error}"
    *directories, (last, info) = walked
    for directory, above in directories:
        problem = _problem(above, allowed, directory=True)
        if problem is not None:
            return f"directory {directory}: {_describe(above)}: {problem}"
    problem = _problem(info, allowed, directory=stat.S_ISDIR(info.st_mode))
    if problem is None:
        return None
    target = "" if last == os.path.normpath(os.path.join(os.getcwd(), path)) else f"target {last}: "
    return f"{target}{_describe(info)}: {problem}"


def _problem(info: os.stat_result, owners: frozenset[int], directory: bool) -> Optional[str]:
    mode = info.st_mode
    if info.st_uid not in owners:
        return "not owned by " + " or ".join("root" if uid == 0 else f"uid {uid}" for uid in sorted(owners))
    if not directory and not stat.S_ISREG(mode):
        return "not a regular file"
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not (directory and mode & stat.S_ISVTX):
        return "writable by group or others"
    return None


def _describe(info: os.stat_result) -> str:
    import pwd

    try:
        name = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        name = "?"
    owner = "root" if info.st_uid == 0 else f"{name} (uid {info.st_uid})"
    return f"owner {owner}, mode {stat.S_IMODE(info.st_mode):04o}"


def _walk(path: str) -> List[Tuple[str, os.stat_result]]:
    """Each directory passed through on the way to `path`, and the file itself, symlinks followed, with their stat.

    A symlink's target is walked from its own directory (or from / when
    absolute), as the kernel does, so the directories that hold each link of
    a chain are checked too.
    """
    # Not os.path.abspath: it would fold "link/.." before the link is followed.
    pending = (path if path.startswith("/") else os.path.join(os.getcwd(), path)).split("/")[::-1]
    current = "/"
    walked = [("/", os.stat("/"))]
    links = 0
    while pending:
        name = pending.pop()
        if name in ("", "."):
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, name)
        info = os.lstat(candidate)
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(40, "Too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = "/"
            pending.extend(target.split("/")[::-1])
            continue
        current = candidate
        walked.append((candidate, info))
    return walked


def builtin() -> Config:
    """The built-in defaults (read in this process)."""
    return load([])


def load(paths: Sequence[PathLike]) -> Config:
    """Read, merge and validate `paths` in this process (no paths: the built-in defaults)."""
    from . import configfile

    return from_plain(configfile.load_plain(paths), [str(p) for p in paths] or [BUILTIN])


def load_isolated(paths: Sequence[PathLike]) -> Config:
    """load(), with the reading done in a child process that exits afterwards.

    Importing PyYAML and the schema and building node trees costs a few
    megabytes that a long-running daemon would keep for its whole life; the
    child sends back only the validated plain values (marshal).
    """
    return load_checked(paths, None)[0]


def load_checked(paths: Sequence[PathLike], check: Optional[Callable[[Config], Any]]) -> Tuple[Config, Any]:
    """load_isolated(), and `check` run on the configuration in the child too: (the configuration,
    what `check` returned, which must be plain values marshal carries; None without a check).

    The daemon judges each configuration it loads against the system (shrinkd.judgement): done in
    the child, the judgement's code and what it reads stay out of the daemon's memory.
    """
    import marshal

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read, send, and exit without running the parent's cleanup
        status = 0
        try:
            os.close(read_end)
            payload: Tuple[str, Any]
            try:
                from . import configfile

                plain = configfile.load_plain(paths)
                checked = None if check is None else check(from_plain(plain, [str(p) for p in paths] or [BUILTIN]))
                payload = ("ok", (plain, checked))
            except ConfigError as error:
                payload = ("error", (error.source, error.line, error.key, error.problem))
            except Exception as error:  # a bug: reported by the parent
                payload = ("bug", f"{type(error).__name__}: {error}")
            view = memoryview(marshal.dumps(payload))
            while view:
                view = view[os.write(write_end, view) :]
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    try:
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    if not chunks:
        raise ConfigError(", ".join(map(str, paths)) or BUILTIN, None, "", "the configuration reader failed")
    kind, value = marshal.loads(b"".join(chunks))
    if kind == "error":
        raise ConfigError(*value)
    if kind == "bug":
        raise RuntimeError(value)
    plain, checked = value
    return from_plain(plain, [str(p) for p in paths] or [BUILTIN]), checked
