"""`shrinkd replay`: the real policy run over a recorded trace with another configuration.

Each recorded poll is handed to shrinkd.policy.Policy with the clock reading
the daemon had (so sustain counts, cooldowns, hourly caps and rates run on
the recorded time), and its decisions go down the ladder through the driver
the daemon uses (Policy.carry_out, with an executor that reads the trace), told by the daemon's own event messages
(shrinkd.events), as a dry run tells them. Nothing is read from the running
system: page size, named orders and backends come from the trace.

What a replay cannot know is what an action would have changed. It assumes:
- before acting, the zone is as the poll found it;
- after each step (compaction, reclaim), the zone is as the next recorded poll
  found it (what followed in the recording: after the recording daemon's own
  action if it acted, unchanged if it did not), and so for the poll's later
  decisions and the rates' restart after the poll's actions (Policy.rebase);
- the backends are those the recording daemon had (`--backends` says others),
  less those the candidate configuration disables;
- a reclaim counts against the hourly cap as asked for; the thrash guard does
  not watch after it (nothing was reclaimed), as in a dry run.
Replaying the same trace with the same configuration gives the same output.
"""

from __future__ import annotations

import io

from .actions import registry
from .config import Current
from .events import PLANNED, Events
from .journal import INFO, Journal
from .policy import Executor, Policy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence

    from .config import Config
    from .policy import Decision, Step
    from .trace import Trace
    from .view import Observation

ACTIONS = ("compacted", "reclaimed", "would_compact", "would_reclaim")


class Told:
    """One event of the replay, as the daemon would have logged it."""

    __slots__ = ("fields", "kind", "message", "t")

    def __init__(self, t: float, kind: str, message: str, fields: Dict[str, Any]) -> None:
        self.t = t
        self.kind = kind
        self.message = message
        self.fields = fields


class _Collector:
    """Takes the place of shrinkd.outputs.Outputs as the events' observer."""

    def __init__(self) -> None:
        self.now = 0.0
        self.told: List[Told] = []

    def event(self, kind: str, message: str, fields: Mapping[str, object]) -> None:
        self.told.append(Told(self.now, kind, message, {k: v for k, v in fields.items() if v is not None}))


class _Events(Events):
    """The daemon's events, with plain log lines (the policy's warnings) kept instead of logged."""

    def __init__(self, page_size: int) -> None:
        super().__init__(Journal("stderr", stream=io.StringIO()), None, page_size)
        self.warnings: List[str] = []

    def log(self, message: str, priority: int = INFO) -> None:
        self.warnings.append(message)


class _Replayed(Executor):
    """The executor of the ladder in a replay: nothing runs; a measurement before any step is the
    poll's observation, after a step the next poll's, as a dry run tells it."""

    watch_reclaim = False

    def __init__(self, tell: Events, kinds: FrozenSet[str]) -> None:
        self.tell = tell
        self.available = kinds
        self.t = 0.0
        self.current: Optional[Observation] = None
        self.following: Optional[Observation] = None

    def at(self, t: float, obs: Observation, following: Observation) -> None:
        self.t, self.current, self.following = t, obs, following

    def now(self) -> float:
        return self.t

    def stopping(self) -> bool:
        return False

    def kinds(self) -> FrozenSet[str]:
        return self.available

    def measure(self, after: Optional[Step]) -> Optional[Observation]:
        if after is not None:
            self.current = self.following
        return self.current

    def run(self, decision: Decision, step: Step) -> bool:
        return True

    def acted(self, decision: Decision, step: Step, before: Observation, after: Observation) -> None:
        self.tell.acted(decision, step, before, after, None, 0.0, dry_run=True)

    def skipped(self, decision: Decision, reason: str) -> None:
        self.tell.skipped(decision, reason)

    def abandoned(self, decision: Decision) -> None:
        self.tell.abandoned(decision)


class Outcome:
    """What a replay found: its events, the recorded ones, the polls replayed, the backends assumed."""

    def __init__(self, trace: Trace, told: List[Told], warnings: List[str], backends: Sequence[str]) -> None:
        self.trace = trace
        self.told = told
        self.warnings = warnings
        self.backends = backends

    def totals(self) -> Dict[str, Any]:
        return summarize([(item.kind, item.fields) for item in self.told], self.trace.page_size)

    def recorded(self) -> Dict[str, Any]:
        return summarize([(event.kind, event.fields) for event in self.trace.events], self.trace.page_size)


