"""Pure decisions: observations and the configuration in, what to do next out.

No I/O and no clock of its own: every call takes `now` (monotonic seconds),
so tests step through sustain counts, cooldowns, hourly caps and the thrash
guard without sleeping.

The daemon drives it like this each poll:

    plan = policy.evaluate(observation, now)      # notices, decisions, next interval
    for decision in plan.decisions:
        done = []
        while (step := policy.next_step(decision, fresh_observation, done, available, now)):
            run the step (compact, reclaim or log a skip), done.append(step)
        policy.acted(decision, now)               # starts the cooldown
    policy.rebase(observation_after_actions, now)  # rates exclude shrinkd's own work

A condition ("watch") is one metric of one rule in one zone at one order:
it starts after `sustain` polls at or above its trigger level and ends at or
below its clear level. While it holds and its zone is not cooling down, it
is a decision; actions aim at the clear level.
"""

from __future__ import annotations

from . import metrics
from .config import PsiTrigger, RateTrigger
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, FrozenSet, List, Optional, Sequence, Set, Tuple, Union

    from .config import Config, Level, Rule
    from .procfs import Snapshot

    Source = Union["Watch", "Global"]

UNUSABLE = "unusable_index"
EXTFRAG = "extfrag_index"
WATERMARK = "watermark"
# Condition kinds in the order they are checked within a rule.
KINDS = (UNUSABLE, EXTFRAG, WATERMARK)

COMPACT = "compact"
RECLAIM = "reclaim"
SKIP = "skip"

HOUR = 3600.0


# ---------------------------------------------------------------------------
# What the policy sees.


class ZoneView(Record):
    __slots__ = ("free", "free_pages", "managed", "marks", "node", "zone")

    def __init__(
        self,
        node: int,
        zone: str,
        free: Tuple[int, ...],
        free_pages: int,
        managed: Optional[int],
        marks: Optional[Dict[str, int]],
    ) -> None:
        self.node = node
        self.zone = zone
        self.free = free
        self.free_pages = free_pages
        self.managed = managed
        self.marks = marks


class Observation(Record):
    __slots__ = ("psi_full", "psi_some", "vmstat", "zones")

    def __init__(
        self,
        zones: Dict[Tuple[int, str], ZoneView],
        vmstat: Dict[str, int],
        psi_some: Optional[float],
        psi_full: Optional[float],
    ) -> None:
        self.zones = zones
        self.vmstat = vmstat
        self.psi_some = psi_some
        self.psi_full = psi_full

    def psi(self, kind: str) -> Optional[float]:
        return self.psi_some if kind == "some" else self.psi_full


def observe(snapshot: Snapshot) -> Observation:
    """Reduce a Snapshot to what decisions need."""
    info = {(z.node, z.zone): z for z in snapshot.zoneinfo or ()}
    zones: Dict[Tuple[int, str], ZoneView] = {}
    for row in snapshot.buddyinfo.zones:
        zi = info.get((row.node, row.zone))
        zones[(row.node, row.zone)] = ZoneView(
            node=row.node,
            zone=row.zone,
            free=row.free,
            free_pages=zi.free if zi is not None else metrics.free_pages(row.free),
            managed=zi.managed if zi is not None else None,
            marks={"min": zi.min, "low": zi.low, "high": zi.high} if zi is not None else None,
        )
    pressure = snapshot.pressure
    return Observation(
        zones=zones,
        vmstat=snapshot.vmstat or {},
        psi_some=pressure.some.avg10 if pressure is not None else None,
        psi_full=pressure.full.avg10 if pressure is not None and pressure.full is not None else None,
    )


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
# The /proc/vmstat counters the loop reads: rates, the thrash guard, pages reclaimed.
VMSTAT_KEYS = (
    *SPLIT_COUNTERS["allocstall"],
    *SPLIT_COUNTERS["workingset_refault"],
    "compact_stall",
    "compact_fail",
    "pgsteal_anon",
    "pgsteal_file",
)


def counter(vmstat: Dict[str, int], name: str) -> Optional[int]:
    """A vmstat counter by shrinkd's name, summing the kernel's split counters."""
    parts = [vmstat[key] for key in SPLIT_COUNTERS.get(name, (name,)) if key in vmstat]
    return sum(parts) if parts else None


