"""The loop: poll, decide, act; and what changes under it (a reload, a device, a memory block).

Each poll (tick) re-reads, through files kept open (procfs.Reader), what the
decisions need, hands the observation to the policy and runs what it decides,
measuring again before and after every action. Between polls the process
sleeps (process.sleep) on the signals' self-pipe, the PSI trigger and the
kernel's uevent socket, so SIGTERM, SIGHUP, memory pressure and device changes
wake it at once. What it tells goes through events.Events; the configuration
in force is held once (config.Current) and read by the policy and the
backends. An error in one poll is logged and the next poll goes on.
"""

from __future__ import annotations

import os
import select
import time

from .actions import Backends, Tunables
from .actions.registry import reclaim_backends, reclaim_lines
from .conditions import no_order
from .config import Current
from .errors import InputError, MissingInputError, ShrinkdError
from .events import NOTICE, WARNING, Events
from .journal import Journal
from .kmsg import KMSG, KernelLog, open_log
from .notify import Notifier
from .outputs import Outputs
from .policy import COMPACT, RECLAIM, Decision, Executor, Policy, Step
from .process import DROP, STAY, WAKE, Signals, sleep
from .procfs import Reader
from .psi import Trigger, open_trigger
from .udevwatch import UeventWatch
from .view import Observation, observe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

    from .actions import Result
    from .config import Config
    from .parse import AllocationFailure
    from .process import Clock, Watch
    from .procfs import ProcFS

    ConfigLoader = Callable[[], Config]

