"""The configuration the daemon runs with, and where it comes from.

Sources, in order: the built-in defaults (identical to config/shrinkd.yaml),
then /etc/shrinkd/shrinkd.yaml and /etc/shrinkd/conf.d/*.yaml in name order
when present, or only the file given with --config. Reading and validating
YAML is shrinkd.configfile's job; errors read
`/etc/shrinkd/shrinkd.yaml:12: rules[0].orders[1]: must be between 0 and 15, got 22`.

The daemon reads its files in a short-lived child process (load_isolated):
PyYAML, the schema and the node trees never occupy the long-running
process's memory; only the validated values come back.

Index levels are kept in the kernel's thousandths, like shrinkd.metrics.
"""

from __future__ import annotations

import os

from .errors import ConfigError
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

    PathLike = Union[str, Path]

# Paths are plain strings: the daemon keeps this module loaded and pathlib is heavy.
DEFAULT_FILE = "/etc/shrinkd/shrinkd.yaml"
DEFAULT_DROPIN_DIR = "/etc/shrinkd/conf.d"
BUILTIN = "<built-in defaults>"

WATERMARKS = ("min", "low", "high")
BACKENDS = ("compact", "shrinkmem", "memory_reclaim", "node_reclaim", "drop_caches")
RECLAIM_BACKENDS = ("shrinkmem", "node_reclaim", "memory_reclaim", "drop_caches")
VMSTAT_COUNTERS = ("compact_stall", "compact_fail", "allocstall")


class Level(Record):
    """A condition starts at `trigger` and ends at `clear` (hysteresis); index levels in thousandths."""

    __slots__ = ("clear", "trigger")

    def __init__(self, trigger: int, clear: int) -> None:
        self.trigger = trigger
        self.clear = clear


class WatermarkLevel(Record):
    """Free pages below the `below` watermark start the condition; at or above `clear` end it."""

    __slots__ = ("below", "clear")

    def __init__(self, below: str, clear: str) -> None:
        self.below = below
        self.clear = clear


class Rule(Record):
    __slots__ = (
        "extfrag_index",
        "min_zone_size",
        "name",
        "node",
        "orders",
        "reclaim",
        "sustain",
        "unusable_index",
        "watermark",
        "zones",
    )

    def __init__(
        self,
        name: str,
        zones: Tuple[str, ...],
        node: Optional[int],
        orders: Tuple[int, ...],
        min_zone_size: int,
        unusable_index: Optional[Level],
        extfrag_index: Optional[Level],
        watermark: Optional[WatermarkLevel],
        sustain: int,
        reclaim: bool,
    ) -> None:
        self.name = name
        self.zones = zones
        self.node = node
        self.orders = orders
        self.min_zone_size = min_zone_size
        self.unusable_index = unusable_index
        self.extfrag_index = extfrag_index
        self.watermark = watermark
        self.sustain = sustain
        self.reclaim = reclaim

    def matches(self, node: int, zone: str) -> bool:
        return (self.node is None or self.node == node) and ("*" in self.zones or zone in self.zones)


class PsiTrigger(Record):
    __slots__ = ("avg10", "clear", "kind", "sustain")

    def __init__(self, kind: str, avg10: float, clear: float, sustain: int) -> None:
        self.kind = kind
        self.avg10 = avg10
        self.clear = clear
        self.sustain = sustain


class RateTrigger(Record):
    __slots__ = ("clear", "counter", "rate", "sustain")

    def __init__(self, counter: str, rate: float, clear: float, sustain: int) -> None:
        self.counter = counter
        self.rate = rate
        self.clear = clear
        self.sustain = sustain


class Poll(Record):
    __slots__ = ("approach", "max_interval", "min_interval")

    def __init__(self, min_interval: float, max_interval: float, approach: float) -> None:
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.approach = approach


class PsiWakeup(Record):
    __slots__ = ("kind", "stall_ms", "wakeup", "window_ms")

    def __init__(self, wakeup: bool, kind: str, stall_ms: int, window_ms: int) -> None:
        self.wakeup = wakeup
        self.kind = kind
        self.stall_ms = stall_ms
        self.window_ms = window_ms


class Reclaim(Record):
    __slots__ = ("max_per_event", "max_per_hour", "min", "prefer", "sync")

    def __init__(self, prefer: Tuple[str, ...], min: int, max_per_event: int, max_per_hour: int, sync: bool) -> None:
        self.prefer = prefer
        self.min = min
        self.max_per_event = max_per_event
        self.max_per_hour = max_per_hour
        self.sync = sync