# ---------------------------------------------------------------------------
# Conditions.


class Watch(Record):
    """One condition of one rule in one zone at one order."""

    __slots__ = ("_hash", "kind", "node", "order", "rule", "zone")

    def __init__(self, rule: Rule, node: int, zone: str, order: int, kind: str) -> None:
        self.rule = rule
        self.node = node
        self.zone = zone
        self.order = order
        self.kind = kind
        self._hash = hash((rule, node, zone, order, kind))  # looked up every poll

    def __hash__(self) -> int:
        return self._hash

    @property
    def name(self) -> str:
        return f"{self.rule.name}:{self.kind}"

    @property
    def target(self) -> Tuple[str, int, str]:
        return ("zone", self.node, self.zone)

    def where(self) -> str:
        return f"node {self.node} zone {self.zone} order {self.order}"


class Global(Record):
    """A global trigger: PSI pressure or the rate of a vmstat counter."""

    __slots__ = ("trigger",)

    def __init__(self, trigger: Union[PsiTrigger, RateTrigger]) -> None:
        self.trigger = trigger

    @property
    def name(self) -> str:
        if isinstance(self.trigger, PsiTrigger):
            return f"psi:{self.trigger.kind}"
        return f"vmstat:{self.trigger.counter}"

    @property
    def kind(self) -> str:
        return "psi" if isinstance(self.trigger, PsiTrigger) else "rate"

    @property
    def target(self) -> Tuple[str, int, str]:
        return ("global", -1, self.name)

    def where(self) -> str:
        return "all nodes"


def index_level(rule: Rule, kind: str) -> Optional[Level]:
    return rule.unusable_index if kind == UNUSABLE else rule.extfrag_index if kind == EXTFRAG else None


def watch_value(watch: Watch, obs: Observation) -> Optional[float]:
    """The watched value now: an index in thousandths, or free pages for a watermark; None if unknown."""
    zone = obs.zones.get((watch.node, watch.zone))
    if zone is None or watch.order >= len(zone.free):
        return None
    if watch.kind == UNUSABLE:
        return metrics.unusable_index(zone.free, watch.order)
    if watch.kind == EXTFRAG:
        return metrics.extfrag_index(zone.free, watch.order)
    return zone.free_pages if zone.marks is not None else None


def _mark(watch: Watch, obs: Observation, which: str) -> int:
    zone = obs.zones[(watch.node, watch.zone)]
    assert zone.marks is not None and watch.rule.watermark is not None
    name = watch.rule.watermark.below if which == "below" else watch.rule.watermark.clear
    return zone.marks[name]


def is_over(source: Source, value: float, obs: Observation) -> bool:
    """At or above the trigger level (for a watermark: free pages below the `below` mark)."""
    if isinstance(source, Global):
        trigger = source.trigger
        return value >= (trigger.avg10 if isinstance(trigger, PsiTrigger) else trigger.rate)
    if source.kind == WATERMARK:
        return value < _mark(source, obs, "below")
    level = index_level(source.rule, source.kind)
    assert level is not None
    return value >= level.trigger


def is_clear(source: Source, value: float, obs: Observation) -> bool:
    """At or below the clear level (for a watermark: free pages at or above the `clear` mark)."""
    if isinstance(source, Global):
        return value <= source.trigger.clear
    if source.kind == WATERMARK:
        return value >= _mark(source, obs, "clear")
    level = index_level(source.rule, source.kind)
    assert level is not None
    return value <= level.clear


def closeness(source: Source, value: float, obs: Observation) -> float:
    """How near the trigger level a value is: 1.0 at the level, 0 far below it."""
    if isinstance(source, Global):
        trigger = source.trigger
        return max(value, 0.0) / (trigger.avg10 if isinstance(trigger, PsiTrigger) else trigger.rate)
    if source.kind == WATERMARK:
        mark = _mark(source, obs, "below")
        return float("inf") if value <= 0 else mark / value
    level = index_level(source.rule, source.kind)
    assert level is not None
    return max(value, 0.0) / level.trigger


def format_value(source: Source, value: float) -> str:
    if isinstance(source, Global):
        return f"{value:.2f}" + ("%" if source.kind == "psi" else "/s")
    if source.kind == WATERMARK:
        return f"{int(value)} free pages"
    return metrics.format_index(int(value))