# Seconds between parses of /proc/zoneinfo when no condition needs it fresh: its managed pages
# and watermarks change with memory blocks (a uevent refreshes it at once) and rare sysctls,
# and its parse is most of what a poll costs.
ZONEINFO_REFRESH = 600.0
DETECT_INTERVAL = 10.0  # seconds between looks for new or gone backends, without kernel uevents
WAKE_WINDOW = 600.0  # seconds of wake-ups the wake rates are taken over


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
        kernel_log: Union[str, KernelLog, None] = KMSG,
        state_path: Optional[str] = None,
        warnings: Sequence[str] = (),
    ) -> None:
        self.procfs = procfs
        self.warnings = warnings  # what of the configuration cannot act here (shrinkd.judgement), told at start
        self.current = Current(config)
        self.reload_config = reload
        self.clock = clock
        self.page_size = page_size or procfs.page_size()
        self.once = once
        self.force_dry_run = dry_run
        self.force_debug = debug
        self.use_uevents = uevents
        self.state_path = state_path  # where `shrinkd status` finds the running daemon's state
        self.kernel_log_source = kernel_log  # a path to open, an open log (tests), or None: not read
        self.kernel_log: Optional[KernelLog] = None
        self.pending: List[AllocationFailure] = []  # read from the kernel's log, for the next poll
        # When and why of each wake-up in the last WAKE_WINDOW, in two lists: a cause is its index
        # in wake_causes (a small int, which Python shares), so a wake-up costs one object, its time.
        self.wake_times: List[float] = []
        self.wake_why: List[int] = []
        self.wake_causes: List[str] = []
        self.tunables = tunables or Tunables()
        self.tell = Events(journal, notifier, self.page_size)
        self.policy = Policy(self.current, self.page_size, once=once, orders=procfs.named_orders(self.page_size))
        for rule, given in self.policy.unresolved():  # the judgement's warnings at start say it, with why
            if any(warning.startswith(f"rule {rule}: {no_order(given)}") for warning in warnings):
                self.policy.told(rule, given)
        keep_dir = os.path.dirname(state_path) if state_path else None
        self.backends = Backends(procfs, self.current, self.tunables, self.page_size, keep_dir)
        # The trace and the metrics textfile, when configured: fed every poll and event.
        self.outputs = Outputs(self.page_size, self.policy.orders, clock, self.tell.log)
        self._configure_outputs()
        self.executor = Hands(self)
        self.signals = Signals()
        self.reader: Optional[Reader] = None
        self.trigger: Optional[Trigger] = None
        self.uevents: Optional[UeventWatch] = None
        # Each reclaim backend of the registry and why the daemon does not have it (None: it has it),
        # from the registry's probe at start and whenever the backends change (registry.reclaim_backends).
        self.reclaim: List[Tuple[str, Optional[str]]] = []
        self.lacking_told = False  # the reclaim_unavailable event, said once until the backends change
        self.polls = 0
        self.started_at = 0.0
        self._zoneinfo_at = float("-inf")
        self._detected_at = float("-inf")

    @property
    def config(self) -> Config:
        return self.current.config

    @property
    def dry_run(self) -> bool:
        return self.force_dry_run or self.config.dry_run

    @property
    def events(self) -> List[str]:
        """The latest events' kinds, in order (for --once's exit code and the tests)."""
        return self.tell.kinds

    @property
    def stop_requested(self) -> bool:
        return self.signals.stop_requested

    def status_line(self) -> str:
        return self.tell.status_line(self.dry_run)

    # -- start and stop -----------------------------------------------------------

    def start(self) -> None:
        """Open the /proc files, arm PSI, open the uevent socket and the kernel log, install signal handlers."""
        self.started_at = self.clock()
        self._restore_cache_pressure()
        self.reader = Reader(self.procfs)
        self._arm_psi()
        if self.use_uevents and not self.once:
            self._start_uevents()
        self._open_kernel_log()
        if not self.once:
            self.signals.install()
        how = "one poll" if self.once else f"PSI trigger '{self.trigger.spec}'" if self.trigger else "plain polling"
        self._probe_reclaim()
        self.tell.started(
            self.backends.describe(),
            self.backends.names(),
            "once" if self.once else "trigger" if self.trigger else "polling",
            how,
            self.config.sources,
            self.dry_run,
            reclaim_lines(self.reclaim),
        )
        for warning in self.warnings:
            self.tell.config_warning(warning)

    def _restore_cache_pressure(self) -> None:
        """A daemon that ended while it had vm.vfs_cache_pressure raised left the value before behind."""
        if self.dry_run:
            return
        try:
            restored = self.backends.restore_cache_pressure()
        except ShrinkdError as error:
            self.tell.log(f"vm.vfs_cache_pressure left by the last run not put back: {error}", WARNING)
            return
        if restored is not None:
            self.tell.log(
                f"vm.vfs_cache_pressure put back to {restored}: the last run ended during a reclaim", WARNING
            )

    def _arm_psi(self) -> None:
        if self.trigger is not None:
            self.trigger.close()
            self.trigger = None
        psi = self.config.psi
        if not psi.wakeup or self.once:
            return
        self.trigger, why = open_trigger(
            self.tunables, self.procfs.proc("pressure/memory"), psi.kind, psi.stall_ms, psi.window_ms
        )
        if self.trigger is None:
            self.tell.log(f"no PSI trigger ({why}): plain polling", NOTICE)

    def _open_kernel_log(self) -> None:
        """Watch the kernel's log for allocation failures when the configuration asks for it."""
        wanted = self.config.failures.kernel_log and not self.once and self.kernel_log_source is not None
        if not wanted and self.kernel_log is not None:
            self.kernel_log.close()
            self.kernel_log = None
        if not wanted or self.kernel_log is not None:
            return
        if isinstance(self.kernel_log_source, KernelLog):
            self.kernel_log = self.kernel_log_source
            return
        assert self.kernel_log_source is not None
        self.kernel_log, why = open_log(self.kernel_log_source)
        if self.kernel_log is None:
            self.tell.log(f"no kernel log ({why}): allocation failures are seen only in /proc/vmstat", NOTICE)

    def _start_uevents(self) -> None:
        from .udevwatch import start

        self.uevents, why = start(self.config.shrinkmem_device)
        if self.uevents is None:
            self.tell.log(
                f"no device events ({why}): backends are detected again every {DETECT_INTERVAL:.0f} s", NOTICE
            )

    def close(self) -> None:
        self.signals.restore()
        if self.trigger is not None:
            self.trigger.close()
            self.trigger = None
        if self.uevents is not None:
            self.uevents.close()
            self.uevents = None
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.kernel_log is not None:
            self.kernel_log.close()
            self.kernel_log = None
        self.outputs.close()
        self.tell.close()

    def _configure_outputs(self) -> None:
        self.outputs.configure(self.config)
        self.tell.observer = self.outputs if self.outputs.active else None

    # -- the main loop ------------------------------------------------------------

    def run(self, bound: Optional[Callable[[float], Optional[float]]] = None) -> int:
        """Start, poll until SIGTERM (or once), stop. Returns the exit code. `bound` (shrinkd record's
        limits) is handed each poll's interval and returns the wait before the next, or None to stop."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        try:
            while True:
                interval = self.survive(self.tick)
                wait = bound(interval) if bound is not None else interval
                if wait is None or self.once or self.signals.stop_requested:
                    break
                self.wait(wait)
                if self.signals.stop_requested:
                    break
                if self.signals.reload_requested:
                    self.reload()
        finally:
            if not self.once:
                self.tell.stopping()
            self.tell.stopped(self.polls)
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

            detail = traceback.format_exc() if self.tell.debugging else ""
            self.tell.poll_failed(f"poll failed: internal error: {type(error).__name__}: {error}", str(error), detail)
            return self.config.poll.max_interval

    def measure(self, zoneinfo: bool = True, counters: bool = True) -> Observation:
        """Read /proc now. Around actions everything is read afresh. A regular poll reads what
        the decisions need: buddyinfo always; vmstat and PSI when a global trigger or the
        thrash guard watches them; zoneinfo parsed again when a condition needs it fresh
        (a watermark), after a memory block changed, or once every ZONEINFO_REFRESH seconds."""
        assert self.reader is not None
        if zoneinfo:
            self._zoneinfo_at = self.clock()
        return observe(self.reader.snapshot(zoneinfo, counters, self.policy.counter_keys()))

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
            obs = self.measure(
                zoneinfo=fresh, counters=fresh or self.policy.needs_counters() or self.outputs.wants_counters
            )
        except (InputError, MissingInputError) as error:
            if self.once:
                raise  # the command's exit code tells (3 or 4)
            self.tell.poll_failed(f"poll failed: {error}", str(error))
            return self.config.poll.max_interval
        if self.kernel_log is not None:
            self.pending.extend(self.kernel_log.read())
        if self.pending:
            obs = obs.replace(failures=tuple(self.pending))
            self.pending = []
        self.polls += 1
        if self.outputs.active:
            self.outputs.poll(now, obs)
        plan = self.policy.evaluate(obs, now)
        for notice in plan.notices:
            self.tell.notice(notice)
        # READY (the first time) before acting: on a slow board that starts fragmented, the first
        # ladder can outlast the unit's start timeout.
        self.tell.wakes(self.wake_rates())
        self.tell.update_status(self.policy.watches, obs, self.dry_run)
        latest = self.policy.carry_out(plan.decisions, self.executor)
        if latest is not None and not self.signals.stop_requested:
            self.tell.send_status(self.dry_run)  # the last action
        if self.state_path is not None:
            self.tell.write_state(self.state_path, self.state(obs))
        if self.outputs.active:
            self.outputs.write_due(self.clock())
        return plan.interval

    def state(self, obs: Observation) -> Dict[str, Any]:
        """What `shrinkd status` shows of the running daemon: its life, its wake-ups, every watched value."""
        conditions = []
        for source, watch in self.policy.watches.items():
            conditions.append(
                {
                    "name": source.name,
                    "where": source.where(),
                    "value": source.field(watch.value),
                    "text": source.text(watch.value),
                    "active": watch.active,
                    "of_trigger": round(min(source.closeness(watch.value, obs), 1e6), 3),
                }
            )
        return {
            "pid": os.getpid(),
            "uptime_s": round(self.clock() - self.started_at, 1),
            "polls": self.polls,
            "dry_run": self.dry_run,
            "config": list(self.config.sources),
            "backends": self.backends.names(),
            "reclaim_backends": [{"name": name, "why": why} for name, why in self.reclaim],
            "wakes_per_minute": {why: round(rate, 2) for why, rate in self.wake_rates().items()},
            "worst": self.tell.worst,
            "last_action": self.tell.last_action,
            "conditions": conditions,
        }

    def act(self, decision: Decision) -> Optional[Observation]:
        """Run the ladder for one decision; the last observation when a step ran (or would, in a dry run), else None."""
        return self.policy.run_ladder(decision, self.executor)

    # -- between polls ------------------------------------------------------------

    def wait(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds; return early for a signal, PSI, an allocation failure in the
        kernel's log or a device change. Pings the watchdog. Every wake-up is counted by its cause."""
        watches: List[Watch] = self.signals.watch()
        if self.trigger is not None:
            watches.append((self.trigger.fileno(), select.POLLPRI, self._on_pressure, "psi"))
        if self.kernel_log is not None:
            watches.append((self.kernel_log.fileno(), select.POLLIN, self._on_kernel_log, "kernel_log"))
        if self.uevents is not None:
            watches.append((self.uevents.fileno(), select.POLLIN, self._on_uevents, "uevent"))
        cause = sleep(timeout, self.clock, self.tell.notifier, watches, lambda: self.signals.interrupted, self._woke)
        self._woke(cause)

    @property
    def wakes(self) -> List[Tuple[float, str]]:
        """(when, why) of each wake-up in the last WAKE_WINDOW, oldest first."""
        return [(when, self.wake_causes[why]) for when, why in zip(self.wake_times, self.wake_why)]

    def _woke(self, cause: str) -> None:
        now = self.clock()
        if cause not in self.wake_causes:
            self.wake_causes.append(cause)  # a handful of causes: process.sleep's, and signals
        self.wake_times.append(now)
        self.wake_why.append(self.wake_causes.index(cause))
        if self.wake_times[0] < now - WAKE_WINDOW:
            old = next(n for n, when in enumerate(self.wake_times) if when >= now - WAKE_WINDOW)
            del self.wake_times[:old]
            del self.wake_why[:old]

    def wake_rates(self) -> Dict[str, float]:
        """Wake-ups per minute by cause, over the last WAKE_WINDOW seconds (or since the start, if shorter)."""
        if not self.wake_times:
            return {}
        now = self.clock()
        span = max(min(WAKE_WINDOW, now - self.started_at), 1.0)
        rates: Dict[str, float] = {}
        for when, why in zip(self.wake_times, self.wake_why):
            if when >= now - WAKE_WINDOW:
                cause = self.wake_causes[why]
                rates[cause] = rates.get(cause, 0.0) + 60.0 / span
        return rates

    def _on_kernel_log(self, mask: int) -> int:
        assert self.kernel_log is not None
        found = self.kernel_log.read()
        self.pending.extend(found)
        return WAKE if found else STAY

    def _on_pressure(self, mask: int) -> int:
        if mask & (select.POLLERR | select.POLLNVAL):
            self.tell.log("PSI trigger went away: plain polling", WARNING)
            if self.trigger is not None:
                self.trigger.close()
                self.trigger = None
            return DROP
        self.tell.debug("PSI trigger fired: polling now")
        return WAKE

    def _on_uevents(self, mask: int) -> int:
        return WAKE if self.devices_changed() else STAY

    # -- what changes under the loop ---------------------------------------------------

    def devices_changed(self) -> bool:
        """Handle kernel uevents; True when the loop should poll at once."""
        assert self.uevents is not None
        changes = self.uevents.read()
        memory = [f"{name} {action}" for what, name, action in changes if what == "memory"]
        if memory:
            self._zoneinfo_at = float("-inf")  # managed pages and watermarks moved: parse zoneinfo again
            self.tell.memory_changed(memory)
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
            self.tell.backends_changed(reason, before, after, self.backends.describe())
            self.lacking_told = False  # a reclaim still not possible is said again, with the new reasons
        if after != before or reason == "reload":
            self._probe_reclaim()

    def _probe_reclaim(self) -> None:
        """Why the daemon does not have each reclaim backend it lacks: the registry's probe, read with
        the backends it found (for the started event, reclaim_unavailable and `shrinkd status`)."""
        from .actions import registry

        probes = registry.probe(self.procfs, self.config, self.tunables, self.page_size)
        self.reclaim = reclaim_backends(probes, self.config.reclaim.prefer, self.backends.names())

    def reclaim_unavailable(self, decision: Decision) -> None:
        """A ladder wanted to reclaim and the daemon has no reclaim backend: said once, with why, until
        its backends change (a module loaded, a reload that changes them)."""
        if self.lacking_told:
            return
        self.lacking_told = True
        self.tell.reclaim_unavailable(decision, self.backends.names(), reclaim_lines(self.reclaim))

    def reload(self) -> None:
        self.signals.reload_requested = False
        self.tell.reloading()
        try:
            if self.reload_config is None:
                raise ShrinkdError("no configuration source to reload from")
            config = self.reload_config()
        except ShrinkdError as error:
            self.tell.reload_failed(error)
        else:
            old = self.config
            self.current.config = config
            self.policy.reconfigure()
            self.tell.configure(config.log_target, config.debug or self.force_debug)
            self._open_kernel_log()
            if config.psi != old.psi:
                self._arm_psi()
            if config.shrinkmem_device != old.shrinkmem_device and self.uevents is not None:
                self.uevents.close()
                self._start_uevents()
            self.refresh_backends("reload")
            self._configure_outputs()
            self.tell.reloaded(config.sources, self.dry_run)
        self.tell.send_status(self.dry_run, again=True)


