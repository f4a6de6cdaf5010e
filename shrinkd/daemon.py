"""The loop: poll, decide, act, tell; signals, reload, sd_notify, watchdog.

Each poll re-reads, through files kept open (procfs.OpenFile), what the
decisions need (Daemon.measure), hands the observation to the policy and runs
what it decides, measuring again before and after every action. Between polls
the process sleeps in poll(2) on a self-pipe (signals), the PSI trigger and
the kernel's uevent socket, so SIGTERM, SIGHUP, memory pressure and device
changes wake it at once. Signal handlers only set flags. An error in one poll
is logged and the next poll goes on.
"""

from __future__ import annotations

import os
import select
import time

from . import metrics, parse
from .actions import Backends, Result, Tunables
from .config import Config
from .errors import InputError, MissingInputError, ShrinkdError
from .journal import ERR, INFO, NOTICE, WARNING, Journal
from .notify import Notifier
from .policy import (
    COMPACT,
    RECLAIM,
    SKIP,
    VMSTAT_KEYS,
    Decision,
    Global,
    Notice,
    Observation,
    Policy,
    Step,
    Watch,
    closeness,
    observe,
    watch_value,
)
from .procfs import OpenFile, ProcFS, Snapshot
from .psi import Trigger, open_trigger
from .udevwatch import UeventWatch

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from typing import Callable, Dict, List, Optional, Sequence, Tuple

    Clock = Callable[[], float]
    ConfigLoader = Callable[[], Config]
else:
    # The C module behind `signal`, with the same functions and constants: the
    # `signal` wrapper adds enum, functools and collections, 0.8 MB resident
    # in a daemon that needs none of them.
    import _signal as signal

_PAGES_RECLAIMED = ("pgsteal_anon", "pgsteal_file")
ZONEINFO_REFRESH = 60.0  # seconds
DETECT_INTERVAL = 10.0  # seconds between looks for new or gone backends, without kernel uevents


def pick_counters(text: str, keys: Sequence[str], source: str) -> Dict[str, int]:
    """The named counters of a `key value` file such as /proc/vmstat; keys the kernel lacks are left out.

    The poll loop needs a dozen of /proc/vmstat's ~190 counters: finding them is a
    small fraction of the cost of parsing every line (parse.parse_vmstat).
    """
    found: Dict[str, int] = {}
    for key in keys:
        at = text.find(key + " ")
        while at > 0 and text[at - 1] != "\n":
            at = text.find(key + " ", at + 1)
        if at < 0:
            continue
        end = text.find("\n", at)
        value = text[at + len(key) + 1 : end if end >= 0 else len(text)].strip()
        try:
            found[key] = int(value)
        except ValueError:
            line = text.count("\n", 0, at) + 1
            raise InputError(source, line, f"{key}: expected an integer, got {value[:20]!r}") from None
    return found


class Reader:
    """The /proc files of a poll, kept open and re-read from offset 0.

    /proc/zoneinfo (a few hundred lines; its watermarks and managed pages rarely
    change) is parsed again only when asked; in between, the last parse is reused.
    /proc/vmstat and /proc/pressure/memory are read only when asked.
    """

    def __init__(self, procfs: ProcFS) -> None:
        self.buddyinfo = OpenFile(procfs.proc("buddyinfo"))
        self.optional: Dict[str, Optional[OpenFile]] = {}
        for name in ("zoneinfo", "vmstat", "pressure/memory"):
            try:
                self.optional[name] = OpenFile(procfs.proc(name))
            except MissingInputError:
                self.optional[name] = None
        self._zoneinfo: Optional[Tuple[parse.ZoneInfo, ...]] = None

    def _text(self, name: str) -> Optional[Tuple[str, str]]:
        handle = self.optional[name]
        if handle is None:
            return None
        try:
            return handle.read(), str(handle.path)
        except MissingInputError:
            if name == "pressure/memory":  # psi=0: the file exists and reads fail (EOPNOTSUPP)
                return None
            raise

    def snapshot(self, zoneinfo: bool = True, counters: bool = True) -> Snapshot:
        """Read the files; `zoneinfo=False` reuses the last /proc/zoneinfo (if there is one),
        `counters=False` leaves out /proc/vmstat and /proc/pressure/memory."""
        if zoneinfo or self._zoneinfo is None:
            text = self._text("zoneinfo")
            self._zoneinfo = parse.parse_zoneinfo(*text) if text else None
        vmstat = self._text("vmstat") if counters else None
        pressure = self._text("pressure/memory") if counters else None
        return Snapshot(
            buddyinfo=parse.parse_buddyinfo(self.buddyinfo.read(), str(self.buddyinfo.path)),
            zoneinfo=self._zoneinfo,
            vmstat=pick_counters(vmstat[0], VMSTAT_KEYS, vmstat[1]) if vmstat else None,
            meminfo=None,
            pressure=parse.parse_pressure(*pressure) if pressure else None,
        )

    def close(self) -> None:
        self.buddyinfo.close()
        for handle in self.optional.values():
            if handle is not None:
                handle.close()