class Thrash(Record):
    __slots__ = ("backoff", "backoff_max", "psi_some_avg10", "refault_factor", "refault_min", "watch")

    def __init__(
        self,
        watch: float,
        refault_factor: float,
        refault_min: float,
        psi_some_avg10: float,
        backoff: float,
        backoff_max: float,
    ) -> None:
        self.watch = watch
        self.refault_factor = refault_factor
        self.refault_min = refault_min
        self.psi_some_avg10 = psi_some_avg10
        self.backoff = backoff
        self.backoff_max = backoff_max


class Config(Record):
    __slots__ = (
        "cooldown",
        "debug",
        "drop_caches_what",
        "dry_run",
        "enabled",
        "log_target",
        "poll",
        "psi",
        "psi_trigger",
        "rate_triggers",
        "reclaim",
        "rules",
        "shrinkmem_device",
        "sources",
        "thrash",
    )

    def __init__(
        self,
        poll: Poll,
        psi: PsiWakeup,
        rules: Tuple[Rule, ...],
        psi_trigger: Optional[PsiTrigger],
        rate_triggers: Tuple[RateTrigger, ...],
        enabled: Tuple[str, ...],
        shrinkmem_device: str,
        drop_caches_what: str,
        reclaim: Reclaim,
        cooldown: float,
        thrash: Thrash,
        log_target: str,
        debug: bool,
        dry_run: bool,
        sources: Tuple[str, ...],
    ) -> None:
        self.poll = poll
        self.psi = psi
        self.rules = rules
        self.psi_trigger = psi_trigger
        self.rate_triggers = rate_triggers
        self.enabled = enabled
        self.shrinkmem_device = shrinkmem_device
        self.drop_caches_what = drop_caches_what
        self.reclaim = reclaim
        self.cooldown = cooldown
        self.thrash = thrash
        self.log_target = log_target
        self.debug = debug
        self.dry_run = dry_run
        self.sources = sources

    def backend_enabled(self, name: str) -> bool:
        return name in self.enabled


def _level(plain: Optional[Dict[str, Any]]) -> Optional[Level]:
    if plain is None:
        return None
    return Level(round(plain["trigger"] * 1000), round(plain["clear"] * 1000))


def from_plain(plain: Dict[str, Any], sources: Sequence[str] = (BUILTIN,)) -> Config:
    """Build the runtime Config from a validated plain tree (as configfile.validate() returns)."""
    rules = tuple(
        Rule(
            name=r["name"],
            zones=tuple(r["zones"]),
            node=r["node"],
            orders=tuple(r["orders"]),
            min_zone_size=r["min_zone_size"],
            unusable_index=_level(r["unusable_index"]),
            extfrag_index=_level(r["extfrag_index"]),
            watermark=WatermarkLevel(**r["watermark"]) if r["watermark"] is not None else None,
            sustain=r["sustain"],
            reclaim=r["reclaim"],
        )
        for r in plain["rules"]
    )
    triggers = plain["triggers"]
    backends = plain["backends"]
    guards = plain["guards"]
    return Config(
        poll=Poll(**plain["poll"]),
        psi=PsiWakeup(**plain["psi"]),
        rules=rules,
        psi_trigger=PsiTrigger(**triggers["psi"]) if triggers["psi"] is not None else None,
        rate_triggers=tuple(RateTrigger(**t) for t in triggers["vmstat"]),
        enabled=tuple(name for name in BACKENDS if backends[name]["enabled"]),
        shrinkmem_device=backends["shrinkmem"]["device"],
        drop_caches_what=backends["drop_caches"]["what"],
        reclaim=Reclaim(**{**plain["reclaim"], "prefer": tuple(plain["reclaim"]["prefer"])}),
        cooldown=guards["cooldown"],
        thrash=Thrash(**guards["thrash"]),
        log_target=plain["log"]["target"],
        debug=plain["log"]["debug"],
        dry_run=plain["dry_run"],
        sources=tuple(sources),
    )


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> Optional[int]:
    """'64M' -> bytes (K, M, G are powers of 1024; '64MiB' and '64MB' read the same); None if malformed."""
    cleaned = text.strip().upper()
    for suffix in ("IB", "B"):
        if cleaned.endswith(suffix) and cleaned[: -len(suffix)][-1:] in ("K", "M", "G"):
            cleaned = cleaned[: -len(suffix)]
            break
    unit = cleaned[-1:] if cleaned[-1:] in _SIZE_UNITS else ""
    number = cleaned[: len(cleaned) - len(unit)]
    if not number.isdigit():
        return None
    return int(number) * _SIZE_UNITS[unit]


# ---------------------------------------------------------------------------
# Finding and loading files.


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