class Hands(Executor):
    """The daemon's executor of the ladder (Policy.carry_out): measures /proc, runs the backends
    (not in a dry run), tells each step, pings the watchdog before each kernel write."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.started = 0.0
        self.result: Optional[Result] = None

    @property
    def watch_reclaim(self) -> bool:  # type: ignore[override]
        return not self.daemon.dry_run

    @property
    def judge_ladders(self) -> bool:  # type: ignore[override]
        return not self.daemon.dry_run

    def taken(self) -> int:
        result = self.result
        return (result.pages_reclaimed or 0) * self.daemon.page_size if result is not None else 0

    def now(self) -> float:
        return self.daemon.clock()

    def stopping(self) -> bool:
        return self.daemon.signals.stop_requested

    def kinds(self) -> FrozenSet[str]:
        return self.daemon.backends.kinds()

    def measure(self, after: Optional[Step]) -> Optional[Observation]:
        try:
            return self.daemon.measure()
        except ShrinkdError as error:
            when = "before acting" if after is None else f"after {after.action}"
            self.daemon.tell.poll_failed(f"measuring {when} failed: {error}", str(error))
            return None

    def run(self, decision: Decision, step: Step) -> bool:
        """Run (or in a dry run, describe) one compact or reclaim step."""
        daemon = self.daemon
        daemon.tell.watchdog()  # a ladder of long kernel writes must not look like a hang
        self.started = daemon.clock()
        self.result = None
        if daemon.dry_run:
            return True
        try:
            if step.action == COMPACT:
                self.result = daemon.backends.compact(step.node)
            else:
                pressure = daemon.config.reclaim.vfs_cache_pressure if step.after_compaction else None
                self.result = daemon.backends.reclaim(step.size, step.node, cache_pressure=pressure)
        except ShrinkdError as error:
            daemon.tell.action_failed(decision, step, error)
            daemon.refresh_backends(f"{step.action} failed")
            return False
        return True

    def acted(self, decision: Decision, step: Step, before: Observation, after: Observation) -> None:
        daemon = self.daemon
        daemon.tell.acted(decision, step, before, after, self.result, daemon.clock() - self.started, daemon.dry_run)

    def skipped(self, decision: Decision, reason: str) -> None:
        self.daemon.tell.skipped(decision, reason)

    def lacking(self, decision: Decision, kind: str, reason: str) -> None:
        if kind == RECLAIM:
            self.daemon.reclaim_unavailable(decision)
        else:
            self.skipped(decision, reason)

    def abandoned(self, decision: Decision) -> None:
        self.daemon.tell.abandoned(decision)
