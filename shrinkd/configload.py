"""Finding the configuration files and loading them, in this process or in a short-lived child.

Sources, in order: the built-in defaults (identical to config/shrinkd.yaml),
then /etc/shrinkd/shrinkd.yaml and /etc/shrinkd/conf.d/*.yaml in name order
when present, or only the file given with --config. Reading and validating
YAML is shrinkd.configfile's job; errors read
`/etc/shrinkd/shrinkd.yaml:12: rules[0].orders[1]: must be between 0 and 15, got 22`.

The daemon reads its files in a short-lived child process (load_isolated):
PyYAML, the schema and the node trees never occupy the long-running
process's memory; only the validated plain values come back.
"""

from __future__ import annotations

import os

from .config import BUILTIN, from_plain
from .errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, List, Optional, Sequence, Tuple, Union

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


def resolve(config_file: Optional[PathLike]) -> List[str]:
    """The files to read: the one given on the command line, else the default ones."""
    if config_file is not None:
        return [str(config_file)]
    return default_sources()


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

                payload = ("ok", configfile.load_plain(paths))
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
    return from_plain(value, [str(p) for p in paths] or [BUILTIN])