def pages_reclaimed(
    result: Optional[Result], before: Observation, after: Observation
) -> Tuple[Optional[int], Optional[str]]:
    """Pages reclaimed and where the number comes from: the backend's own count ("backend"),
    else the growth of /proc/vmstat's pgsteal_anon + pgsteal_file ("vmstat"), else (None, None)."""
    if result is None:
        return None, None
    if result.pages_reclaimed is not None:
        return result.pages_reclaimed, "backend"
    if all(name in before.vmstat and name in after.vmstat for name in _PAGES_RECLAIMED):
        return sum(after.vmstat[n] - before.vmstat[n] for n in _PAGES_RECLAIMED), "vmstat"
    return None, None


def _mib(size: int) -> str:
    return f"{size / 1048576:.1f} MiB"


class Daemon:
    def __init__(
        self,
        procfs: ProcFS,
        config: Config,
        journal: Journal,
        *,
        reload: Optional[ConfigLoader] = None,
        notifier: Optional[Notifier] = None,
        tunables: Optional[Tunables] = None,
        clock: Clock = time.monotonic,
        page_size: Optional[int] = None,
        once: bool = False,
        dry_run: bool = False,
        debug: bool = False,
        uevents: bool = True,
    ) -> None:
        self.procfs = procfs
        self.config = config
        self.journal = journal
        self.reload_config = reload
        self.notifier = notifier or Notifier({})
        self.clock = clock
        self.page_size = page_size or os.sysconf("SC_PAGE_SIZE")
        self.once = once
        self.force_dry_run = dry_run
        self.force_debug = debug
        self.use_uevents = uevents
        self.policy = Policy(config, self.page_size, once=once)
        self.backends = Backends(procfs, config, tunables, self.page_size)
        self.reader: Optional[Reader] = None
        self.trigger: Optional[Trigger] = None
        self.uevents: Optional[UeventWatch] = None
        self.stop_requested = False
        self.reload_requested = False
        self.ready = False
        self.last_action = "none"
        self.worst = ""
        self.polls = 0
        self.events: List[str] = []  # the latest events' kinds, in order (for --once's exit code and tests)
        self._wake_read = -1
        self._wake_write = -1
        self._old_handlers: Dict[int, object] = {}
        self._old_wakeup_fd = -1
        self._zoneinfo_at = float("-inf")
        self._detected_at = float("-inf")

    # -- properties ---------------------------------------------------------------

    @property
    def dry_run(self) -> bool:
        return self.force_dry_run or self.config.dry_run

    # -- events -----------------------------------------------------------------

    def event(self, kind: str, message: str, priority: int = INFO, **fields: object) -> None:
        self.events.append(kind)
        if len(self.events) > 1000:  # a daemon runs for months
            del self.events[:500]
        self.journal.event(kind, message, priority, fields)

    # -- start and stop -----------------------------------------------------------

    def start(self) -> None:
        """Open the /proc files, arm PSI, open the uevent socket, install signal handlers."""
        self.reader = Reader(self.procfs)
        self._arm_psi()
        if self.use_uevents and not self.once:
            self._start_uevents()
        if not self.once:
            self._install_signals()
        if self.journal.fallback_reason:
            self.journal.log(f"events go to stderr: {self.journal.fallback_reason}", INFO)
        psi = "one poll" if self.once else f"PSI trigger '{self.trigger.spec}'" if self.trigger else "plain polling"
        self.event(
            "started",
            f"started: backends {self.backends.describe()}; {psi}; config {', '.join(self.config.sources)}"
            + ("; dry run" if self.dry_run else ""),
            backends=",".join(self.backends.names()),
            psi="once" if self.once else "trigger" if self.trigger else "polling",
            config=",".join(self.config.sources),
            dry_run=self.dry_run,
        )

    def _arm_psi(self) -> None:
        if self.trigger is not None:
            self.trigger.close()
            self.trigger = None
        psi = self.config.psi
        if not psi.wakeup or self.once:
            return
        self.trigger, why = open_trigger(self.procfs.proc("pressure/memory"), psi.kind, psi.stall_ms, psi.window_ms)
        if self.trigger is None:
            self.journal.log(f"no PSI trigger ({why}): plain polling", NOTICE)

    def _start_uevents(self) -> None:
        from .udevwatch import start

        self.uevents, why = start(self.config.shrinkmem_device)
        if self.uevents is None:
            self.journal.log(
                f"no device events ({why}): backends are detected again every {DETECT_INTERVAL:.0f} s", NOTICE
            )

    def _install_signals(self) -> None:
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old_wakeup_fd = signal.set_wakeup_fd(self._wake_write, warn_on_full_buffer=False)
        for number, handler in (
            (signal.SIGTERM, self._on_stop),
            (signal.SIGINT, self._on_stop),
            (signal.SIGHUP, self._on_reload),
        ):
            self._old_handlers[number] = signal.signal(number, handler)

    def _on_stop(self, number: int, frame: object) -> None:
        self.stop_requested = True

    def _on_reload(self, number: int, frame: object) -> None:
        self.reload_requested = True

    def close(self) -> None:
        for number, handler in self._old_handlers.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        self._old_handlers.clear()
        if self._wake_write >= 0:
            signal.set_wakeup_fd(self._old_wakeup_fd)
            os.close(self._wake_read)
            os.close(self._wake_write)
            self._wake_read = self._wake_write = -1
        if self.trigger is not None:
            self.trigger.close()
            self.trigger = None
        if self.uevents is not None:
            self.uevents.close()
            self.uevents = None
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        self.notifier.close()

    # -- measuring ----------------------------------------------------------------

    def measure(self, zoneinfo: bool = True, counters: bool = True) -> Observation:
        """Read /proc now. Around actions everything is read afresh. A regular poll reads what
        the decisions need: buddyinfo always; vmstat and PSI when a global trigger or the
        thrash guard watches them; zoneinfo parsed again when rules watch watermarks, after
        a memory block changed, or once every ZONEINFO_REFRESH seconds."""
        assert self.reader is not None
        if zoneinfo:
            self._zoneinfo_at = self.clock()
        return observe(self.reader.snapshot(zoneinfo, counters))

    # -- the main loop ------------------------------------------------------------

    def run(self) -> int:
        """Start, poll until SIGTERM (or once), stop. Returns the exit code."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        try:
            while True:
                interval = self.survive(self.tick)
                if self.once or self.stop_requested:
                    break
                self.wait(interval)
                if self.stop_requested:
                    break
                if self.reload_requested:
                    self.reload()
        finally:
            if not self.once:
                self.notifier.stopping()
            self.event("stopped", f"stopped after {self.polls} polls", polls=self.polls)
            self.close()
        return 0

    def survive(self, tick: Callable[[], float]) -> float:
        """Run one poll; a bug in it is logged (with a traceback under log.debug) instead of ending the loop."""
        try:
            return tick()
        except Exception as error:
            if self.once:
                raise
            import traceback

            detail = traceback.format_exc() if self.journal.debug_enabled else ""
            self.event(
                "poll_failed",
                f"poll failed: internal error: {type(error).__name__}: {error}",
                ERR,
                error=detail or str(error),
            )
            return self.config.poll.max_interval

    def tick(self) -> float:
        """One poll: measure, decide, act. Returns the seconds until the next poll."""
        now = self.clock()
        if self.uevents is None and now - self._detected_at >= DETECT_INTERVAL:
            self._detected_at = now
            if self.polls > 0:
                self.refresh_backends("periodic check")
        fresh = self.policy.needs_zoneinfo() or now - self._zoneinfo_at >= ZONEINFO_REFRESH
        try:
            # vmstat and PSI also come with each zoneinfo refresh: a baseline for the thrash guard.
            obs = self.measure(zoneinfo=fresh, counters=fresh or self.policy.needs_counters())
        except (InputError, MissingInputError) as error:
            if self.once:
                raise  # the command's exit code tells (3 or 4)
            self.event("poll_failed", f"poll failed: {error}", ERR, error=str(error))
            return self.config.poll.max_interval
        self.polls += 1
        plan = self.policy.evaluate(obs, now)
        for notice in plan.notices:
            self.tell(notice)
        latest: Optional[Observation] = None
        for decision in plan.decisions:
            if self.stop_requested:
                break
            latest = self.act(decision) or latest
        if latest is not None:
            # Rates start again after shrinkd's own actions (reclaim counts as allocstall).
            self.policy.rebase(latest, self.clock())
        self.update_status(obs)
        if not self.ready:
            self.ready = True
            self.notifier.ready(self.status_line())
        else:
            self.notifier.status(self.status_line())
        return plan.interval

    def wait(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds; return early for a signal, PSI or a device change. Pings the watchdog."""
        deadline = self.clock() + timeout
        poller = select.poll()
        if self._wake_read >= 0:
            poller.register(self._wake_read, select.POLLIN)
        if self.trigger is not None:
            poller.register(self.trigger.fileno(), select.POLLPRI)
        if self.uevents is not None:
            poller.register(self.uevents.fileno(), select.POLLIN)
        ping = self.notifier.watchdog_interval()
        next_ping = self.clock()
        while not (self.stop_requested or self.reload_requested):
            now = self.clock()
            if ping is not None and now >= next_ping:
                self.notifier.watchdog()
                next_ping = now + ping
            left = deadline - now
            if left <= 0:
                return
            if ping is not None:
                left = min(left, max(next_ping - now, 0.0))
            events = poller.poll(max(int(left * 1000), 1))
            woke = False
            for fd, mask in events:
                if fd == self._wake_read:
                    self._drain_wakeups()
                elif self.trigger is not None and fd == self.trigger.fileno():
                    if mask & (select.POLLERR | select.POLLNVAL):
                        self.journal.log("PSI trigger went away: plain polling", WARNING)
                        poller.unregister(fd)
                        self.trigger.close()
                        self.trigger = None
                    else:
                        self.journal.debug("PSI trigger fired: polling now")
                        woke = True
                elif self.uevents is not None and fd == self.uevents.fileno():
                    woke = self.devices_changed() or woke
            if woke:
                return

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_read, 64):
                pass
        except BlockingIOError:
            pass

    # -- devices and reload -------------------------------------------------------

    def devices_changed(self) -> bool:
        """Handle kernel uevents; True when the loop should poll at once."""
        assert self.uevents is not None
        changes = self.uevents.read()
        memory = [f"{name} {action}" for what, name, action in changes if what == "memory"]
        if memory:
            self._zoneinfo_at = float("-inf")  # managed pages and watermarks moved: parse zoneinfo again
            self.event(
                "memory_changed", f"memory blocks changed: {', '.join(memory)}", NOTICE, blocks=", ".join(memory)
            )
        others = [f"{name} {action}" if name else what for what, name, action in changes if what != "memory"]
        if changes:
            self.refresh_backends(", ".join(others + memory))
            return True
        return False

    def refresh_backends(self, reason: str) -> None:
        before = self.backends.names()
        self.backends.detect()
        after = self.backends.names()
        if after != before:
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
                f"backends changed ({reason}): {change}; now {self.backends.describe()}",
                NOTICE,
                backends=",".join(after),
                added=",".join(added) or None,
                removed=",".join(removed) or None,
                reason=reason,
            )

    def reload(self) -> None:
        self.reload_requested = False
        self.notifier.reloading()
        try:
            if self.reload_config is None:
                raise ShrinkdError("no configuration source to reload from")
            config = self.reload_config()
        except ShrinkdError as error:
            self.event(
                "reload_failed", f"reload failed, keeping the running configuration: {error}", ERR, error=str(error)
            )
        else:
            old = self.config
            self.config = config
            self.policy.reconfigure(config)
            self.backends.config = config
            self.journal.configure(config.log_target, config.debug or self.force_debug)
            if config.psi != old.psi:
                self._arm_psi()
            if config.shrinkmem_device != old.shrinkmem_device and self.uevents is not None:
                self.uevents.close()
                self._start_uevents()
            self.refresh_backends("reload")
            self.event(
                "reloaded",
                f"configuration reloaded from {', '.join(config.sources)}" + ("; dry run" if self.dry_run else ""),
                config=",".join(config.sources),
                dry_run=self.dry_run,
            )
        self.notifier.ready(self.status_line())

    # -- telling ------------------------------------------------------------------

    def tell(self, notice: Notice) -> None:
        if notice.kind == "warning":
            self.journal.log(notice.message, WARNING)
            return
        if notice.kind == "thrash":
            self.event("thrash_backoff", notice.message, WARNING, **dict(notice.fields))
            return
        assert notice.source is not None and notice.value is not None
        self.event(
            notice.kind,
            notice.message,
            NOTICE if notice.kind == "triggered" else INFO,
            **self._source_fields(notice.source),
            value=self._value_text(notice.source, notice.value),
        )

    def _source_fields(self, source: object) -> Dict[str, object]:
        if isinstance(source, Watch):
            fields: Dict[str, object] = {
                "trigger": source.name,
                "rule": source.rule.name,
                "metric": source.kind,
                "node": source.node,
                "zone": source.zone,
                "order": source.order,
            }
            if source.kind == "watermark" and source.rule.watermark is not None:
                fields["threshold"] = source.rule.watermark.below
                fields["clear"] = source.rule.watermark.clear
            else:
                level = source.rule.unusable_index if source.kind == "unusable_index" else source.rule.extfrag_index
                if level is not None:
                    fields["threshold"] = metrics.format_index(level.trigger)
                    fields["clear"] = metrics.format_index(level.clear)
            return fields
        assert isinstance(source, Global)
        trigger = source.trigger
        return {
            "trigger": source.name,
            "metric": "psi_avg10" if source.kind == "psi" else "rate_per_s",
            "threshold": getattr(trigger, "avg10", None) or getattr(trigger, "rate", None),
            "clear": trigger.clear,
        }

    @staticmethod
    def _value_text(source: object, value: Optional[float]) -> Optional[str]:
        if value is None:
            return None
        if isinstance(source, Watch) and source.kind != "watermark":
            return metrics.format_index(int(value))
        if isinstance(source, Watch):
            return str(int(value))
        return f"{value:.2f}"

    def status_line(self) -> str:
        mode = " (dry run)" if self.dry_run else ""
        worst = self.worst or "no zone watched"
        return f"worst: {worst}; last action: {self.last_action}{mode}"

    def update_status(self, obs: Observation) -> None:
        worst: Optional[Tuple[float, str]] = None
        for source, state in self.policy.watches.items():
            if not isinstance(source, Watch):
                continue
            near = closeness(source, state.value, obs)
            if worst is None or near > worst[0]:
                text = self._value_text(source, state.value)
                worst = (
                    near,
                    f"{source.where()} {source.kind} {text} ({source.rule.name}, {near * 100:.0f}% of trigger)",
                )
        self.worst = worst[1] if worst else ""

    # -- acting -------------------------------------------------------------------

    def act(self, decision: Decision) -> Optional[Observation]:
        """Run the ladder for one decision; the last observation when a step ran (or would, in a dry run), else None."""
        done: List[Step] = []
        try:
            current = self.measure()  # measure again right before acting
        except ShrinkdError as error:
            self.event("poll_failed", f"measuring before acting failed: {error}", ERR, error=str(error))
            return None
        ran = False
        while not self.stop_requested:
            step = self.policy.next_step(decision, current, done, self.backends.kinds(), self.clock())
            if step is None:
                break
            done.append(step)
            if step.action == SKIP:
                self.event(
                    "skipped",
                    f"{decision.source.name}: {decision.source.where()}: skipped: {step.reason}",
                    INFO,
                    **self._source_fields(decision.source),
                    reason=step.reason,
                )
                break
            after = self.run_step(decision, step, current)
            if after is None:
                break
            current, ran = after, True
        if self.stop_requested and ran:
            self.journal.log(f"{decision.source.name}: stopping: the rest of the ladder is abandoned", NOTICE)
        if done:
            self.policy.acted(decision, self.clock())
        return current if ran else None

    def run_step(self, decision: Decision, step: Step, before: Observation) -> Optional[Observation]:
        """Run (or in a dry run, describe) one compact or reclaim step; the observation after it, or None on failure."""
        source = decision.source
        started = self.clock()
        result: Optional[Result] = None
        if not self.dry_run:
            try:
                if step.action == COMPACT:
                    result = self.backends.compact(step.node)
                else:
                    result = self.backends.reclaim(step.size, step.node)
            except ShrinkdError as error:
                self.event(
                    "action_failed",
                    f"{source.name}: {source.where()}: {step.action} failed: {error}",
                    ERR,
                    **self._source_fields(source),
                    action=step.action,
                    error=str(error),
                )
                self.refresh_backends(f"{step.action} failed")
                return None
        try:
            after = self.measure()
        except ShrinkdError as error:
            self.event("poll_failed", f"measuring after {step.action} failed: {error}", ERR, error=str(error))
            return None
        if step.action == RECLAIM:
            # A dry run counts toward the hourly cap (to show what would happen) but cannot cause thrashing.
            self.policy.reclaimed(step.size, before, self.clock(), watch=not self.dry_run)
        self.report(decision, step, before, after, result, self.clock() - started)
        return after

    def report(
        self,
        decision: Decision,
        step: Step,
        before: Observation,
        after: Observation,
        result: Optional[Result],
        seconds: float,
    ) -> None:
        """Log one compacted or reclaimed event with the watched value, free pages and timing before and after."""
        source = decision.source
        fields = self._source_fields(source)
        shown_before = self._value_text(source, self._measured(source, before))
        shown_after = None if self.dry_run else self._value_text(source, self._measured(source, after))
        backend = result.backend if result else None
        duration_ms = f"{(result.duration_ns / 1e6 if result else seconds * 1000):.1f}"
        fields.update(action=step.action, backend=backend, before=shown_before, after=shown_after, dry_run=self.dry_run)
        if result is not None:
            fields["duration_ms"] = duration_ms
        if isinstance(source, Watch):
            zone_before = before.zones.get((source.node, source.zone))
            zone_after = after.zones.get((source.node, source.zone))
            fields["free_pages_before"] = zone_before.free_pages if zone_before else None
            if not self.dry_run:
                fields["free_pages_after"] = zone_after.free_pages if zone_after else None
        what = f"{source.name} ({source.where()}"
        if self.dry_run:
            what += f" at {shown_before})" if shown_before is not None else ")"
            how = ""
        else:
            what += ")" + (
                f": {shown_before} -> {shown_after}" if shown_before is not None and shown_after is not None else ""
            )
            how = f" in {duration_ms} ms via {backend}"
        clock = time.strftime("%H:%M:%S")
        if step.action == COMPACT:
            target = f"node {step.node}" if step.node is not None else "all nodes"
            verb = "would compact" if self.dry_run else "compacted"
            self.event("compacted", f"{verb} {target} for {what}{how}", NOTICE, **fields)
            self.last_action = f"compaction of {target} at {clock}"
            return
        reclaimed, origin = pages_reclaimed(result, before, after)
        fields.update(
            requested_bytes=step.size,
            pages_reclaimed=reclaimed,
            pages_reclaimed_source=origin,
            partial=result.partial if result else None,
            tried=" | ".join(result.failures) if result and result.failures else None,
        )
        if self.dry_run:
            message = f"would reclaim {_mib(step.size)} for {what}"
        else:
            amount = (
                f"{reclaimed} pages ({_mib(reclaimed * self.page_size)})"
                if reclaimed is not None
                else "an unknown amount"
            )
            partial = " (the kernel could not reclaim all of it)" if result is not None and result.partial else ""
            message = f"reclaimed {amount} of {_mib(step.size)} asked for {what}{how}{partial}"
        self.event("reclaimed", message, NOTICE, **fields)
        self.last_action = f"reclaim of {_mib(step.size)} via {backend or 'none (dry run)'} at {clock}"

    def _measured(self, source: object, obs: Observation) -> Optional[float]:
        if isinstance(source, Watch):
            return watch_value(source, obs)
        assert isinstance(source, Global)
        if source.kind == "psi":
            return obs.psi(getattr(source.trigger, "kind", "some"))
        return None
