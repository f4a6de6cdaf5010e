"""What the daemon tells: each event's message and fields, its status line to systemd, its state file.

Every event shrinkd logs is composed here, from the conditions' own texts and
fields (shrinkd.conditions), and sent through shrinkd.journal (journald's
native protocol, or stderr); docs/events.md lists them. The status line
(`systemctl status shrinkd`) names the zone condition nearest its trigger, the
last action and how often the daemon wakes, and goes out with READY=1 and
STATUS= (shrinkd.notify). The state file (/run/shrinkd/status.json) holds the
same and every watched value, predictions included, for `shrinkd status`.
"""

from __future__ import annotations

import os
import time

from .journal import DEBUG, ERR, INFO, NOTICE, WARNING, Journal
from .jsontext import to_json
from .metrics import count, format_mib
from .notify import Notifier
from .safefile import OutputError, make_dir, write_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

    from .actions import Result

    class Observer(Protocol):
        def event(self, kind: str, message: str, fields: Mapping[str, object]) -> None: ...
    from .conditions import Condition
    from .policy import Decision, Notice, Step, WatchState
    from .view import Observation

__all__ = ["DEBUG", "ERR", "INFO", "NOTICE", "WARNING", "Events"]

# A dry run's steps are events of their own (own MESSAGE_IDs, own metric labels), never taken for actions.
PLANNED = {"would_compact": "compacted", "would_reclaim": "reclaimed"}
DRY_KIND = {acted: planned for planned, acted in PLANNED.items()}

RUN_DIR = "/run/shrinkd"
STATE_FILE = "status.json"


def state_file(writable: bool = False) -> Optional[str]:
    """The running daemon's state file: in systemd's $RUNTIME_DIRECTORY (RuntimeDirectory=shrinkd)
    or /run/shrinkd. With `writable` (the daemon), the directory is made when missing (a daemon that
    systemd did not start: an init script's, or one run in the foreground), and None where this
    process could not write there."""
    directory = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or RUN_DIR
    if writable:
        make_dir(directory)  # there already, or not ours to make: the access check below tells
        if not os.access(directory, os.W_OK):
            return None
    return os.path.join(directory, STATE_FILE)


RECENT = 1000  # event kinds kept for `--once`'s exit code and the tests; a daemon runs for months


