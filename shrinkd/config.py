"""The configuration the daemon runs with, as frozen records, and the one place it is held.

config/shrinkd.yaml documents every key. Reading, merging and validating YAML
is shrinkd.configfile's job and finding the files and reading them in a child
process is shrinkd.configload's; both end here, in from_plain(), which turns
validated plain values into a Config. Rules and triggers are the conditions'
own records (shrinkd.conditions). Current holds the configuration in force:
the daemon replaces it on reload, the policy and the backends read it.

Index levels are kept in the kernel's thousandths, like shrinkd.metrics.
"""

from __future__ import annotations

from .conditions import GLOBAL_KINDS, ORDER_NAMES, WATERMARKS, Level, Rule, WatermarkLevel
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Sequence, Tuple

    from .conditions import GlobalCondition

__all__ = ["ORDER_NAMES", "WATERMARKS", "Config", "Current", "Level", "Rule", "WatermarkLevel", "from_plain", "parse_size"]

BUILTIN = "<built-in defaults>"

VMSTAT_COUNTERS = ("compact_stall", "compact_fail", "allocstall", "thp_fault_fallback", "thp_collapse_alloc_failed")
# /proc/vmstat counters whose growth is an allocation failure (or a stall on the way to one).
FAILURE_COUNTERS = ("compact_fail", "compact_stall", "thp_fault_fallback", "thp_collapse_alloc_failed")


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


class Failures(Record):
    """What is watched for allocation failures: the kernel's log, and counters in /proc/vmstat."""

    __slots__ = ("counters", "kernel_log")

    def __init__(self, kernel_log: bool, counters: Tuple[str, ...]) -> None:
        self.kernel_log = kernel_log
        self.counters = counters


class Reclaim(Record):
    __slots__ = ("max_per_event", "max_per_hour", "min", "prefer", "sync", "vfs_cache_pressure")

    def __init__(
        self,
        prefer: Tuple[str, ...],
        min: int,
        max_per_event: int,
        max_per_hour: int,
        sync: bool,
        vfs_cache_pressure: Optional[int],
    ) -> None:
        self.prefer = prefer
        self.min = min
        self.max_per_event = max_per_event
        self.max_per_hour = max_per_hour
        self.sync = sync
        self.vfs_cache_pressure = vfs_cache_pressure  # during a reclaim after a compaction; None: untouched


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


class Recording(Record):
    """`record`: the trace the daemon keeps (shrinkd.trace); path None: none."""

    __slots__ = ("interval", "max_size", "path")

    def __init__(self, path: Optional[str], max_size: int, interval: float) -> None:
        self.path = path
        self.max_size = max_size
        self.interval = interval


class Prometheus(Record):
    """`prometheus`: the textfile for node_exporter (shrinkd.prom); textfile None: none."""

    __slots__ = ("interval", "textfile")

    def __init__(self, textfile: Optional[str], interval: float) -> None:
        self.textfile = textfile
        self.interval = interval


class Config(Record):
    """Everything shrinkd runs with (docs/config.md); `sources` names the files it came from."""

    __slots__ = (
        "backend_settings",
        "cooldown",
        "cooldown_max",
        "debug",
        "dry_run",
        "enabled",
        "failures",
        "log_target",
        "poll",
        "prometheus",
        "psi",
        "reclaim",
        "record",
        "rules",
        "shrinkmem_device",
        "sources",
        "thrash",
        "triggers",
    )

    def __init__(
        self,
        poll: Poll,
        psi: PsiWakeup,
        rules: Tuple[Rule, ...],
        triggers: Tuple[GlobalCondition, ...],
        enabled: Tuple[str, ...],
        failures: Failures,
        shrinkmem_device: str,
        backend_settings: Tuple[Tuple[str, Tuple[Tuple[str, Any], ...]], ...],
        reclaim: Reclaim,
        cooldown: float,
        cooldown_max: float,
        thrash: Thrash,
        log_target: str,
        debug: bool,
        dry_run: bool,
        sources: Tuple[str, ...],
        record: Recording,
        prometheus: Prometheus,
    ) -> None:
        self.poll = poll
        self.psi = psi
        self.rules = rules
        self.triggers = triggers  # the global conditions (PSI, vmstat rates), as configured
        self.enabled = enabled
        self.failures = failures
        self.shrinkmem_device = shrinkmem_device
        self.backend_settings = backend_settings  # each backend's options (backends.NAME, less `enabled`)
        self.reclaim = reclaim
        self.cooldown = cooldown
        self.cooldown_max = cooldown_max  # the bound of a cooldown doubled after actions that bought nothing
        self.thrash = thrash
        self.log_target = log_target
        self.debug = debug
        self.dry_run = dry_run
        self.sources = sources
        self.record = record  # files shrinkd writes besides the journal
        self.prometheus = prometheus

    def backend_enabled(self, name: str) -> bool:
        return name in self.enabled

    def backend_options(self, name: str) -> Dict[str, Any]:
        """A backend's options as configured (`backends.NAME`, less `enabled`)."""
        return dict(next((options for known, options in self.backend_settings if known == name), ()))


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
            predict=r["predict"]["horizon"] if r["predict"] is not None else None,
            reserve=r["reserve"]["size"] if r["reserve"] is not None else None,
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
        triggers=tuple(trigger for kind in GLOBAL_KINDS for trigger in kind.from_plain(triggers)),
        enabled=tuple(name for name, values in backends.items() if values["enabled"]),
        failures=Failures(plain["failures"]["kernel_log"], tuple(plain["failures"]["counters"])),
        shrinkmem_device=backends["shrinkmem"]["device"],
        backend_settings=tuple(
            (name, tuple((key, value) for key, value in values.items() if key != "enabled"))
            for name, values in backends.items()
        ),
        reclaim=Reclaim(**{**plain["reclaim"], "prefer": tuple(plain["reclaim"]["prefer"])}),
        cooldown=guards["cooldown"],
        cooldown_max=guards["cooldown_max"],
        thrash=Thrash(**guards["thrash"]),
        log_target=plain["log"]["target"],
        debug=plain["log"]["debug"],
        dry_run=plain["dry_run"],
        sources=tuple(sources),
        record=Recording(**plain["record"]),
        prometheus=Prometheus(**plain["prometheus"]),
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
    # str.isdigit() alone also takes what int() refuses: "²", more than 4300 digits.
    if not (number.isascii() and number.isdigit()) or len(number) > 30:
        return None
    return int(number) * _SIZE_UNITS[unit]


class Current:
    """The configuration in force, held once: the daemon replaces it on reload; the policy and the backends read it."""

    __slots__ = ("config",)

    def __init__(self, config: Config) -> None:
        self.config = config
