"""What a backend declares about itself, and what a probe of it found.

Each backend module (compact.py, shrinkmem.py, ...) defines SPEC, a Spec, and
the registry (registry.py) lists them: the configuration's schema, the
backends the daemon detects, `shrinkd doctor`, the commands' choices and
replay's kinds are all built from those declarations.
"""

from __future__ import annotations

from ..record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Mapping, Optional, Tuple

    from ..procfs import ProcFS, Tunables

    Options = Mapping[str, Any]

COMPACT = "compact"
RECLAIM = "reclaim"


class Spec(Record):
    """A backend's declaration.

    name      its name in the configuration (`backends.NAME`), `reclaim.prefer` and events
    kind      COMPACT or RECLAIM
    what      a few words for `shrinkd doctor` ("cgroup v2 reclaim")
    options   its keys under `backends.NAME` besides `enabled`: {key: (default, choices or None: any text)}
    enabled   whether it is enabled by default
    missing   why it has no files here ("no memory.reclaim (...)")
    make      (procfs, tunables, options, page_size) -> the backend: files() (what it would write,
              found now exactly as it finds them to act), available(), describe(), run()
    """

    __slots__ = ("enabled", "kind", "make", "missing", "name", "options", "what")

    def __init__(
        self,
        name: str,
        kind: str,
        what: str,
        missing: str,
        make: Callable[[ProcFS, Tunables, Options, int], Any],
        options: Optional[Dict[str, Tuple[Any, Optional[Tuple[str, ...]]]]] = None,
        enabled: bool = True,
    ) -> None:
        self.name = name
        self.kind = kind
        self.what = what
        self.missing = missing
        self.make = make
        self.options = options or {}
        self.enabled = enabled


class Probe(Record):
    """What a probe found of one backend here: the files it would use, which of them this process
    may write, whether it is usable (enabled, present, permitted, answering), and if not, why."""

    __slots__ = ("enabled", "kind", "name", "paths", "usable", "what", "why", "writable")

    def __init__(
        self,
        name: str,
        kind: str,
        what: str,
        enabled: bool,
        paths: Tuple[str, ...],
        writable: Tuple[str, ...],
        usable: bool,
        why: str,
    ) -> None:
        self.name = name
        self.kind = kind
        self.what = what
        self.enabled = enabled
        self.paths = paths
        self.writable = writable
        self.usable = usable
        self.why = why
