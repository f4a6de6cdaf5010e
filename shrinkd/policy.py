"""Pure decisions: observations and the configuration in, what to do next out.

No I/O and no clock of its own: every call takes `now` (monotonic seconds),
so tests step through sustain counts, cooldowns, hourly caps and the thrash
guard without sleeping. What is watched are Conditions (shrinkd.conditions):
the policy keeps their state and only calls their interface.

Each poll, the daemon and `shrinkd replay` alike:

    plan = policy.evaluate(observation, now)      # notices, decisions, next interval
    policy.carry_out(plan.decisions, executor)    # each decision's ladder, then the rebase

carry_out is the one driver of the ladder: for each decision it measures
afresh, asks next_step for the next rung, has the executor run it (compact,
reclaim, or tell a skip), measures again, and when the decision is done starts
its cooldown (acted); after the poll's actions it restarts the rates from the
last measurement (rebase: rates exclude shrinkd's own work). The Executor is
what differs: the daemon's reads /proc and writes the kernel's files, replay's
hands back the trace's next poll.

A condition starts after `sustain` polls at or over its trigger level and
ends at its clear level. While it holds and its target (zone, or the global
trigger) is not cooling down, it is a decision; actions aim at the clear level.

Actions that buy nothing back off: the poll after a zone's ladder judges it
(_judge). When the value has not covered WORKED of the way from where it was
before the ladder to the clear level (the steps left it where it was, or what
they freed was gone by then), the zone's cooldown doubles, up to
guards.cooldown_max, with a notice; a ladder that works puts it back.
"""

from __future__ import annotations

from .conditions import NODE_WIDE, ZONE_KINDS, Condition, ZoneCondition, counter, counter_keys
from .record import Record
from .view import Failure, Recent, highest_zone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, FrozenSet, List, Mapping, Optional, Sequence, Set, Tuple

    from .config import Config, Current
    from .view import Observation

COMPACT = "compact"
RECLAIM = "reclaim"
SKIP = "skip"

HOUR = 3600.0

# The share of the way to its clear level a zone's value must cover by the poll after its ladder for the
# ladder to count as working. Under it, ten ladders would not get there; and it stays clear of how far
# the values move between polls with no action at all (a few hundred pages on per-CPU lists: under 1%
# of a zone's free pages in the captured states, view.py).
WORKED = 0.1

# /proc/vmstat counters every reading of it includes, whatever the triggers: the kernel's
# own signs of trouble (allocation stalls, compaction), the thrash guard's refaults and
# the pages reclaim took (shrinkd.actions.result.pages_reclaimed).
BASE_COUNTERS = ("allocstall", "compact_stall", "compact_fail", "workingset_refault", "pgsteal_anon", "pgsteal_file")


# ---------------------------------------------------------------------------
# What the ladder runs against.


class Executor:
    """What Policy.carry_out runs a decision's ladder against: the daemon's (shrinkd.daemon) reads
    /proc and writes the kernel's files; replay's (shrinkd.replay) hands back a trace's polls."""

    watch_reclaim = True  # whether the thrash guard watches after a reclaim (not in a dry run or a replay)
    judge_ladders = True  # whether the next poll judges what a ladder bought (the back-off; not in a dry run)

    def now(self) -> float:
        raise NotImplementedError

    def stopping(self) -> bool:
        """True when the ladder must stop after the step it is in (SIGTERM)."""
        raise NotImplementedError

    def kinds(self) -> FrozenSet[str]:
        """The kinds of step a backend is there for now (COMPACT, RECLAIM)."""
        raise NotImplementedError

    def measure(self, after: Optional[Step]) -> Optional[Observation]:
        """A fresh observation, before acting (`after` None) or after a step; None when it could
        not be had (the executor told why)."""
        raise NotImplementedError

    def run(self, decision: Decision, step: Step) -> bool:
        """Run a compact or reclaim step (or not, in a dry run); False when it failed (and was told)."""
        raise NotImplementedError

    def taken(self) -> int:
        """Bytes the last reclaim step took, as its backend counted them (0 when not counted or not run)."""
        return 0

    def acted(self, decision: Decision, step: Step, before: Observation, after: Observation) -> None:
        """Tell what a step did."""
        raise NotImplementedError

    def skipped(self, decision: Decision, reason: str) -> None:
        raise NotImplementedError

    def lacking(self, decision: Decision, kind: str, reason: str) -> None:
        """The ladder wanted a step of `kind` (RECLAIM) and no backend of that kind is here: it ends
        with what it did. Told as a skip here; the daemon tells it once, with why each backend is
        missing, until its backends change (not once per ladder)."""
        self.skipped(decision, reason)

    def abandoned(self, decision: Decision) -> None:
        """The ladder stopped for SIGTERM after a step."""
        raise NotImplementedError


