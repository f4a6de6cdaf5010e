"""The registry of backends: the one list of them, in the order reclaim prefers them by default.

Everything that knows the backends reads it: the configuration's schema
(`backends.NAME` and its options, `reclaim.prefer`), the daemon's detection
(actions.Backends), `shrinkd doctor`, the commands' choices and replay's
kinds. A new backend is a module in this package that declares a SPEC
(spec.Spec) and one line here. A name not here is an error, never a
fallback.

probe() answers "which backends are present and usable here, and why not
the others", by asking each backend for the files it would write, exactly as
it finds them to act.
"""

from __future__ import annotations

import os

from . import compact, drop_caches, memory_reclaim, node_reclaim, shrinkmem
from .spec import COMPACT, RECLAIM, Probe, Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, FrozenSet, Iterable, List, Optional

    from ..config import Config
    from ..procfs import ProcFS, Tunables

SPECS = (compact.SPEC, shrinkmem.SPEC, node_reclaim.SPEC, memory_reclaim.SPEC, drop_caches.SPEC)

BY_NAME: Dict[str, Spec] = {spec.name: spec for spec in SPECS}
NAMES = tuple(BY_NAME)
RECLAIM_NAMES = tuple(spec.name for spec in SPECS if spec.kind == RECLAIM)

__all__ = ["COMPACT", "NAMES", "RECLAIM", "RECLAIM_NAMES", "SPECS", "Probe", "Spec", "get", "kinds", "probe", "unknown"]


def unknown(names: Iterable[str]) -> List[str]:
    """The names that are no backend's."""
    return [name for name in names if name not in BY_NAME]


def get(name: str) -> Spec:
    """The declaration of backend `name`; KeyError naming the known ones for any other name."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no backend {name!r} (backends: {', '.join(NAMES)})") from None


def kinds(names: Iterable[str]) -> FrozenSet[str]:
    """The kinds of step (COMPACT, RECLAIM) the named backends can take."""
    return frozenset(get(name).kind for name in names)


def probe(procfs: ProcFS, config: Config, tunables: Optional[Tunables] = None, page_size: int = 4096) -> List[Probe]:
    """Every backend, as this system and `config` have it: present (the files it would write), permitted
    (writable by this process), usable (enabled, permitted, and the backend's own check passes), and
    why not where it is not. In the registry's order."""
    from ..procfs import Tunables

    tunables = tunables or Tunables()
    found: List[Probe] = []
    for spec in SPECS:
        enabled = config.backend_enabled(spec.name)
        backend = spec.make(procfs, tunables, config.backend_options(spec.name), page_size)
        paths = tuple(backend.files())
        writable = tuple(path for path in paths if os.access(path, os.W_OK))
        if not paths:
            why = spec.missing
        elif not writable:
            why = "not writable by this user"
        elif not backend.available():
            why = "present but not usable"
        elif not enabled:
            why = "disabled in the configuration"
        else:
            why = ""
        found.append(Probe(spec.name, spec.kind, spec.what, enabled, paths, writable, not why, why))
    return found