def reclaim_deficit_pages(watch: Watch, obs: Observation) -> int:
    """Pages to reclaim for the watched value to reach its clear level, from the measured state.

    Unusable index: with F free pages of which S are in blocks of the order,
    reclaiming R pages that coalesce into such blocks gives (F - S) / (F + R);
    at most the clear level c when R >= (F - S) / c - F.
    Fragmentation index: one free block of the order (the allocation then succeeds).
    Watermark: the pages between free and the `clear` mark.
    """
    zone = obs.zones[(watch.node, watch.zone)]
    if watch.kind == WATERMARK:
        return max(_mark(watch, obs, "clear") - zone.free_pages, 0)
    if watch.kind == EXTFRAG:
        return 1 << watch.order
    level = index_level(watch.rule, watch.kind)
    assert level is not None
    info = metrics.contig_info(zone.free, watch.order)
    unusable = info.free_pages - (info.blocks_suitable << watch.order)
    if level.clear <= 0:
        return unusable if unusable > 0 else 0
    needed = -(-unusable * 1000 // level.clear) - info.free_pages  # ceil division
    return max(needed, 0)


# ---------------------------------------------------------------------------
# What the policy says.


class Notice(Record):
    """Something to log: a condition started ("triggered") or ended ("cleared"), the thrash guard ("thrash"), a "warning"."""

    __slots__ = ("fields", "kind", "message", "source", "value")

    def __init__(
        self,
        kind: str,
        message: str,
        source: Optional[Source] = None,
        value: Optional[float] = None,
        fields: Tuple[Tuple[str, str], ...] = (),
    ) -> None:
        self.kind = kind
        self.message = message
        self.source = source
        self.value = value
        self.fields = fields


class Decision(Record):
    """A condition that holds and may be acted on now."""

    __slots__ = ("source", "value")

    def __init__(self, source: Source, value: float) -> None:
        self.source = source
        self.value = value


class Step(Record):
    """One rung of the ladder: compact (node None: all nodes), reclaim `size` bytes, or a skip with a reason."""

    __slots__ = ("action", "node", "reason", "size")

    def __init__(self, action: str, node: Optional[int] = None, size: int = 0, reason: str = "") -> None:
        self.action = action
        self.node = node
        self.size = size
        self.reason = reason


class Plan(Record):
    __slots__ = ("decisions", "interval", "notices")

    def __init__(self, notices: Tuple[Notice, ...], decisions: Tuple[Decision, ...], interval: float) -> None:
        self.notices = notices
        self.decisions = decisions
        self.interval = interval


class WatchState:
    """Where one condition stands: consecutive polls over its trigger level, whether it holds, its last value."""

    __slots__ = ("active", "count", "value")

    def __init__(self) -> None:
        self.count = 0
        self.active = False
        self.value = 0.0


class ThrashState:
    __slots__ = ("backoff", "blocked_until", "psi_some", "refault_rate", "watch_until")

    def __init__(self, backoff: float) -> None:
        self.watch_until: Optional[float] = None  # watching refaults and PSI until then
        self.refault_rate = 0.0  # before the last reclaim
        self.psi_some = 0.0  # before the last reclaim
        self.blocked_until = float("-inf")  # reclaim suspended until then
        self.backoff = backoff  # the next suspension's length


class Policy:
    def __init__(self, config: Config, page_size: int = 4096, once: bool = False) -> None:
        self.config = config
        self.page_size = page_size
        self.once = once  # a single poll: conditions need no sustain
        self.watches: Dict[Source, WatchState] = {}
        self.cooldown_until: Dict[Tuple[str, int, str], float] = {}
        self.reclaims: List[Tuple[float, int]] = []  # (when, bytes asked for)
        self.thrash = ThrashState(config.thrash.backoff)
        self.rates: Dict[str, float] = {}  # per second, over the last poll interval
        self.warned: Set[str] = set()
        self._prev: Optional[Tuple[float, Dict[str, int]]] = None
        self._layout: Optional[Tuple[object, ...]] = None
        self._layout_watches: List[Watch] = []

    def needs_counters(self) -> bool:
        """Whether this poll needs /proc/vmstat and PSI: global triggers, or the thrash guard's watch."""
        return (
            bool(self.config.rate_triggers)
            or self.config.psi_trigger is not None
            or self.thrash.watch_until is not None
        )

    def needs_zoneinfo(self) -> bool:
        """Whether every poll needs fresh watermarks and free counts (only watermark conditions do)."""
        return any(rule.watermark is not None for rule in self.config.rules)

    # -- configuration changes ------------------------------------------------

    def reconfigure(self, config: Config) -> None:
        """A reloaded configuration: conditions whose rule changed start afresh; limits and logs stay."""
        self.config = config
        self._layout = None
        rules = set(config.rules)
        triggers = {config.psi_trigger, *config.rate_triggers}
        self.watches = {
            source: state
            for source, state in self.watches.items()
            if (isinstance(source, Watch) and source.rule in rules)
            or (isinstance(source, Global) and source.trigger in triggers)
        }
        self.thrash.backoff = min(max(self.thrash.backoff, config.thrash.backoff), config.thrash.backoff_max)

    # -- the per-poll evaluation ----------------------------------------------

    def _watches(self, obs: Observation) -> Tuple[List[Watch], List[Notice]]:
        """The zone conditions for this layout of zones; built again only when the layout changes."""
        layout = tuple((key, len(z.free), z.managed, z.marks is None) for key, z in obs.zones.items())
        if layout == self._layout:
            return self._layout_watches, []
        watches: List[Watch] = []
        notices: List[Notice] = []
        for rule in self.config.rules:
            for (node, zone_name), zone in obs.zones.items():
                if not rule.matches(node, zone_name):
                    continue
                if zone.managed is not None and zone.managed * self.page_size < rule.min_zone_size:
                    continue
                for order in rule.orders:
                    if order >= len(zone.free):
                        notices += self._warn_once(
                            f"order:{rule.name}:{order}",
                            f"rule {rule.name}: order {order} is beyond this kernel's {len(zone.free)} orders; skipped",
                        )
                        continue
                    for kind in KINDS:
                        if kind == WATERMARK:
                            if rule.watermark is None:
                                continue
                            if zone.marks is None:
                                notices += self._warn_once(
                                    f"marks:{rule.name}",
                                    f"rule {rule.name}: no watermarks (/proc/zoneinfo unreadable); watermark not watched",
                                )
                                continue
                        elif index_level(rule, kind) is None:
                            continue
                        watches.append(Watch(rule, node, zone_name, order, kind))
        self._layout, self._layout_watches = layout, watches
        return watches, notices

    def sources(self, obs: Observation) -> Tuple[List[Tuple[Source, float]], List[Notice]]:
        """Every condition the configuration asks for in this observation, with its value now."""
        watches, notices = self._watches(obs)
        found: List[Tuple[Source, float]] = []
        for watch in watches:
            value = watch_value(watch, obs)
            if value is not None:
                found.append((watch, value))
        trigger: Union[PsiTrigger, RateTrigger]
        if self.config.psi_trigger is not None:
            trigger = self.config.psi_trigger
            psi = obs.psi(trigger.kind)
            if psi is None:
                notices += self._warn_once(
                    "psi-trigger", f"triggers.psi: no PSI {trigger.kind} line; trigger not watched"
                )
            else:
                found.append((Global(trigger), psi))
        for trigger in self.config.rate_triggers:
            if trigger.counter in self.rates:
                found.append((Global(trigger), self.rates[trigger.counter]))
            elif self._prev is not None and counter(obs.vmstat, trigger.counter) is None:
                notices += self._warn_once(
                    f"rate:{trigger.counter}",
                    f"triggers.vmstat: no {trigger.counter} in /proc/vmstat; trigger not watched",
                )
        return found, notices

    def _warn_once(self, key: str, message: str) -> List[Notice]:
        if key in self.warned:
            return []
        self.warned.add(key)
        return [Notice("warning", message)]

    def _update_rates(self, obs: Observation, now: float) -> None:
        if not obs.vmstat:
            return  # /proc/vmstat unreadable: the rates stay as they were
        names = {t.counter for t in self.config.rate_triggers} | {"workingset_refault"}
        current = {name: value for name in names if (value := counter(obs.vmstat, name)) is not None}
        if self._prev is not None:
            then, previous = self._prev
            elapsed = now - then
            if elapsed > 0:
                # A counter that went down (reset) counts as no events.
                self.rates = {
                    name: max(value - previous[name], 0) / elapsed
                    for name, value in current.items()
                    if name in previous
                }
        self._prev = (now, current)

    def rebase(self, obs: Observation, now: float) -> None:
        """Restart rate measurement from `obs` (after shrinkd's own actions, which bump allocstall)."""
        names = {t.counter for t in self.config.rate_triggers} | {"workingset_refault"}
        self._prev = (now, {name: value for name in names if (value := counter(obs.vmstat, name)) is not None})

    def evaluate(self, obs: Observation, now: float) -> Plan:
        self._update_rates(obs, now)
        notices = self._check_thrash(obs, now)
        found, warnings = self.sources(obs)
        notices += warnings
        decisions: Dict[Tuple[str, int, str], Decision] = {}
        nearest = 0.0
        busy = False
        for source, value in found:
            state = self.watches.setdefault(source, WatchState())
            state.value = value
            over = is_over(source, value, obs)
            state.count = state.count + 1 if over else 0
            sustain = 1 if self.once else (source.rule.sustain if isinstance(source, Watch) else source.trigger.sustain)
            if not state.active and state.count >= sustain:
                state.active = True
                notices.append(
                    Notice(
                        "triggered",
                        f"{source.name} triggered: {source.where()} at {format_value(source, value)}",
                        source,
                        value,
                    )
                )
            elif state.active and is_clear(source, value, obs):
                state.active = False
                state.count = 0
                notices.append(
                    Notice(
                        "cleared",
                        f"{source.name} cleared: {source.where()} at {format_value(source, value)}",
                        source,
                        value,
                    )
                )
            busy = busy or state.active or state.count > 0
            nearest = max(nearest, closeness(source, value, obs))
            if state.active and self.cooldown_until.get(source.target, float("-inf")) <= now:
                # One decision per zone (or global trigger) per poll: the one nearest its trigger level wins.
                current = decisions.get(source.target)
                if current is None or closeness(source, value, obs) > closeness(current.source, current.value, obs):
                    decisions[source.target] = Decision(source, value)
        # Sources that vanished (a zone went away, a rule was removed) are forgotten.
        present = {source for source, _ in found}
        for source in [s for s in self.watches if s not in present]:
            del self.watches[source]
        return Plan(tuple(notices), tuple(decisions.values()), self.interval(nearest, busy))

    def interval(self, nearest: float, busy: bool) -> float:
        """Next poll: max_interval far from every trigger level, min_interval at it or while a condition is live."""
        poll = self.config.poll
        if busy or nearest >= 1.0:
            return poll.min_interval
        if nearest <= poll.approach:
            return poll.max_interval
        share = (nearest - poll.approach) / (1.0 - poll.approach)
        return poll.max_interval - (poll.max_interval - poll.min_interval) * share

    # -- the ladder -------------------------------------------------------------

    def holds(self, decision: Decision, obs: Observation) -> Tuple[bool, Optional[float]]:
        """Whether the condition still holds in a fresh observation (not at or below its clear level)."""
        source = decision.source
        if isinstance(source, Global):
            trigger = source.trigger
            if isinstance(trigger, RateTrigger):
                return True, None  # a rate needs an interval: it is measured again at the next poll
            value = obs.psi(trigger.kind)
            return (value is None or not is_clear(source, value, obs)), value
        value = watch_value(source, obs)
        if value is None:
            return False, None
        return not is_clear(source, value, obs), value

    def next_step(
        self, decision: Decision, obs: Observation, done: Sequence[Step], available: FrozenSet[str], now: float
    ) -> Optional[Step]:
        """The next rung for a decision, given the steps done and a fresh observation; None when finished."""
        if any(step.action == SKIP for step in done):
            return None
        still, value = self.holds(decision, obs)
        if not still:
            if not done:
                shown = format_value(decision.source, value) if value is not None else "gone"
                return Step(SKIP, reason=f"recovered before acting ({shown})")
            return None
        source = decision.source
        compacted = any(step.action == COMPACT for step in done)
        reclaimed = any(step.action == RECLAIM for step in done)
        node = source.node if isinstance(source, Watch) else None
        wants_compaction = not (isinstance(source, Watch) and source.kind == WATERMARK)
        if wants_compaction and not compacted:
            if COMPACT in available:
                return Step(COMPACT, node=node)
            if isinstance(source, Global) or not source.rule.reclaim:
                return Step(SKIP, reason="no compaction backend available")
        if reclaimed:
            # Reclaim frees pages wherever they were, often as small blocks: compacting once more
            # afterwards is what turns them into large ones (kernel-facts.md: reclaim then
            # compaction did about twice as well as either alone).
            again = wants_compaction and COMPACT in available and [s.action for s in done].count(COMPACT) == 1
            return Step(COMPACT, node=node) if again else None
        if isinstance(source, Global) or not source.rule.reclaim:
            return None
        if RECLAIM not in available:
            return Step(SKIP, reason="no reclaim backend available")
        if now < self.thrash.blocked_until:
            return Step(
                SKIP, reason=f"reclaim suspended by the thrash guard for {self.thrash.blocked_until - now:.0f} s more"
            )
        limits = self.config.reclaim
        wanted = reclaim_deficit_pages(source, obs) * self.page_size
        size = min(max(wanted, limits.min), limits.max_per_event)
        left = limits.max_per_hour - self.reclaimed_last_hour(now)
        if left < limits.min:
            return Step(
                SKIP, reason=f"hourly reclaim cap reached ({limits.max_per_hour - left} of {limits.max_per_hour} bytes)"
            )
        return Step(RECLAIM, node=node, size=min(size, left))

    def acted(self, decision: Decision, now: float) -> None:
        """An event ran for a decision: its zone (or trigger) cools down."""
        self.cooldown_until[decision.source.target] = now + self.config.cooldown

    def reclaimed(self, size: int, obs_before: Observation, now: float, watch: bool = True) -> None:
        """A reclaim of `size` bytes was asked for: count it against the hourly cap and watch for thrashing."""
        self.reclaims.append((now, size))
        if not watch:
            return
        if obs_before.vmstat:
            # The rate before: since the last reading (polls read /proc/vmstat only when needed).
            self._update_rates(obs_before, now)
        self.thrash.watch_until = now + self.config.thrash.watch
        self.thrash.refault_rate = self.rates.get("workingset_refault", 0.0)
        self.thrash.psi_some = obs_before.psi_some or 0.0

    def reclaimed_last_hour(self, now: float) -> int:
        self.reclaims = [(t, size) for t, size in self.reclaims if t > now - HOUR]
        return sum(size for _, size in self.reclaims)

    # -- the thrash guard -------------------------------------------------------

    def _check_thrash(self, obs: Observation, now: float) -> List[Notice]:
        state, limits = self.thrash, self.config.thrash
        if state.watch_until is None:
            return []
        if now > state.watch_until:
            state.watch_until = None
            state.backoff = limits.backoff  # a clean watch: the next back-off starts short again
            return []
        reasons = []
        refaults = self.rates.get("workingset_refault")
        if (
            refaults is not None
            and refaults >= limits.refault_min
            and refaults >= limits.refault_factor * state.refault_rate
        ):
            reasons.append(f"refaults {refaults:.0f}/s (before reclaim {state.refault_rate:.0f}/s)")
        psi = obs.psi_some
        if psi is not None and psi >= limits.psi_some_avg10 and psi > state.psi_some:
            reasons.append(f"PSI some avg10 {psi:.2f}% (before reclaim {state.psi_some:.2f}%)")
        if not reasons:
            return []
        state.watch_until = None
        state.blocked_until = now + state.backoff
        fields = [("BACKOFF_S", f"{state.backoff:.0f}")]
        if refaults is not None:
            fields += [("REFAULTS_PER_S", f"{refaults:.1f}"), ("REFAULTS_BEFORE_PER_S", f"{state.refault_rate:.1f}")]
        if psi is not None:
            fields += [("PSI_SOME_AVG10", f"{psi:.2f}"), ("PSI_SOME_AVG10_BEFORE", f"{state.psi_some:.2f}")]
        notice = Notice(
            "thrash",
            f"thrash guard: {' and '.join(reasons)}; reclaim suspended for {state.backoff:.0f} s",
            fields=tuple(fields),
        )
        state.backoff = min(state.backoff * 2, limits.backoff_max)
        return [notice]