# ---------------------------------------------------------------------------
# What the policy says.


class Notice(Record):
    """Something to tell: a condition started ("triggered") or ended ("cleared") (its source and value),
    a zone's ladders bought nothing ("backed_off": the value `before` them, now, and the cooldown in its
    fields), an allocation failure ("allocation_failed", its fields), the thrash guard ("thrash"), a
    "warning". The events' text is composed by shrinkd.events from these; `message` is only a warning's
    line and the thrash guard's reasons."""

    __slots__ = ("before", "fields", "kind", "message", "source", "value")

    def __init__(
        self,
        kind: str,
        message: str = "",
        source: Optional[Condition] = None,
        value: Optional[float] = None,
        fields: Tuple[Tuple[str, str], ...] = (),
        before: Optional[float] = None,
    ) -> None:
        self.kind = kind
        self.message = message
        self.source = source
        self.value = value
        self.fields = fields
        self.before = before


class Decision(Record):
    """A condition that holds and may be acted on now."""

    __slots__ = ("source", "value")

    def __init__(self, source: Condition, value: float) -> None:
        self.source = source
        self.value = value


class Step(Record):
    """One rung of the ladder: compact (node None: all nodes), reclaim `size` bytes, or a skip with a reason.
    A reclaim `after_compaction` is for what compaction could not move (reclaimable slab first). A skip
    `lacking` a kind (RECLAIM) is one for want of a backend of that kind (Executor.lacking)."""

    __slots__ = ("action", "after_compaction", "lacking", "node", "reason", "size")

    def __init__(
        self,
        action: str,
        node: Optional[int] = None,
        size: int = 0,
        reason: str = "",
        after_compaction: bool = False,
        lacking: str = "",
    ) -> None:
        self.action = action
        self.node = node
        self.size = size
        self.reason = reason
        self.after_compaction = after_compaction
        self.lacking = lacking


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
    def __init__(
        self,
        current: Current,
        page_size: int = 4096,
        once: bool = False,
        orders: Optional[Mapping[str, Optional[int]]] = None,
    ) -> None:
        self.current = current
        self.page_size = page_size
        self.orders: Mapping[str, Optional[int]] = orders or {}  # what each order name is on this kernel
        self.once = once  # a single poll: conditions need no sustain
        self.watches: Dict[Condition, WatchState] = {}
        self.cooldown_until: Dict[Tuple[str, int, str], float] = {}
        self.acted_at: Dict[Tuple[str, int, str], float] = {}
        self.cooldowns: Dict[Tuple[str, int, str], float] = {}  # a target's cooldown, when backed off
        # A target's last ladder, to judge at the next poll: the condition, its value before, when.
        self.judging: Dict[Tuple[str, int, str], Tuple[Condition, float, float]] = {}
        self.reclaims: List[Tuple[float, int]] = []  # (when, bytes asked for)
        self.thrash = ThrashState(current.config.thrash.backoff)
        self.recent = Recent()  # rates, failures, free blocks over time: what the conditions read
        self.warned: Set[str] = set()
        self._prev: Optional[Tuple[float, Dict[str, int]]] = None
        self._failure_counts: Dict[str, int] = {}  # the watched failure counters at the last reading
        self._layout: Optional[Tuple[object, ...]] = None
        self._layout_conditions: List[ZoneCondition] = []

    @property
    def config(self) -> Config:
        return self.current.config

    def needs_counters(self) -> bool:
        """Whether this poll needs /proc/vmstat and PSI: global triggers, watched failure counters,
        or the thrash guard's watch."""
        return (
            any(trigger.counters or trigger.reads_psi for trigger in self.config.triggers)
            or bool(self.config.failures.counters)
            or self.thrash.watch_until is not None
        )

    def needs_zoneinfo(self) -> bool:
        """Whether every poll needs fresh free counts and watermarks (only some kinds do: a watermark)."""
        return any(kind.reads_zoneinfo and kind.configured(rule) for rule in self.config.rules for kind in ZONE_KINDS)

    def counter_keys(self) -> Tuple[str, ...]:
        """The /proc/vmstat keys to read: the triggers' counters and the guard's and the reports' own."""
        names = dict.fromkeys((*BASE_COUNTERS, *self.config.failures.counters))
        for trigger in self.config.triggers:
            names.update(dict.fromkeys(trigger.counters))
        return tuple(key for name in names for key in counter_keys(name))

    # -- configuration changes ------------------------------------------------

    def reconfigure(self) -> None:
        """The configuration was replaced: conditions whose rule or trigger changed start afresh; limits and logs stay."""
        config = self.config
        self._layout = None
        origins = {*config.rules, *config.triggers}
        self.watches = {source: state for source, state in self.watches.items() if source.origin in origins}
        self.thrash.backoff = min(max(self.thrash.backoff, config.thrash.backoff), config.thrash.backoff_max)

    # -- the per-poll evaluation ----------------------------------------------

    def _zone_conditions(self, obs: Observation) -> Tuple[List[ZoneCondition], List[Notice]]:
        """The zone conditions for this layout of zones; built again only when the layout changes."""
        layout = tuple((key, len(z.free), z.managed, z.marks is None) for key, z in obs.zones.items())
        if layout == self._layout:
            return self._layout_conditions, []
        found: List[ZoneCondition] = []
        notices: List[Notice] = []
        for rule in self.config.rules:
            kinds = [kind for kind in ZONE_KINDS if kind.configured(rule)]
            for (node, zone_name), zone in obs.zones.items():
                if not rule.watches(zone, self.page_size):
                    continue
                for given, order in rule.resolved_orders(self.orders):
                    if order is None:
                        notices += self._warn_once(
                            f"order:{rule.name}:{given}",
                            f"rule {rule.name}: this kernel has no {given} order; skipped",
                        )
                        continue
                    if order >= len(zone.free):
                        notices += self._warn_once(
                            f"order:{rule.name}:{order}",
                            f"rule {rule.name}: order {order} is beyond this kernel's {len(zone.free)} orders; skipped",
                        )
                        continue
                    for kind in kinds:
                        reason = kind.unwatchable(rule, zone)
                        if reason is not None:
                            notices += self._warn_once(f"{kind.kind}:{rule.name}", reason)
                            continue
                        condition = kind(rule, node, NODE_WIDE if kind.per_node else zone_name, order, self.page_size)
                        if not (kind.per_node and condition in found):  # a node's zones share one
                            found.append(condition)
        self._layout, self._layout_conditions = layout, found
        return found, notices

    def sources(self, obs: Observation) -> Tuple[List[Tuple[Condition, float]], List[Notice]]:
        """Every condition the configuration asks for in this observation, with its value now."""
        zone_conditions, notices = self._zone_conditions(obs)
        found: List[Tuple[Condition, float]] = []
        for condition in (*zone_conditions, *self.config.triggers):
            value = condition.value(obs, self.recent)
            if value is not None:
                found.append((condition, value))
                continue
            reason = condition.missing(obs)
            if reason is not None:
                notices += self._warn_once(f"missing:{condition.name}", reason)
        return found, notices

    def unresolved(self) -> List[Tuple[str, str]]:
        """(rule, order name) for each order name of the configuration this kernel cannot resolve."""
        return [
            (rule.name, str(given))
            for rule in self.config.rules
            for given, order in rule.resolved_orders(self.orders)
            if order is None
        ]

    def told(self, rule: str, given: str) -> None:
        """That `rule`'s order name `given` is unknown here was said already (at start): not again."""
        self.warned.add(f"order:{rule}:{given}")

    def _warn_once(self, key: str, message: str) -> List[Notice]:
        if key in self.warned:
            return []
        self.warned.add(key)
        return [Notice("warning", message)]

    @property
    def rates(self) -> Dict[str, float]:
        return self.recent.rates

    def _rate_names(self) -> Set[str]:
        return {name for trigger in self.config.triggers for name in trigger.counters} | {"workingset_refault"}

    def _update_rates(self, obs: Observation, now: float) -> None:
        if not obs.vmstat:
            return  # /proc/vmstat not read or unreadable: the rates stay as they were
        current = {name: value for name in self._rate_names() if (value := counter(obs.vmstat, name)) is not None}
        if self._prev is not None:
            then, previous = self._prev
            elapsed = now - then
            if elapsed > 0:
                # A counter that went down (reset) counts as no events.
                self.recent.rates = {
                    name: max(value - previous[name], 0) / elapsed
                    for name, value in current.items()
                    if name in previous
                }
        self._prev = (now, current)

    def rebase(self, obs: Observation, now: float) -> None:
        """Restart rate and failure-counter measurement from `obs` (after shrinkd's own actions,
        which bump allocstall and the compaction counters)."""
        self._prev = (
            now,
            {name: value for name in self._rate_names() if (value := counter(obs.vmstat, name)) is not None},
        )
        if obs.vmstat:
            self._failure_counts = {name: obs.vmstat[name] for name in self.config.failures.counters if name in obs.vmstat}

    def _failures(self, obs: Observation, now: float) -> List[Notice]:
        """The allocation failures in this observation: the kernel's reports, and the growth of the
        watched /proc/vmstat counters since their last reading. Each is remembered for an hour (for
        the conditions that count them) and told (allocation_failed)."""
        notices: List[Notice] = []
        zones = [name for _, name in obs.zones]
        for report in obs.failures:
            zone = highest_zone(report.zone, zones)
            self.recent.failures.append(
                Failure(now, order=report.order, mode=report.mode, zone=zone, process=report.process)
            )
            notices.append(
                Notice(
                    "allocation_failed",
                    fields=(
                        ("SOURCE", "kernel_log"),
                        ("ORDER", str(report.order)),
                        ("MODE", report.mode),
                        ("ZONE", zone),
                        ("PROCESS", report.process),
                        ("KERNEL_TIME_US", str(report.ts_usec)),
                    ),
                )
            )
        if obs.vmstat:
            for name in self.config.failures.counters:
                value = obs.vmstat.get(name)
                if value is None:
                    continue
                before = self._failure_counts.get(name)
                self._failure_counts[name] = value
                if before is None or value <= before:
                    continue
                self.recent.failures.append(Failure(now, count=value - before, counter=name))
                notices.append(
                    Notice(
                        "allocation_failed",
                        fields=(("SOURCE", "vmstat"), ("COUNTER", name), ("COUNT", str(value - before))),
                    )
                )
        self.recent.forget_failures(now - HOUR)
        return notices

    def evaluate(self, obs: Observation, now: float) -> Plan:
        self._update_rates(obs, now)
        self.recent.sample(obs, now)
        notices = self._failures(obs, now)
        notices += self._check_thrash(obs, now)
        found, warnings = self.sources(obs)
        notices += warnings
        notices += self._judge(found, obs)
        decisions: Dict[Tuple[str, int, str], Tuple[Decision, Tuple[float, float]]] = {}
        nearest = 0.0
        busy = False
        for source, value in found:
            state = self.watches.setdefault(source, WatchState())
            state.value = value
            state.count = state.count + 1 if source.over(value, obs) else 0
            sustain = 1 if self.once else source.sustain
            if not state.active and state.count >= sustain:
                state.active = True
                notices.append(Notice("triggered", source=source, value=value))
            elif state.active and source.clear(value, obs):
                state.active = False
                state.count = 0
                notices.append(Notice("cleared", source=source, value=value))
            busy = busy or state.active or state.count > 0
            near = source.closeness(value, obs)
            nearest = max(nearest, near)
            cooled = self.cooldown_until.get(source.target, float("-inf")) <= now
            if state.active and (cooled or source.renewed(self.recent, self.acted_at[source.target])):
                # One decision per target per poll. A condition whose ladder may reclaim wins over one
                # that only compacts (its ladder compacts first too, and the target then cools down:
                # a prediction's compaction must not keep an index that compaction cannot fix from its
                # reclaim); between equals, the one nearest its trigger level.
                rank = (1.0 if source.reclaims else 0.0, near)
                current = decisions.get(source.target)
                if current is None or rank > current[1]:
                    decisions[source.target] = (Decision(source, value), rank)
        # Conditions that vanished (a zone went away, a rule was removed) are forgotten.
        present = {source for source, _ in found}
        for source in [s for s in self.watches if s not in present]:
            del self.watches[source]
        return Plan(tuple(notices), tuple(d for d, _ in decisions.values()), self.interval(nearest, busy))

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

    @staticmethod
    def holds(decision: Decision, obs: Observation) -> Tuple[bool, Optional[float]]:
        """Whether the condition still holds in a fresh observation (not at or below its clear level), and its value."""
        source = decision.source
        value = source.measure(obs)
        if value is None:
            return source.holds_unmeasured, None
        return not source.clear(value, obs), value

    def next_step(
        self, decision: Decision, obs: Observation, done: Sequence[Step], available: FrozenSet[str], now: float
    ) -> Optional[Step]:
        """The next rung for a decision, given the steps done and a fresh observation; None when finished."""
        if any(step.action == SKIP for step in done):
            return None
        still, value = self.holds(decision, obs)
        if not still:
            if not done:
                shown = decision.source.text(value) if value is not None else "gone"
                return Step(SKIP, reason=f"recovered before acting ({shown})")
            return None
        source = decision.source
        compacted = any(step.action == COMPACT for step in done)
        reclaimed = any(step.action == RECLAIM for step in done)
        if source.compacts and not compacted:
            if COMPACT in available:
                return Step(COMPACT, node=source.node)
            if not source.reclaims:
                return Step(SKIP, reason="no compaction backend available")
        if reclaimed:
            # Reclaim frees pages wherever they were, often as small blocks: compacting once more
            # afterwards is what turns them into large ones (measured in a Debian 6.1 guest: reclaim
            # followed by compaction freed about twice the huge-page blocks of either alone).
            again = source.compacts and COMPACT in available and [s.action for s in done].count(COMPACT) == 1
            return Step(COMPACT, node=source.node) if again else None
        if not source.reclaims:
            return None
        if RECLAIM not in available:
            return Step(SKIP, reason="no reclaim backend available", lacking=RECLAIM)
        if now < self.thrash.blocked_until:
            return Step(
                SKIP, reason=f"reclaim suspended by the thrash guard for {self.thrash.blocked_until - now:.0f} s more"
            )
        limits = self.config.reclaim
        wanted = source.deficit_pages(obs) * self.page_size
        size = min(max(wanted, limits.min), limits.max_per_event)
        left = limits.max_per_hour - self.reclaimed_last_hour(now)
        if left < limits.min:
            return Step(
                SKIP, reason=f"hourly reclaim cap reached ({limits.max_per_hour - left} of {limits.max_per_hour} bytes)"
            )
        return Step(RECLAIM, node=source.node, size=min(size, left), after_compaction=compacted)

    def acted(self, decision: Decision, now: float, judge: bool = True) -> None:
        """An event ran for a decision: its target cools down. With `judge` (steps ran, for real), a zone
        condition's ladder is judged at the next poll (_judge)."""
        target = decision.source.target
        self.cooldown_until[target] = now + self.cooldown(target)
        self.acted_at[target] = now
        if judge and decision.source.zone_key is not None:
            self.judging[target] = (decision.source, decision.value, now)

    def cooldown(self, target: Tuple[str, int, str]) -> float:
        """The target's cooldown now: guards.cooldown, or longer after ladders that bought nothing."""
        config = self.config
        return min(max(self.cooldowns.get(target, config.cooldown), config.cooldown), config.cooldown_max)

    def _judge(self, found: Sequence[Tuple[Condition, float]], obs: Observation) -> List[Notice]:
        """Whether the ladders of the last poll bought anything, told by this poll's values: a ladder that
        covered WORKED of the way to the clear level puts its target's cooldown back to guards.cooldown; one
        that did not doubles it (up to guards.cooldown_max), the cooldown running now included."""
        if not self.judging:
            return []
        if self.config.cooldown_max <= self.config.cooldown:
            self.judging.clear()  # no back-off configured
            return []
        values = dict(found)
        notices: List[Notice] = []
        for target, (source, before, at) in list(self.judging.items()):
            del self.judging[target]
            after = values.get(source)
            if after is None:
                continue  # gone, or not measured this poll
            share = source.progress(before, after, obs)
            if share is None:
                continue
            if share >= WORKED:
                self.cooldowns.pop(target, None)
                self.cooldown_until[target] = min(self.cooldown_until.get(target, at), at + self.config.cooldown)
                continue
            old = self.cooldown(target)
            new = min(old * 2, self.config.cooldown_max)
            self.cooldowns[target] = new
            self.cooldown_until[target] = at + new
            notices.append(
                Notice(
                    "backed_off",
                    source=source,
                    value=after,
                    before=before,
                    fields=(
                        ("BEFORE", source.field(before)),
                        ("PROGRESS", f"{share:.3f}"),
                        ("COOLDOWN_S", f"{new:.0f}"),
                        ("COOLDOWN_BEFORE_S", f"{old:.0f}"),
                    ),
                )
            )
        return notices

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

    def carry_out(self, decisions: Sequence[Decision], executor: Executor) -> Optional[Observation]:
        """Run each decision's ladder against `executor`, then rebase the rates on the last measurement.
        The last observation when a step ran (or would, in a dry run), else None."""
        latest: Optional[Observation] = None
        for decision in decisions:
            if executor.stopping():
                break
            latest = self.run_ladder(decision, executor) or latest
        if latest is not None:
            # Rates start again after shrinkd's own actions (reclaim counts as allocstall).
            self.rebase(latest, executor.now())
        return latest

    def run_ladder(self, decision: Decision, executor: Executor) -> Optional[Observation]:
        """One decision's ladder: measure, step, measure again, until next_step says it is done.
        The last observation when a step ran, else None."""
        current = executor.measure(None)  # measure again right before acting
        if current is None:
            return None
        done: List[Step] = []
        ran = False
        while not executor.stopping():
            step = self.next_step(decision, current, done, executor.kinds(), executor.now())
            if step is None:
                break
            done.append(step)
            if step.action == SKIP:
                if step.lacking:
                    executor.lacking(decision, step.lacking, step.reason)
                else:
                    executor.skipped(decision, step.reason)
                break
            if not executor.run(decision, step):
                break
            after = executor.measure(step)
            if after is None:
                break
            if step.action == RECLAIM:
                # A dry run counts toward the hourly cap (to show what would happen) but cannot cause thrashing.
                # What was taken counts when it is more than was asked (a backend's overshoot: actions/stepped.py).
                self.reclaimed(max(step.size, executor.taken()), current, executor.now(), watch=executor.watch_reclaim)
            executor.acted(decision, step, current, after)
            current, ran = after, True
        if ran and executor.stopping():
            executor.abandoned(decision)
        if done:
            # Whether the steps bought anything is judged at the next poll: not after a skip, nor a dry run.
            self.acted(decision, executor.now(), judge=ran and executor.judge_ladders)
        return current if ran else None

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