def summarize(events: Sequence[Any], page_size: int) -> Dict[str, Any]:
    """Counts of events by kind, actions, reclaim asked for and reclaimed (bytes; None where unknown)."""
    counts: Dict[str, int] = {}
    asked = reclaimed = uncounted = 0
    for kind, fields in events:
        counts[kind] = counts.get(kind, 0) + 1
        if PLANNED.get(kind, kind) == "reclaimed":
            asked += int(fields.get("requested_bytes") or 0)
            pages = fields.get("pages_reclaimed")
            if pages is None:
                uncounted += 1  # a dry run, or a backend that could not count
            else:
                reclaimed += int(pages) * page_size
    return {
        "events": counts,
        # what was done, or in a dry run (a replay, a recording without --act) what would have been
        "compactions": counts.get("compacted", 0) + counts.get("would_compact", 0),
        "reclaims": counts.get("reclaimed", 0) + counts.get("would_reclaim", 0),
        "reclaim_asked_bytes": asked,
        "reclaimed_bytes": reclaimed,
        "reclaims_uncounted": uncounted,
    }


def recorded_backends(trace: Trace) -> List[str]:
    """The backends the recording daemon had last (its header, then started and backends_changed events)."""
    names = [str(name) for name in trace.header.get("backends") or []]
    for event in trace.events:
        if event.kind in ("started", "backends_changed") and "backends" in event.fields:
            names = [name for name in str(event.fields["backends"]).split(",") if name]
    return names


def replay(trace: Trace, config: Config, backends: Optional[Sequence[str]] = None) -> Outcome:
    """Run the policy over every poll of `trace` with `config`."""
    names = list(backends) if backends is not None else recorded_backends(trace)
    usable = [name for name in names if config.backend_enabled(name)]
    kinds = registry.kinds(usable)
    page_size = trace.page_size
    policy = Policy(Current(config), page_size, orders=trace.orders)
    tell = _Events(page_size)
    collector = _Collector()
    tell.observer = collector
    polls = trace.polls
    hands = _Replayed(tell, kinds)
    for index, poll in enumerate(polls):
        collector.now = poll.t
        following = polls[index + 1].obs if index + 1 < len(polls) else poll.obs
        hands.at(poll.t, poll.obs, following)
        plan = policy.evaluate(poll.obs, poll.t)
        for notice in plan.notices:
            tell.notice(notice)
        policy.carry_out(plan.decisions, hands)
    return Outcome(trace, collector.told, tell.warnings, usable)


# ---------------------------------------------------------------------------
# Showing it.


def _offset(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"+{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _mib(size: Optional[int]) -> str:
    return "unknown" if size is None else f"{size / 1048576:.1f} MiB"


def render(outcome: Outcome, config_sources: Sequence[str], quiet: bool = False) -> str:
    import time

    trace = outcome.trace
    polls = trace.polls
    start, end = polls[0].t, polls[-1].t
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(trace.wall(start)))
    lines = [
        f"replay of {', '.join(trace.sources)}: {len(polls)} polls over {_offset(end - start)[1:]} from {when} "
        f"(kernel {trace.header.get('kernel', '?')}, page size {trace.page_size})",
        f"configuration {', '.join(config_sources)}; backends assumed: {', '.join(outcome.backends) or 'none'}",
    ]
    for warning in outcome.warnings:
        lines.append(f"  warning: {warning}")
    if not quiet:
        for item in outcome.told:
            lines.append(f"  {_offset(item.t - start)}  {item.message}")
    replayed, recorded = outcome.totals(), outcome.recorded()
    lines.append(f"{'':24s}{'replay':>14s}{'recorded':>14s}")
    for label, key in (("conditions triggered", "triggered"), ("conditions cleared", "cleared"), ("skipped", "skipped"), ("backed off", "backed_off"), ("failed", "action_failed")):
        lines.append(f"{label:24s}{replayed['events'].get(key, 0):>14d}{recorded['events'].get(key, 0):>14d}")
    lines.append(f"{'compactions':24s}{replayed['compactions']:>14d}{recorded['compactions']:>14d}")
    lines.append(f"{'reclaims':24s}{replayed['reclaims']:>14d}{recorded['reclaims']:>14d}")
    lines.append(f"{'reclaim asked for':24s}{_mib(replayed['reclaim_asked_bytes']):>14s}{_mib(recorded['reclaim_asked_bytes']):>14s}")
    counted = _mib(recorded["reclaimed_bytes"]) if recorded["reclaims"] > recorded["reclaims_uncounted"] else "none"
    lines.append(f"{'reclaimed':24s}{'(not known)':>14s}{counted:>14s}")
    return "\n".join(lines) + "\n"


def document(outcome: Outcome, config_sources: Sequence[str]) -> Dict[str, Any]:
    trace = outcome.trace
    return {
        "trace": list(trace.sources),
        "recording": trace.header["recording"],
        "config": list(config_sources),
        "backends": list(outcome.backends),
        "polls": len(trace.polls),
        "warnings": outcome.warnings,
        "events": [
            {"t": item.t, "wall": trace.wall(item.t), "event": item.kind, "message": item.message, "fields": item.fields}
            for item in outcome.told
        ],
        "replay": outcome.totals(),
        "recorded": outcome.recorded(),
    }
