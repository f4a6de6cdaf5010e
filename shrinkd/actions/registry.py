"""The registry of backends: the one list of them, in the order reclaim prefers them by default.

Everything that knows the backends reads it: the configuration's schema
(`backends.NAME` and its options, `reclaim.prefer`), the daemon's detection
(actions.Backends), `shrinkd doctor`, the commands' choices and replay's
kinds. A new backend is a module in this package that declares a SPEC
(spec.Spec) and one line here. A name not here is an error, never a
fallback.

probe() answers "which backends are present and usable here, and why not
the others", by asking each backend for the files it would write, exactly as
it finds them to act. reclaim_backends() (pure, over that probe) says which
reclaim backends shrinkd has and why not each other one: the daemon's
`started` and `reclaim_unavailable` events, `shrinkd status` and `shrinkd
doctor` give the same lines.
"""

from __future__ import annotations

import os

from . import compact, drop_caches, memory_reclaim, node_reclaim, shrinkmem
from .spec import COMPACT, RECLAIM, Probe, Spec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

    from ..config import Config
    from ..procfs import ProcFS, Tunables

SPECS = (compact.SPEC, node_reclaim.SPEC, memory_reclaim.SPEC, shrinkmem.SPEC, drop_caches.SPEC)

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


def reclaim_backends(
    probes: Sequence[Probe], prefer: Sequence[str], used: Optional[Sequence[str]] = None, as_root: bool = False
) -> List[Tuple[str, Optional[str]]]:
    """Every reclaim backend of the backend registry's probe, in the order reclaim tries them
    (reclaim.prefer, then the others): (name, None) for one shrinkd reclaims with, else (name, why
    not) in a few words. `used` is what the running daemon found (its Backends); without it, the
    probe's usable backends in reclaim.prefer are the ones it would find. With `as_root` (a probe by
    a user for the daemon, which runs as root), files present but not writable by the user count."""
    rank = {name: n for n, name in enumerate(prefer)}
    found: List[Tuple[str, Optional[str]]] = []
    for probe in sorted((p for p in probes if p.kind == "reclaim"), key=lambda p: rank.get(p.name, len(rank))):
        why: Optional[str]
        if used is not None and probe.name in used:
            why = None
        elif not probe.enabled:
            why = "disabled in the configuration"
        elif probe.name not in rank:
            why = "not in reclaim.prefer"
        elif not probe.usable and not (as_root and probe.paths and not probe.writable):
            why = probe.why
        else:
            why = None if used is None else "present, but not there when the daemon last looked for backends"
        found.append((probe.name, why))
    return found


def reclaim_summary(backends: Sequence[Tuple[str, Optional[str]]]) -> str:
    """The reclaim backends shrinkd has, in a few words: "memory_reclaim", or that there is none."""
    have = [name for name, why in backends if why is None]
    return ", ".join(have) if have else "none: reclaim is not possible, rules that may reclaim compact only"


def reclaim_lines(backends: Sequence[Tuple[str, Optional[str]]]) -> List[str]:
    """One line for each reclaim backend shrinkd does not have: `name: why`."""
    return [f"{name}: {why}" for name, why in backends if why is not None]
