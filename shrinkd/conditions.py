"""Conditions: every kind of thing shrinkd watches, behind one interface.

A condition is one watched value with a trigger level and a clear level:
the unusable or fragmentation index of one zone at one order, a zone's free
pages against its watermarks (one rule, one zone, one order each), PSI memory
pressure, or the rate of a /proc/vmstat counter (one configured trigger each).
The policy keeps their state (sustain counts, hysteresis, cooldowns); the
daemon, the events and the status line only call the interface below.
Pure: no I/O; values come from an Observation (shrinkd.view).

The interface, which every kind implements:

  name, kind        "huge:unusable_index" / "unusable_index"; "psi:some" / "psi"
  target            what a decision is about: one decision per target per poll,
                    and the cooldown after acting is per target
  where()           "node 0 zone DMA32 order 9", "all nodes"
  origin            the configuration entry it comes from (a Rule, or the trigger
                    itself): after a reload, a condition whose origin is gone or
                    changed starts afresh
  owner             the rule or trigger it belongs to, by name
  zone_key          (node, zone name) of a zone condition, None for a global one;
                    the status line names the zone condition nearest its trigger
  sustain           polls at or over the trigger level before it holds
  node              the node a compaction for it aims at (None: all nodes)
  compacts          whether compaction can help (a watermark needs free pages)
  reclaims          whether the ladder may reclaim for it
  reads_zoneinfo    whether every poll must parse /proc/zoneinfo for it
  counters          the /proc/vmstat counters it needs every poll
  reads_psi         whether every poll must read /proc/pressure/memory for it
  value(obs, recent) its value this poll, or None (recent: what successive
                    observations tell: rates, failures, free blocks over time)
  measure(obs)      its value from one fresh observation, around actions; None
                    where that needs an interval (a rate)
  holds_unmeasured  whether it still holds when measure() gives None
  missing(obs)      why value() is None, when that deserves a warning (said once)
  over(v, obs)      at or beyond the trigger level
  clear(v, obs)     at or beyond the clear level
  closeness(v, obs) 1.0 at the trigger level, 0 far from it (the poll interval)
  deficit_pages(obs) pages reclaim must free to reach the clear level
  progress(before, after, obs) the share of the way from `before` to the clear
                    level that `after` covers (1: there, 0: no change, negative:
                    worse), or None where it cannot be told: how the policy judges
                    whether actions bought anything (zone kinds only)
  text(v)           for messages: "1.000", "812 free pages", "12.00%", "3.50/s"
  field(v)          for the journal's value fields: "1.000", "812", "12.00"
  fields()          the journal fields naming it (trigger, rule, metric, threshold, ...)
  renewed(recent, acted_at) whether evidence that came after its last action (at
                    acted_at) is reason to act again before the cooldown ends

A new kind of trigger is a subclass here (zone kinds are listed in
ZONE_KINDS, global ones in GLOBAL_KINDS, both filled as classes are defined)
plus its keys in the configuration schema (shrinkd.configfile). A zone kind
with `per_node` set is one condition per node (its `zone` is NODE_WIDE) over
every zone of the node the rule watches, as a reserve is.

Index levels are in the kernel's thousandths, like shrinkd.metrics.
"""

from __future__ import annotations

from . import metrics
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

    from .view import Failure, Observation, Recent, ZoneView

WATERMARKS = ("min", "low", "high")

# Orders a rule may name by what they are for; the running kernel says what each is
# (procfs.ProcFS.named_orders):
#   huge       the PMD huge page (THP's hpage_pmd_size; 9 with 4 KiB pages, 11 with 16 KiB)
#   pageblock  the page block, the unit of migrate types and compaction (/proc/pagetypeinfo)
#   costly     PAGE_ALLOC_COSTLY_ORDER (3): above it the allocator gives up sooner
ORDER_NAMES = ("huge", "pageblock", "costly")


def no_order(given: object) -> str:
    """The start of the judgement's warning for an order name this kernel cannot resolve (the daemon,
    told it at start, does not say it again at its first poll)."""
    return f"this kernel has no {given} order"


# The `zone` of a condition kept per node (ZoneCondition.per_node): all the node's zones its rule watches.
NODE_WIDE = "*"