class Events:
    def __init__(self, journal: Journal, notifier: Optional[Notifier] = None, page_size: int = 4096) -> None:
        self.journal = journal
        self.notifier = notifier or Notifier({})
        self.page_size = page_size
        self.kinds: List[str] = []  # the latest events' kinds, in order
        self.worst = ""
        self.last_action = "none"
        self.wakes_text = ""
        self.ready = False
        self.state_failed = False
        self.observer: Optional[Observer] = None  # also handed every event (the trace, the metrics)

    # -- plumbing -------------------------------------------------------------------

    def event(self, kind: str, message: str, priority: int = INFO, **fields: object) -> None:
        self.kinds.append(kind)
        if len(self.kinds) > RECENT:
            del self.kinds[: RECENT // 2]
        self.journal.event(kind, message, priority, fields)
        if self.observer is not None:
            self.observer.event(kind, message, fields)

    def log(self, message: str, priority: int = INFO) -> None:
        """A plain line, no event."""
        self.journal.log(message, priority)

    def debug(self, message: str) -> None:
        self.journal.debug(message)

    def close(self) -> None:
        self.notifier.close()

    @property
    def debugging(self) -> bool:
        """Whether debug lines are logged (a traceback goes with an internal error then)."""
        return self.journal.debug_enabled

    def configure(self, target: str, debug: bool) -> None:
        """Where events go and whether debug lines do, from a reloaded configuration."""
        self.journal.configure(target, debug)

    def watchdog(self) -> None:
        """Ping systemd's watchdog when it watches (before each long kernel write of a ladder)."""
        if self.notifier.watchdog_interval() is not None:
            self.notifier.watchdog()

    def reloading(self) -> None:
        self.notifier.reloading()

    def stopping(self) -> None:
        self.notifier.stopping()

    # -- the daemon's life ------------------------------------------------------------

    def started(
        self,
        backends: str,
        backend_names: Sequence[str],
        psi: str,
        how: str,
        sources: Sequence[str],
        dry_run: bool,
        unused: Sequence[str] = (),
    ) -> None:
        """`psi` is "once", "trigger" or "polling"; `how` says it in words; `unused`, one `name: why`
        for each reclaim backend the daemon does not have (judgement.reclaim_lines)."""
        if self.journal.fallback_reason:
            where = f"syslog ({self.journal.syslog_path}) and stderr" if self.journal.syslog else "stderr"
            self.log(f"events go to {where}: {self.journal.fallback_reason}", INFO)
        self.event(
            "started",
            f"started: backends {backends}; {how}; config {', '.join(sources)}"
            + (f"; reclaim backends not used: {' | '.join(unused)}" if unused else "")
            + ("; dry run" if dry_run else ""),
            backends=",".join(backend_names),
            psi=psi,
            config=",".join(sources),
            dry_run=dry_run,
            reclaim_unused=" | ".join(unused) or None,
        )

    def config_warning(self, problem: str) -> None:
        """Part of the configuration cannot act on this system (shrinkd.judgement)."""
        self.event("config_warning", f"configuration: {problem}", WARNING, problem=problem)

    def stopped(self, polls: int) -> None:
        self.event("stopped", f"stopped after {count(polls, 'poll')}", polls=polls)

    def reloaded(self, sources: Sequence[str], dry_run: bool) -> None:
        self.event(
            "reloaded",
            f"configuration reloaded from {', '.join(sources)}" + ("; dry run" if dry_run else ""),
            config=",".join(sources),
            dry_run=dry_run,
        )

    def reload_failed(self, error: Exception) -> None:
        self.event("reload_failed", f"reload failed, keeping the running configuration: {error}", ERR, error=str(error))

    def poll_failed(self, what: str, error: str, detail: str = "") -> None:
        """`what` is the message ("poll failed: ..."); `detail` (a traceback) replaces the error field when given."""
        self.event("poll_failed", what, ERR, error=detail or error)

    def backends_changed(self, reason: str, before: Sequence[str], after: Sequence[str], described: str) -> None:
        added = [name for name in after if name not in before]
        removed = [name for name in before if name not in after]
        change = "; ".join(
            part
            for part in (
                f"added {', '.join(added)}" if added else "",
                f"removed {', '.join(removed)}" if removed else "",
            )
            if part
        )
        self.event(
            "backends_changed",
            f"backends changed ({reason}): {change}; now {described}",
            NOTICE,
            backends=",".join(after),
            added=",".join(added) or None,
            removed=",".join(removed) or None,
            reason=reason,
        )

    def memory_changed(self, blocks: Sequence[str]) -> None:
        self.event("memory_changed", f"memory blocks changed: {', '.join(blocks)}", NOTICE, blocks=", ".join(blocks))

    # -- what the policy says -------------------------------------------------------------

    def notice(self, notice: Notice) -> None:
        if notice.kind == "warning":
            self.log(notice.message, WARNING)
            return
        if notice.source is None:  # the thrash guard backing off, an allocation failure
            kind = "thrash_backoff" if notice.kind == "thrash" else notice.kind
            self.event(kind, notice_text(notice), WARNING, **dict(notice.fields))
            return
        assert notice.source is not None and notice.value is not None
        self.event(
            notice.kind,
            notice_text(notice),
            NOTICE if notice.kind in ("triggered", "backed_off") else INFO,
            **notice.source.fields(),
            value=notice.source.field(notice.value),
            **dict(notice.fields),
        )

    def skipped(self, decision: Decision, reason: str) -> None:
        source = decision.source
        self.event(
            "skipped", f"{source.name}: {source.where()}: skipped: {reason}", INFO, **source.fields(), reason=reason
        )

    def reclaim_unavailable(self, decision: Decision, backends: Sequence[str], unused: Sequence[str]) -> None:
        """A ladder wanted to reclaim and no reclaim backend is here: it compacted only. Said once (the
        daemon's choice) with `unused`, one `name: why` for each reclaim backend (judgement.reclaim_lines)."""
        source = decision.source
        self.event(
            "reclaim_unavailable",
            f"reclaim not possible: no reclaim backend here ({' | '.join(unused) or 'none known'});"
            f" wanted by {source.name} ({source.where()}); ladders stop after compaction"
            " (said once until the backends change)",
            WARNING,
            **source.fields(),
            backends=",".join(backends),
            missing=" | ".join(unused),
        )

    def abandoned(self, decision: Decision) -> None:
        self.log(f"{decision.source.name}: stopping: the rest of the ladder is abandoned", NOTICE)

    def action_failed(self, decision: Decision, step: Step, error: Exception) -> None:
        source = decision.source
        self.event(
            "action_failed",
            f"{source.name}: {source.where()}: {step.action} failed: {error}",
            ERR,
            **source.fields(),
            action=step.action,
            error=str(error),
        )

    def acted(
        self,
        decision: Decision,
        step: Step,
        before: Observation,
        after: Observation,
        result: Optional[Result],
        seconds: float,
        dry_run: bool,
    ) -> None:
        """One compacted or reclaimed event with the watched value, free pages and timing before and after."""
        from .effect import reclaim_effect

        source = decision.source
        fields = source.fields()
        shown_before = _shown(source, before)
        shown_after = None if dry_run else _shown(source, after)
        backend = result.backend if result else None
        duration_ms = f"{(result.duration_ns / 1e6 if result else seconds * 1000):.1f}"
        fields.update(action=step.action, backend=backend, before=shown_before, after=shown_after, dry_run=dry_run)
        if result is not None:
            fields["duration_ms"] = duration_ms
        key = source.zone_key
        if key is not None:
            zone_before, zone_after = before.zones.get(key), after.zones.get(key)
            fields["free_pages_before"] = zone_before.free_pages if zone_before else None
            if not dry_run:
                fields["free_pages_after"] = zone_after.free_pages if zone_after else None
        what = f"{source.name} ({source.where()}"
        if dry_run:
            what += f" at {shown_before})" if shown_before is not None else ")"
            how = ""
        else:
            what += ")" + (
                f": {shown_before} -> {shown_after}" if shown_before is not None and shown_after is not None else ""
            )
            how = f" in {duration_ms} ms via {backend}"
        clock = time.strftime("%H:%M:%S")
        if step.action == "compact":
            target = f"node {step.node}" if step.node is not None else "all nodes"
            verb = "would compact" if dry_run else "compacted"
            self.event(_kind("compacted", dry_run), f"{verb} {target} for {what}{how}", NOTICE, **fields)
            self.last_action = f"{'would have compacted' if dry_run else 'compaction of'} {target} at {clock}"
            return
        effect = reclaim_effect(result, before, after)
        reclaimed, origin = effect.pages, effect.origin
        fields.update(
            requested_bytes=step.size,
            requests=result.requests if result else None,
            pages_reclaimed=reclaimed,
            pages_reclaimed_source=origin,
            partial=result.partial if result else None,
            tried=" | ".join(result.failures) if result and result.failures else None,
            vfs_cache_pressure=result.cache_pressure if result else None,
        )
        if dry_run:
            message = f"would reclaim {format_mib(step.size)} for {what}"
        else:
            amount = (
                f"{reclaimed} pages ({format_mib(reclaimed * self.page_size)})"
                if reclaimed is not None
                else "an unknown amount"
            )
            partial = " (the kernel could not reclaim all of it)" if result is not None and result.partial else ""
            if result is not None and result.cache_pressure is not None:
                how += f" at vfs_cache_pressure {result.cache_pressure}"
            message = f"reclaimed {amount} of {format_mib(step.size)} asked for {what}{how}{partial}"
        self.event(_kind("reclaimed", dry_run), message, NOTICE, **fields)
        if dry_run:
            self.last_action = f"would have reclaimed {format_mib(step.size)} at {clock}"
        else:
            self.last_action = f"reclaim of {format_mib(step.size)} via {backend} at {clock}"

    # -- the status line ----------------------------------------------------------------

    def status_line(self, dry_run: bool) -> str:
        mode = " (dry run)" if dry_run else ""
        worst = self.worst or "no zone watched"
        return f"worst: {worst}; last action: {self.last_action}{mode}{self.wakes_text}"

    def wakes(self, rates: Mapping[str, float]) -> None:
        """How often the daemon wakes and why (per minute), for the status line."""
        total = sum(rates.values())
        parts = ", ".join(f"{why} {rate:.1f}" for why, rate in sorted(rates.items(), key=lambda item: -item[1]))
        self.wakes_text = f"; wakes {total:.1f}/min ({parts})" if rates else ""

    def update_status(self, watches: Mapping[Condition, WatchState], obs: Observation, dry_run: bool) -> None:
        """Name the zone condition nearest its trigger; READY=1 the first time, STATUS= when it changed."""
        worst: Optional[Tuple[float, str]] = None
        for source, state in watches.items():
            if source.zone_key is None:
                continue
            near = source.closeness(state.value, obs)
            if worst is None or near > worst[0]:
                text = f"{source.where()} {source.kind} {source.field(state.value)}"
                worst = (near, f"{text} ({source.owner}, {near * 100:.0f}% of trigger)")
        self.worst = worst[1] if worst else ""
        self.send_status(dry_run)

    def send_status(self, dry_run: bool, again: bool = False) -> None:
        """READY=1 with the status line the first time (and with `again`, after a reload), else STATUS= when changed."""
        if not self.ready or again:
            self.ready = True
            self.notifier.ready(self.status_line(dry_run))
        else:
            self.notifier.status(self.status_line(dry_run))

    def write_state(self, path: str, state: Dict[str, Any]) -> None:
        """The daemon's state for `shrinkd status`, replaced whole (a reader never sees half of it);
        a failure is said once and writing stops."""
        if self.state_failed:
            return
        try:
            write_file(path, to_json(state).encode(), sync=False)  # in /run: gone at the next boot anyway
        except OutputError as error:
            self.state_failed = True
            self.log(f"state file {error}; not written again", WARNING)


def notice_text(notice: Notice) -> str:
    """The message of a policy's notice: a condition triggered or cleared, an allocation failure
    (reported in the kernel's log, or counted in /proc/vmstat); the thrash guard's and a warning's
    come with their reasons."""
    source, value = notice.source, notice.value
    if notice.kind == "backed_off" and source is not None and value is not None and notice.before is not None:
        fields = dict(notice.fields)
        cooldown, before = float(fields["COOLDOWN_S"]), float(fields["COOLDOWN_BEFORE_S"])
        longest = " (the longest, guards.cooldown_max)" if cooldown == before else ""
        return (
            f"{source.name}: {source.where()}: the last actions bought nothing: {source.text(notice.before)} before,"
            f" {source.text(value)} at the next poll ({float(fields['PROGRESS']) * 100:.0f}% of the way to the clear"
            f" level); next action after {cooldown:.0f} s{longest}"
        )
    if source is not None and value is not None:
        return f"{source.name} {notice.kind}: {source.where()} at {source.text(value)}"
    if notice.kind == "allocation_failed":
        fields = dict(notice.fields)
        if fields["SOURCE"] == "vmstat":
            return f"allocation failures counted by the kernel: {fields['COUNTER']} +{fields['COUNT']}"
        return (
            f"allocation failure reported by the kernel: order {fields['ORDER']} in zone {fields['ZONE']} "
            f"for {fields['PROCESS'] or 'the kernel'} (mode {fields['MODE'] or 'unknown'})"
        )
    return notice.message


def _kind(kind: str, dry_run: bool) -> str:
    return DRY_KIND[kind] if dry_run else kind


def _shown(source: Condition, obs: Observation) -> Optional[str]:
    value = source.measure(obs)
    return source.field(value) if value is not None else None