# shrinkd's counters that the kernel splits: allocstall per zone since 4.8 (one
# allocstall before), workingset_refault per LRU type since 5.9 (one before).
SPLIT_COUNTERS = {
    "allocstall": (
        "allocstall",
        "allocstall_dma",
        "allocstall_dma32",
        "allocstall_normal",
        "allocstall_high",
        "allocstall_movable",
        "allocstall_device",
    ),
    "workingset_refault": ("workingset_refault", "workingset_refault_anon", "workingset_refault_file"),
}


def counter_keys(name: str) -> Tuple[str, ...]:
    """The /proc/vmstat keys behind one of shrinkd's counter names."""
    return SPLIT_COUNTERS.get(name, (name,))


def counter(vmstat: Mapping[str, int], name: str) -> Optional[int]:
    """A vmstat counter by shrinkd's name, summing the kernel's split counters; None when absent."""
    parts = [vmstat[key] for key in counter_keys(name) if key in vmstat]
    return sum(parts) if parts else None


# ---------------------------------------------------------------------------
# What the configuration says about zones.


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
    """Zone conditions to watch in the zones it matches, at each of its orders."""

    __slots__ = (
        "extfrag_index",
        "min_zone_size",
        "name",
        "node",
        "orders",
        "predict",
        "reclaim",
        "reserve",
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
        orders: Tuple[Union[int, str], ...],
        min_zone_size: int,
        unusable_index: Optional[Level],
        extfrag_index: Optional[Level],
        watermark: Optional[WatermarkLevel],
        sustain: int,
        reclaim: bool,
        predict: Optional[float] = None,
        reserve: Optional[int] = None,
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
        self.predict = predict  # seconds: act when free blocks are predicted to run out this soon
        self.reserve = reserve  # bytes to keep free in blocks of each order, per node

    def matches(self, node: int, zone: str) -> bool:
        return (self.node is None or self.node == node) and ("*" in self.zones or zone in self.zones)

    def watches(self, zone: ZoneView, page_size: int) -> bool:
        """Whether the rule watches `zone`: it matches the zone's node and name, and the zone is large enough
        (a zone of unknown size, without /proc/zoneinfo, is watched)."""
        if not self.matches(zone.node, zone.zone):
            return False
        return zone.managed is None or zone.managed * page_size >= self.min_zone_size

    def resolved_orders(self, named: Mapping[str, Optional[int]]) -> List[Tuple[Union[int, str], Optional[int]]]:
        """Each of `orders` as given (a number or a name) with the order it stands for (None: unknown here)."""
        return [(order, named.get(order) if isinstance(order, str) else order) for order in self.orders]


# ---------------------------------------------------------------------------
# The interface.

# Every kind, in the order they are checked: filled as the classes below are defined.
ZONE_KINDS: List[Type[ZoneCondition]] = []
GLOBAL_KINDS: List[Type[GlobalCondition]] = []


class Condition(Record):
    """One watched value with a trigger and a clear level (the module docstring lists the interface)."""

    __slots__: Tuple[str, ...] = ()

    kind: ClassVar[str] = ""
    compacts: ClassVar[bool] = True
    reads_zoneinfo: ClassVar[bool] = False
    reads_psi: ClassVar[bool] = False
    holds_unmeasured: ClassVar[bool] = True

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def target(self) -> Tuple[str, int, str]:
        return ("global", -1, self.name)

    @property
    def origin(self) -> object:
        return self

    @property
    def owner(self) -> str:
        return self.name

    @property
    def zone_key(self) -> Optional[Tuple[int, str]]:
        return None

    @property
    def sustain(self) -> int:
        raise NotImplementedError

    @property
    def node(self) -> Optional[int]:
        return None

    @property
    def reclaims(self) -> bool:
        return False

    @property
    def counters(self) -> Tuple[str, ...]:
        return ()

    def where(self) -> str:
        return "all nodes"

    def value(self, obs: Observation, recent: Recent) -> Optional[float]:
        raise NotImplementedError

    def measure(self, obs: Observation) -> Optional[float]:
        return None

    def missing(self, obs: Observation) -> Optional[str]:
        return None

    def over(self, value: float, obs: Observation) -> bool:
        raise NotImplementedError

    def clear(self, value: float, obs: Observation) -> bool:
        raise NotImplementedError

    def closeness(self, value: float, obs: Observation) -> float:
        raise NotImplementedError

    def deficit_pages(self, obs: Observation) -> int:
        return 0

    def progress(self, before: float, after: float, obs: Observation) -> Optional[float]:
        return None

    def text(self, value: float) -> str:
        raise NotImplementedError

    def field(self, value: float) -> str:
        raise NotImplementedError

    def fields(self) -> Dict[str, object]:
        raise NotImplementedError

    def renewed(self, recent: Recent, acted_at: float) -> bool:
        return False


# ---------------------------------------------------------------------------
# Zone conditions: one rule, one zone, one order.


class ZoneCondition(Condition):
    """A condition of one rule in one zone at one order (or, for a `per_node` kind, in one node)."""

    __slots__ = ("_hash", "order", "page_size", "rule", "zone", "zone_node")

    holds_unmeasured = False
    per_node: ClassVar[bool] = False  # one condition per node over the zones the rule watches (zone NODE_WIDE)

    def __init__(self, rule: Rule, node: int, zone: str, order: int, page_size: int = 4096) -> None:
        self.rule = rule
        self.zone_node = node
        self.zone = zone
        self.order = order
        self.page_size = page_size
        self._hash = hash((type(self).__name__, rule, node, zone, order))  # looked up every poll

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:  # a concrete kind, not an intermediate class
            ZONE_KINDS.append(cls)

    def __hash__(self) -> int:
        return self._hash

    def _values(self) -> Tuple[Any, ...]:
        return (self.rule, self.zone_node, self.zone, self.order)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.rule.name!r}, {self.zone_node}, {self.zone!r}, {self.order})"

    # -- what the rule asks for -------------------------------------------------

    @classmethod
    def configured(cls, rule: Rule) -> bool:
        """Whether `rule` sets this kind of condition."""
        raise NotImplementedError

    @classmethod
    def unwatchable(cls, rule: Rule, zone: ZoneView) -> Optional[str]:
        """Why this kind cannot be watched in `zone` (a warning, said once), or None."""
        return None

    # -- the interface -------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.rule.name}:{self.kind}"

    @property
    def target(self) -> Tuple[str, int, str]:
        return ("zone", self.zone_node, self.zone)

    @property
    def origin(self) -> object:
        return self.rule

    @property
    def owner(self) -> str:
        return self.rule.name

    @property
    def zone_key(self) -> Optional[Tuple[int, str]]:
        return (self.zone_node, self.zone)

    @property
    def sustain(self) -> int:
        return self.rule.sustain

    @property
    def node(self) -> Optional[int]:
        return self.zone_node

    @property
    def reclaims(self) -> bool:
        return self.rule.reclaim

    def where(self) -> str:
        return f"node {self.zone_node} zone {self.zone} order {self.order}"

    def value(self, obs: Observation, recent: Recent) -> Optional[float]:
        return self.measure(obs)

    def _zone(self, obs: Observation) -> Optional[ZoneView]:
        zone = obs.zones.get((self.zone_node, self.zone))
        return zone if zone is not None and self.order < len(zone.free) else None

    def fields(self) -> Dict[str, object]:
        return {
            "trigger": self.name,
            "rule": self.rule.name,
            "metric": self.kind,
            "node": self.zone_node,
            "zone": self.zone,
            "order": self.order,
            **self._thresholds(),
        }

    def _thresholds(self) -> Dict[str, object]:
        raise NotImplementedError


class IndexCondition(ZoneCondition):
    """A fragmentation index of the zone at the order, in thousandths, against a Level."""

    __slots__ = ()

    @classmethod
    def level_of(cls, rule: Rule) -> Optional[Level]:
        raise NotImplementedError

    @classmethod
    def configured(cls, rule: Rule) -> bool:
        return cls.level_of(rule) is not None

    @property
    def level(self) -> Level:
        level = self.level_of(self.rule)
        assert level is not None
        return level

    def over(self, value: float, obs: Observation) -> bool:
        return value >= self.level.trigger

    def clear(self, value: float, obs: Observation) -> bool:
        return value <= self.level.clear

    def closeness(self, value: float, obs: Observation) -> float:
        return max(value, 0.0) / self.level.trigger

    def progress(self, before: float, after: float, obs: Observation) -> Optional[float]:
        return _share(after - before, self.level.clear - before)

    def text(self, value: float) -> str:
        return metrics.format_index(int(value))

    def field(self, value: float) -> str:
        return metrics.format_index(int(value))

    def _thresholds(self) -> Dict[str, object]:
        level = self.level
        return {"threshold": metrics.format_index(level.trigger), "clear": metrics.format_index(level.clear)}


class UnusableIndex(IndexCondition):
    """The unusable free index (debugfs extfrag/unusable_index): free memory in blocks smaller than the order."""

    __slots__ = ()
    kind = "unusable_index"

    @classmethod
    def level_of(cls, rule: Rule) -> Optional[Level]:
        return rule.unusable_index

    def measure(self, obs: Observation) -> Optional[float]:
        zone = self._zone(obs)
        return metrics.unusable_index(zone.free, self.order) if zone is not None else None

    def deficit_pages(self, obs: Observation) -> int:
        """With F free pages of which S are in blocks of the order, reclaiming R pages that
        coalesce into such blocks gives (F - S) / (F + R): at most the clear level c when
        R >= (F - S) / c - F."""
        zone = obs.zones[(self.zone_node, self.zone)]
        info = metrics.contig_info(zone.free, self.order)
        unusable = info.free_pages - (info.blocks_suitable << self.order)
        clear = self.level.clear
        if clear <= 0:
            return unusable if unusable > 0 else 0
        needed = -(-unusable * 1000 // clear) - info.free_pages  # ceil division
        return max(needed, 0)


class ExtfragIndex(IndexCondition):
    """The fragmentation index (debugfs extfrag/extfrag_index): towards 1, a failure at the order would be
    for fragmentation; -1 while an allocation of the order succeeds."""

    __slots__ = ()
    kind = "extfrag_index"

    @classmethod
    def level_of(cls, rule: Rule) -> Optional[Level]:
        return rule.extfrag_index

    def measure(self, obs: Observation) -> Optional[float]:
        zone = self._zone(obs)
        return metrics.extfrag_index(zone.free, self.order) if zone is not None else None

    def deficit_pages(self, obs: Observation) -> int:
        """One free block of the order: the allocation then succeeds."""
        return 1 << self.order


class Watermark(ZoneCondition):
    """The zone's free pages (/proc/zoneinfo) below one of its watermarks."""

    __slots__ = ()
    kind = "watermark"
    compacts = False  # compaction adds no free pages
    reads_zoneinfo = True  # the free count and marks must be fresh every poll

    @classmethod
    def configured(cls, rule: Rule) -> bool:
        return rule.watermark is not None

    @classmethod
    def unwatchable(cls, rule: Rule, zone: ZoneView) -> Optional[str]:
        if zone.marks is None:
            return f"rule {rule.name}: no watermarks (/proc/zoneinfo unreadable); watermark not watched"
        return None

    def _mark(self, obs: Observation, which: str) -> int:
        zone = obs.zones[(self.zone_node, self.zone)]
        level = self.rule.watermark
        assert zone.marks is not None and level is not None
        return zone.marks[level.below if which == "below" else level.clear]

    def measure(self, obs: Observation) -> Optional[float]:
        zone = self._zone(obs)
        return zone.free_pages if zone is not None and zone.marks is not None else None

    def over(self, value: float, obs: Observation) -> bool:
        return value < self._mark(obs, "below")

    def clear(self, value: float, obs: Observation) -> bool:
        return value >= self._mark(obs, "clear")

    def closeness(self, value: float, obs: Observation) -> float:
        mark = self._mark(obs, "below")
        return float("inf") if value <= 0 else mark / value

    def progress(self, before: float, after: float, obs: Observation) -> Optional[float]:
        return _share(after - before, self._mark(obs, "clear") - before)

    def deficit_pages(self, obs: Observation) -> int:
        """The pages between free and the `clear` mark."""
        zone = obs.zones[(self.zone_node, self.zone)]
        return max(self._mark(obs, "clear") - zone.free_pages, 0)

    def text(self, value: float) -> str:
        return f"{int(value)} free pages"

    def field(self, value: float) -> str:
        return str(int(value))

    def _thresholds(self) -> Dict[str, object]:
        level = self.rule.watermark
        assert level is not None
        return {"threshold": level.below, "clear": level.clear}


class Exhaustion(ZoneCondition):
    """The free blocks of the order (and larger) predicted to run out: a least-squares line through
    their count over the recent polls (Recent.samples), as adaptivemm predicts exhaustion. The value
    is the seconds until none is left (0 when none is; infinity when they are not shrinking); it
    starts at the rule's `predict` horizon and ends beyond twice that. It only ever compacts."""

    __slots__ = ()
    kind = "exhaustion"
    holds_unmeasured = True  # one observation cannot tell a trend: what the poll predicted stands
    MIN_SAMPLES = 4
    MIN_SPAN = 20.0  # seconds the samples must cover

    @classmethod
    def configured(cls, rule: Rule) -> bool:
        return rule.predict is not None

    @property
    def reclaims(self) -> bool:
        return False  # a prediction says when, not how much: compaction only

    @property
    def horizon(self) -> float:
        assert self.rule.predict is not None
        return self.rule.predict

    def value(self, obs: Observation, recent: Recent) -> Optional[float]:
        zone = self._zone(obs)
        if zone is None:
            return None
        now = metrics.contig_info(zone.free, self.order).blocks_suitable
        if now == 0:
            return 0.0
        series = recent.samples.get((self.zone_node, self.zone), [])
        if len(series) < self.MIN_SAMPLES or series[-1][0] - series[0][0] < self.MIN_SPAN:
            return float("inf")
        slope = metrics.slope(
            [(when, metrics.contig_info(free, self.order).blocks_suitable) for when, free in series]
        )
        return now / -slope if slope < 0 else float("inf")

    def over(self, value: float, obs: Observation) -> bool:
        return value <= self.horizon

    def clear(self, value: float, obs: Observation) -> bool:
        return value > 2 * self.horizon

    def closeness(self, value: float, obs: Observation) -> float:
        return float("inf") if value <= 0 else self.horizon / value

    def progress(self, before: float, after: float, obs: Observation) -> Optional[float]:
        if after == float("inf"):
            return 1.0  # the free blocks no longer shrink
        return _share(after - before, 2 * self.horizon - before)

    def text(self, value: float) -> str:
        if value == float("inf"):
            return "no shortage in sight"
        return f"{value:.0f} s to the last free order-{self.order} block"

    def field(self, value: float) -> str:
        return "inf" if value == float("inf") else f"{value:.0f}"

    def _thresholds(self) -> Dict[str, object]:
        return {"threshold": f"{self.horizon:g}", "clear": f"{2 * self.horizon:g}"}


class Reserve(ZoneCondition):
    """Free memory in blocks of the order or larger (/proc/buddyinfo: the sum of nr_free[o] << o for
    o >= order), summed over the zones of one node that the rule watches, against the rule's `reserve`
    size: the form in which a board's owner knows a need (a camera's buffers, a driver's DMA, huge
    pages). Per node, not per zone: an allocation falls back from zone to zone of its node (Normal,
    then DMA32, then DMA), so the blocks of every zone it may use count; a rule limited to one zone
    (`zones: [DMA32]`, for a device that can address no more) counts that zone alone. The value is in
    pages; it starts below the reserve and ends at it. Compaction first; reclaim for the shortfall."""

    __slots__ = ()
    kind = "reserve"
    per_node = True

    @classmethod
    def configured(cls, rule: Rule) -> bool:
        return rule.reserve is not None

    @property
    def target(self) -> Tuple[str, int, str]:
        return ("node", self.zone_node, NODE_WIDE)

    @property
    def pages(self) -> int:
        """The reserve in pages (rounded up)."""
        assert self.rule.reserve is not None
        return -(-self.rule.reserve // self.page_size)

    def where(self) -> str:
        zones = "" if "*" in self.rule.zones else f" zones {','.join(self.rule.zones)}"
        return f"node {self.zone_node}{zones} order {self.order}"

    def measure(self, obs: Observation) -> Optional[float]:
        total, seen = 0, False
        for (node, _), zone in obs.zones.items():
            if node != self.zone_node or self.order >= len(zone.free) or not self.rule.watches(zone, self.page_size):
                continue
            seen = True
            total += metrics.contig_info(zone.free, self.order).blocks_suitable << self.order
        return float(total) if seen else None

    def over(self, value: float, obs: Observation) -> bool:
        return value < self.pages

    def clear(self, value: float, obs: Observation) -> bool:
        return value >= self.pages

    def closeness(self, value: float, obs: Observation) -> float:
        return float("inf") if value <= 0 else self.pages / value

    def deficit_pages(self, obs: Observation) -> int:
        """The shortfall: the reserve less what is free in blocks of the order now (after compaction)."""
        value = self.measure(obs)
        return max(self.pages - int(value), 0) if value is not None else 0

    def progress(self, before: float, after: float, obs: Observation) -> Optional[float]:
        return _share(after - before, self.pages - before)

    def _mib(self, pages: float) -> str:
        return f"{pages * self.page_size / 1048576:.1f}"

    def text(self, value: float) -> str:
        return f"{self._mib(value)} MiB free in blocks of order {self.order} or larger (reserve {self._mib(self.pages)} MiB)"

    def field(self, value: float) -> str:
        return self._mib(value)

    def _thresholds(self) -> Dict[str, object]:
        return {"threshold": self._mib(self.pages), "clear": self._mib(self.pages)}


def _share(moved: float, way: float) -> Optional[float]:
    """`moved` as a share of `way` (both signed, toward the clear level); None when there is no way to go."""
    if way == 0 or way != way or abs(way) == float("inf"):
        return None
    return moved / way + 0.0  # no -0.0


# ---------------------------------------------------------------------------
# Global conditions: one configured trigger each; they compact every node and never reclaim.


class GlobalCondition(Condition):
    """A trigger from the `triggers` section: the configured trigger is the condition."""

    __slots__ = ()
    sustain_polls: int  # a slot of each kind: its `sustain` key

    @property
    def sustain(self) -> int:
        return self.sustain_polls

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            GLOBAL_KINDS.append(cls)

    @classmethod
    def from_plain(cls, triggers: Mapping[str, Any]) -> Sequence[GlobalCondition]:
        """The triggers of this kind in the validated `triggers` section (shrinkd.configfile)."""
        raise NotImplementedError

    def text(self, value: float) -> str:
        return f"{value:.2f}"

    def field(self, value: float) -> str:
        return f"{value:.2f}"


class Pressure(GlobalCondition):
    """PSI memory pressure: the avg10 of the `some` or `full` line, in percent."""

    __slots__ = ("avg10", "clear_level", "pressure", "sustain_polls")
    kind = "psi"
    reads_psi = True

    def __init__(self, kind: str, avg10: float, clear: float, sustain: int) -> None:
        self.pressure = kind
        self.avg10 = avg10
        self.clear_level = clear
        self.sustain_polls = sustain

    @classmethod
    def from_plain(cls, triggers: Mapping[str, Any]) -> Sequence[GlobalCondition]:
        plain = triggers["psi"]
        return [cls(**plain)] if plain is not None else []

    @property
    def name(self) -> str:
        return f"psi:{self.pressure}"

    def value(self, obs: Observation, recent: Recent) -> Optional[float]:
        return obs.psi(self.pressure)

    def measure(self, obs: Observation) -> Optional[float]:
        return obs.psi(self.pressure)

    def missing(self, obs: Observation) -> Optional[str]:
        return f"triggers.psi: no PSI {self.pressure} line; trigger not watched"

    def over(self, value: float, obs: Observation) -> bool:
        return value >= self.avg10

    def clear(self, value: float, obs: Observation) -> bool:
        return value <= self.clear_level

    def closeness(self, value: float, obs: Observation) -> float:
        return max(value, 0.0) / self.avg10

    def text(self, value: float) -> str:
        return f"{value:.2f}%"

    def fields(self) -> Dict[str, object]:
        return {"trigger": self.name, "metric": "psi_avg10", "threshold": self.avg10, "clear": self.clear_level}


class Rate(GlobalCondition):
    """The rate of a /proc/vmstat counter, per second over the last poll interval."""

    __slots__ = ("clear_level", "counter", "rate", "sustain_polls")
    kind = "rate"

    def __init__(self, counter: str, rate: float, clear: float, sustain: int) -> None:
        self.counter = counter
        self.rate = rate
        self.clear_level = clear
        self.sustain_polls = sustain

    @classmethod
    def from_plain(cls, triggers: Mapping[str, Any]) -> Sequence[GlobalCondition]:
        return [cls(**plain) for plain in triggers["vmstat"]]

    @property
    def name(self) -> str:
        return f"vmstat:{self.counter}"

    @property
    def counters(self) -> Tuple[str, ...]:
        return (self.counter,)

    def value(self, obs: Observation, recent: Recent) -> Optional[float]:
        return recent.rates.get(self.counter)

    def missing(self, obs: Observation) -> Optional[str]:
        # The first poll has no rate yet; only a counter the kernel lacks is worth a warning.
        if obs.vmstat and counter(obs.vmstat, self.counter) is None:
            return f"triggers.vmstat: no {self.counter} in /proc/vmstat; trigger not watched"
        return None

    def over(self, value: float, obs: Observation) -> bool:
        return value >= self.rate

    def clear(self, value: float, obs: Observation) -> bool:
        return value <= self.clear_level

    def closeness(self, value: float, obs: Observation) -> float:
        return max(value, 0.0) / self.rate

    def text(self, value: float) -> str:
        return f"{value:.2f}/s"

    def fields(self) -> Dict[str, object]:
        return {"trigger": self.name, "metric": "rate_per_s", "threshold": self.rate, "clear": self.clear_level}


class AllocationFailures(GlobalCondition):
    """Allocation failures the kernel reported lately: `page allocation failure` reports in its log at
    or above `min_order`, and the growth of the /proc/vmstat `counters` (compact_fail: direct
    compaction found no page; thp_fault_fallback: a huge page could not be had), within `window`
    seconds. Compaction at once: the kernel has said that an allocation failed. A report in the log
    after an action is answered without waiting out the cooldown (renewed())."""

    __slots__ = ("count", "min_order", "sustain_polls", "watched", "window")
    kind = "allocation_failures"

    def __init__(self, min_order: int, counters: Sequence[str], count: int, window: float, sustain: int) -> None:
        self.min_order = min_order
        self.watched = tuple(counters)
        self.count = count
        self.window = window
        self.sustain_polls = sustain

    @classmethod
    def from_plain(cls, triggers: Mapping[str, Any]) -> Sequence[GlobalCondition]:
        plain = triggers["allocation_failures"]
        return [cls(**plain)] if plain is not None else []

    @property
    def name(self) -> str:
        return "allocation_failures"

    @property
    def counters(self) -> Tuple[str, ...]:
        return self.watched

    def value(self, obs: Observation, recent: Recent) -> Optional[float]:
        return float(sum(f.count for f in recent.failures_since(recent.now - self.window) if self.counts(f)))

    def counts(self, failure: Failure) -> bool:
        """A counter's growth when it is one of ours; a logged failure at or above min_order."""
        if failure.counter:
            return failure.counter in self.watched
        return failure.order is not None and failure.order >= self.min_order

    def over(self, value: float, obs: Observation) -> bool:
        return value >= self.count

    def clear(self, value: float, obs: Observation) -> bool:
        return value <= 0

    def closeness(self, value: float, obs: Observation) -> float:
        return value / self.count

    def text(self, value: float) -> str:
        return f"{int(value)} failure{'' if int(value) == 1 else 's'} within {self.window:g} s"

    def field(self, value: float) -> str:
        return str(int(value))

    def fields(self) -> Dict[str, object]:
        return {"trigger": self.name, "metric": "failures", "threshold": self.count, "clear": 0}

    def renewed(self, recent: Recent, acted_at: float) -> bool:
        """A failure the kernel reported in its log after the last action, once `window` seconds have
        passed since it: the kernel says an allocation failed again, whatever cooldown the action started
        (a compaction for the counters, say, which huge-page faults falling back can start at any time).
        Reports in a stream are answered at most once per window."""
        if recent.now - acted_at < self.window:
            return False
        return any(f.seen > acted_at and not f.counter and self.counts(f) for f in recent.failures)
