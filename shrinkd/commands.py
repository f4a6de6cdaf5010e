"""The subcommands other than `run`: their argparse parser and handlers (status, reclaim,
compact, check-config, record, replay, history, plot, doctor).

Imported by shrinkd.cli only when a command line is not a plain `run`, so that the
long-running daemon never loads them; modules only one subcommand needs are imported
inside its handler.
"""

from __future__ import annotations

import os
import sys

from . import __version__
from .errors import EXIT_OK, UsageError, exit_codes_help
from .events import state_file
from .procfs import ProcFS, Reader

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, Callable, Dict, List, Optional

    from .parse import Snapshot
    from .view import Observation

    Handler = Callable[[Any], int]


def _procfs(args: argparse.Namespace) -> ProcFS:
    return ProcFS(args.proc_root, args.sys_root)


def _common(defaults: bool = True) -> argparse.ArgumentParser:
    """Options every subcommand takes, before or after its name.

    Only the top-level parser sets defaults: a subcommand's parser leaves an
    option it did not see alone, so `shrinkd --debug run` keeps --debug.
    """
    import argparse

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument(
        "--proc-root", metavar="DIR", default=default("/proc"), help="read /proc files under DIR (default: /proc)"
    )
    group.add_argument(
        "--sys-root", metavar="DIR", default=default("/sys"), help="read and write /sys files under DIR (default: /sys)"
    )
    group.add_argument("--debug", action="store_true", default=default(False), help="show a traceback on errors")
    return common


def _snapshot(procfs: ProcFS, keys: Optional[List[str]] = None, meminfo: bool = False) -> Snapshot:
    """One reading for a one-shot command: every file, /proc/vmstat's `keys` (None: all) and, with `meminfo`, meminfo."""
    with Reader(procfs, meminfo=meminfo) as reader:
        return reader.snapshot(keys=keys)


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from . import report

    if args.pretty and not args.json:
        raise UsageError("--pretty: only with --json (it indents the JSON)")
    procfs = _procfs(args)
    page_size = procfs.page_size()
    document = report.build(_snapshot(procfs, meminfo=True), page_size, procfs.named_orders(page_size))
    document["huge"] = dict(zip(("order", "from"), procfs.huge_order(page_size)))
    state = _daemon_state() if args.proc_root == "/proc" else None  # a captured tree has no daemon
    if state is not None:
        document["daemon"] = state
    document["reclaim"] = _reclaim_backends(args, procfs, state)
    if args.json:
        json.dump(document, sys.stdout, indent=2 if args.pretty else None)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.render(document))
    return EXIT_OK


def _reclaim_backends(args: argparse.Namespace, procfs: ProcFS, state: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The reclaim backends shrinkd has here and why not each other one: the running daemon's own (from
    its state file), else the backend registry's probe with the configuration `run` would read."""
    from . import configload, judgement
    from .errors import ShrinkdError

    if state is not None and args.config is None and "reclaim_backends" in state:
        found = [(entry["name"], entry["why"]) for entry in state["reclaim_backends"]]
        source = f"the running daemon, pid {state['pid']}"
    else:
        from .actions import registry

        try:
            config = configload.load(configload.resolve(args.config))
            unread = ""
        except ShrinkdError as error:
            config, unread = configload.builtin(), f" ({error})"
        probes = registry.probe(procfs, config, page_size=procfs.page_size())
        # Judged as the daemon, which runs as root, finds them (a user cannot write the kernel's files).
        found = judgement.reclaim_backends(probes, config.reclaim.prefer, as_root=True)
        source = f"as shrinkd run would find them with {', '.join(config.sources)}{unread}"
    return {
        "from": source,
        "have": judgement.reclaim_summary(found),
        "backends": [{"name": name, "why": why} for name, why in found],
    }


def build_parser(run_handler: Handler) -> argparse.ArgumentParser:
    import argparse

    from .actions import registry

    parser = argparse.ArgumentParser(
        prog="shrinkd",
        description="Watch per-zone memory fragmentation and act (compaction, reclaim) before allocations fail.",
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common()],
    )
    common = _common(defaults=False)
    parser.add_argument("--version", action="version", version=f"shrinkd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def subcommand(name: str, help: str, description: str) -> argparse.ArgumentParser:
        """A subcommand with the common options and the exit-code table in its --help."""
        return commands.add_parser(
            name,
            parents=[common],
            help=help,
            description=description,
            epilog=exit_codes_help(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    status = subcommand(
        "status",
        help="show free blocks, fragmentation indexes and watermarks per zone",
        description=(
            "Show, per node and zone, the free blocks per order, the kernel's unusable free index and "
            "fragmentation index per order (the values debugfs extfrag/* prints), free pages against "
            "the min/low/high watermarks, the compaction score, PSI memory pressure, what the order name huge "
            "stands for here and where that came from, and the reclaim backends shrinkd has (the running "
            "daemon's, else as it would find them) with why each other one is missing or disabled."
        ),
    )
    status.add_argument(
        "--config",
        metavar="FILE",
        help="configuration the reclaim backends are probed with when no daemon runs (default: as for run)",
    )
    status.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    status.add_argument("--pretty", action="store_true", help="indent the JSON (only with --json)")
    status.set_defaults(handler=cmd_status)

    run = subcommand(
        "run",
        help="run the daemon: watch the zones and act when the configured thresholds are crossed",
        description=(
            "Poll the per-zone fragmentation at an adaptive interval (woken early by PSI), and when a rule's "
            "condition holds, compact, then reclaim what compaction could not reach; log every event to journald "
            "(or stderr). Reads /etc/shrinkd/shrinkd.yaml and /etc/shrinkd/conf.d/*.yaml when present, else the "
            "built-in defaults. SIGHUP reloads the configuration, SIGTERM stops."
        ),
    )
    run.add_argument(
        "--config", metavar="FILE", help="read only FILE (default: /etc/shrinkd/shrinkd.yaml and conf.d/*.yaml)"
    )
    run.add_argument("--dry-run", action="store_true", help="decide and log, but write nothing to the kernel")
    run.add_argument("--once", action="store_true", help="poll once, act on every condition at its trigger level, exit")
    run.set_defaults(handler=run_handler)

    reclaim = subcommand(
        "reclaim",
        help="reclaim memory once and show what it freed",
        description=(
            "Reclaim SIZE bytes (K, M, G suffixes) with the first available reclaim backend in the configuration's "
            "order of preference, or the one named (refused where the configuration disables it, unless --force), and "
            "print what it freed (as the daemon counts it) and each zone before and after. Exit code 6 when it freed "
            "less than SIZE."
        ),
    )
    reclaim.add_argument("size", metavar="SIZE", help="how much to reclaim, e.g. 64M")
    reclaim.add_argument(
        "--backend",
        metavar="NAME",
        help=f"{', '.join(registry.RECLAIM_NAMES)} (default: the first available)",
    )
    reclaim.add_argument("--node", metavar="N", type=int, help="node to reclaim from (node_reclaim only aims at one)")
    reclaim.add_argument("--config", metavar="FILE", help="configuration for the backends (default: as for run)")
    reclaim.add_argument("--force", action="store_true", help="use --backend even where the configuration disables it")
    reclaim.set_defaults(handler=cmd_reclaim)

    compact = subcommand(
        "compact",
        help="compact memory once and show the effect",
        description=(
            "Compact one node (nodeN/compact) or all of them (compact_memory) and print each zone's free memory, "
            "free blocks and unusable free index per order before and after."
        ),
    )
    compact.add_argument("--node", metavar="N", type=int, help="compact only node N")
    compact.set_defaults(handler=cmd_compact)

    check = subcommand(
        "check-config",
        help="validate a configuration file",
        description=(
            "Validate FILE, or without it the files `shrinkd run` would read (/etc/shrinkd/shrinkd.yaml and "
            "/etc/shrinkd/conf.d/*.yaml, merged), then judge it against this system as `shrinkd run` does (zones and "
            "orders that do not exist here, backends missing or not permitted, output paths shrinkd will refuse, "
            "privileges). Errors are FILE:LINE: key.path: what is wrong; exit code 2 for an invalid file or one that "
            "can never act here."
        ),
    )
    check.add_argument("file", metavar="FILE", nargs="?", help="the file to check")
    check.add_argument(
        "--no-system",
        action="store_true",
        help="judge the configuration alone (for another board): zones, orders, backends and privileges are not checked",
    )
    check.set_defaults(handler=cmd_check_config)
    _tool_commands(subcommand)
    return parser


def _tool_commands(subcommand: Callable[..., argparse.ArgumentParser]) -> None:
    """record, replay, history, plot, doctor (docs/tools.md)."""
    record = subcommand(
        "record",
        help="run the daemon in the foreground and keep a trace of its polls and events (dry run unless --act)",
        description=(
            "Run the daemon loop as `shrinkd run --dry-run` does, and write every poll's observation and every event "
            "to FILE (the `record` keys of the configuration, with this path), for `shrinkd replay` and `shrinkd plot`. "
            "Stops on SIGINT/SIGTERM, after --polls or after --duration. The directory must be owned by root (or by "
            "you) and writable by no one else."
        ),
    )
    record.add_argument("file", metavar="FILE", help="the trace to write (older parts go to FILE.1, FILE.2, ...)")
    record.add_argument("--config", metavar="FILE", help="configuration (default: as for run)")
    record.add_argument("--act", action="store_true", help="act as `shrinkd run` would (default: a dry run)")
    record.add_argument("--polls", metavar="N", type=int, help="stop after N polls")
    record.add_argument("--duration", metavar="SECONDS", type=float, help="stop after this long")
    record.add_argument("--max-size", metavar="SIZE", help="all of the trace's files together (default: record.max_size)")
    record.add_argument(
        "--interval", metavar="SECONDS", type=float, help="seconds between writes (default: record.interval)"
    )
    record.set_defaults(handler=cmd_record)

    replay = subcommand(
        "replay",
        help="run the policy over a recorded trace with another configuration and show what it would have done",
        description=(
            "Hand every poll of the trace to shrinkd's policy with the recorded clock, as the daemon would, with "
            "CANDIDATE's rules and limits, and print the events it would have logged (conditions, compactions, "
            "reclaims and the bytes asked), then the totals beside the recorded ones. Several files of one recording "
            "(FILE, FILE.1, ...) replay as one. A replay assumes that after each action the zone was as the next "
            "recorded poll found it (docs/tools.md)."
        ),
    )
    replay.add_argument("trace", metavar="TRACE", nargs="+", help="trace file(s) written by record")
    replay.add_argument("--config", metavar="CANDIDATE", help="configuration to try (default: as for run)")
    replay.add_argument(
        "--backends", metavar="NAMES", help="comma-separated backends to assume (default: the recording daemon's)"
    )
    replay.add_argument("--json", action="store_true", help="print one JSON document")
    replay.add_argument("--quiet", action="store_true", help="only the totals")
    replay.set_defaults(handler=cmd_replay)

    history = subcommand(
        "history",
        help="show shrinkd's events from the journal, with totals",
        description=(
            "Read shrinkd's events (SYSLOG_IDENTIFIER=shrinkd) from the journal with systemd-python and show them as "
            "a table: where, the action and backend, the watched value before and after, what was reclaimed; then "
            "the totals. Needs python3-systemd (or systemd-python from PyPI)."
        ),
    )
    history.add_argument("--since", metavar="WHEN", help="from then on: 2024-05-01, '2024-05-01 12:00', today, yesterday, '3d ago', or --since=-2h")
    history.add_argument("--directory", "-D", metavar="DIR", help="read the journal files in DIR (as journalctl -D)")
    history.add_argument("--file", metavar="FILE", action="append", default=[], help="read this journal file (repeat)")
    history.add_argument("--json", action="store_true", help="print one JSON document")
    history.set_defaults(handler=cmd_history)

    plot = subcommand(
        "plot",
        help="draw free blocks per order over time, with the actions marked, to a PNG",
        description=(
            "From trace files: one panel per zone, free blocks of each order over time, compactions, reclaims and "
            "triggers marked; with --config, one panel per rule and index it watches, the index over time with the "
            "rule's trigger and clear levels (a trace holds no configuration). With --journal: the watched value "
            "before and after each action from the journal. "
            "Needs matplotlib (pip install 'shrinkd[plot]' or apt install python3-matplotlib)."
        ),
    )
    plot.add_argument("trace", metavar="TRACE", nargs="*", help="trace file(s) written by record")
    plot.add_argument(
        "--config", metavar="FILE", help="the configuration the trace ran with: draw its rules' indexes and levels"
    )
    plot.add_argument("--journal", action="store_true", help="plot from the journal instead of a trace")
    plot.add_argument("--since", metavar="WHEN", help="with --journal: from then on (as for history)")
    plot.add_argument("--directory", "-D", metavar="DIR", help="with --journal: the journal files in DIR")
    plot.add_argument("--output", "-o", metavar="PNG", required=True, help="the picture to write")
    plot.add_argument("--width", type=float, default=12.0, help="inches (default 12)")
    plot.add_argument("--height", type=float, default=0.0, help="inches (default: by the number of zones)")
    plot.add_argument("--dpi", type=int, default=100, help="pixels per inch (default 100)")
    plot.set_defaults(handler=cmd_plot)

    doctor = subcommand(
        "doctor",
        help="say what this system can and cannot do for shrinkd, and why",
        description=(
            "Check the kernel files shrinkd reads and writes, PSI, the backends (compaction, the shrinkmem module "
            "and its device, memory.reclaim, per-node reclaim), the kernel options that matter, the orders the "
            "configuration's rules resolve to, and whether the systemd unit's sandbox lets shrinkd write where it "
            "needs. Exit code 2 when the configuration asks for something this system lacks."
        ),
    )
    doctor.add_argument("--config", metavar="FILE", help="configuration to check against (default: as for run)")
    doctor.add_argument(
        "--unit", metavar="FILE", help="the unit file to check (default: the installed shrinkd.service, else the source tree's)"
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON document")
    doctor.set_defaults(handler=cmd_doctor)


def _daemon_state() -> Optional[Dict[str, Any]]:
    """The state a running daemon wrote (None when there is none, or its process is gone)."""
    import json

    path = state_file()
    try:
        with open(path or "", encoding="utf-8") as handle:
            state: Dict[str, Any] = json.load(handle)
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def _observe(procfs: ProcFS) -> Observation:
    from .actions.result import PGSTEAL
    from .view import observe

    return observe(_snapshot(procfs, keys=list(PGSTEAL)))


def _zone_changes(before: Observation, after: Observation, page_size: int) -> str:
    """Each zone's free memory, free blocks and unusable free index per order, before and after."""
    from .metrics import format_index, format_mib, unusable_index

    lines = []
    for key, zone in before.zones.items():
        later = after.zones.get(key)
        if later is None:
            continue
        delta = later.free_pages - zone.free_pages
        lines.append(
            f"Node {zone.node}, zone {zone.zone}: free {format_mib(zone.free_pages * page_size)} -> "
            f"{format_mib(later.free_pages * page_size)} ({'+' if delta >= 0 else '-'}{format_mib(abs(delta) * page_size)})"
        )
        orders = range(len(zone.free))
        unusable = [[format_index(unusable_index(free, o)) for o in orders] for free in (zone.free, later.free)]
        cells = [str(o) for o in orders] + [str(n) for n in zone.free + later.free] + unusable[0] + unusable[1]
        width = max(len(cell) for cell in cells) + 1
        rows = (
            ("order", list(orders)),
            ("free before", zone.free),
            ("free after", later.free),
            ("unusable before", unusable[0]),
            ("unusable after", unusable[1]),
        )
        for name, values in rows:
            lines.append(f"  {name:<15}" + "".join(f"{value:>{width}}" for value in values))
    return "\n".join(lines) + "\n"


DROPPED = {"pagecache": "page cache", "slab": "slab (dentries and inodes)", "both": "page cache and slab"}


def _reclaim_nodes(observation: Observation) -> List[int]:
    return sorted({node for node, _ in observation.zones})


def cmd_reclaim(args: argparse.Namespace) -> int:
    from . import config as configuration
    from . import configload
    from .actions import Backends, registry
    from .effect import ORIGINS, reclaim_effect
    from .errors import EXIT_SHORT
    from .metrics import format_mib

    size = configuration.parse_size(args.size)
    if size is None or size <= 0:
        raise UsageError(f"SIZE: expected bytes or a number with K, M or G (e.g. 64M), got {args.size!r}")
    config = configload.load(configload.resolve(args.config))
    if args.backend is not None:
        if args.backend not in registry.RECLAIM_NAMES:
            raise UsageError(f"--backend: expected one of {', '.join(registry.RECLAIM_NAMES)}, got {args.backend!r}")
        if not config.backend_enabled(args.backend):
            if not args.force:
                raise UsageError(
                    f"--backend {args.backend}: disabled by the configuration ({', '.join(config.sources)}: "
                    f"backends.{args.backend}.enabled is false); add --force to use it anyway"
                )
            config = config.replace(enabled=(*config.enabled, args.backend))
        if args.backend not in config.reclaim.prefer:
            config = config.replace(reclaim=config.reclaim.replace(prefer=(*config.reclaim.prefer, args.backend)))
    procfs = _procfs(args)
    page_size = procfs.page_size()
    before = _observe(procfs)
    if args.node is not None and args.node not in _reclaim_nodes(before):
        have = ", ".join(map(str, _reclaim_nodes(before))) or "none"
        raise UsageError(f"--node: no node {args.node} in {procfs.proc('buddyinfo')} (nodes: {have})")
    backends = Backends(procfs, configuration.Current(config), page_size=page_size)
    named = args.backend or next((b.name for b in backends.reclaimers), None)
    if named == "drop_caches":
        what = DROPPED[config.backend_options("drop_caches").get("what", "pagecache")]
        print(
            f"drop_caches cannot aim at a size: it drops all clean {what}; "
            f"what it freed is compared with the {format_mib(size)} asked",
            file=sys.stderr,
        )
    result = backends.reclaim(size, args.node, args.backend)
    after = _observe(procfs)
    effect = reclaim_effect(result, before, after)
    for failure in result.failures:
        print(f"tried {failure}", file=sys.stderr)
    freed = format_mib(effect.pages * page_size) if effect.pages is not None else "an unknown amount"
    note = f" ({ORIGINS[effect.origin]})" if effect.origin else ""
    print(
        f"reclaimed {freed}{note} of {format_mib(size)} asked, via {result.backend} in {result.duration_ns / 1e6:.1f} ms"
        + (" (the kernel could not reclaim all of it)" if result.partial else "")
    )
    sys.stdout.write(_zone_changes(before, after, page_size))
    if effect.short_of(size, page_size):
        print(f"shrinkd: reclaim: freed {freed} of the {format_mib(size)} asked", file=sys.stderr)
        return EXIT_SHORT
    return EXIT_OK


def cmd_compact(args: argparse.Namespace) -> int:
    from .actions.compact import Compact
    from .procfs import Tunables

    procfs = _procfs(args)
    compactor = Compact(procfs, Tunables())
    if args.node is not None and args.node not in compactor.nodes:
        have = ", ".join(map(str, sorted(compactor.nodes))) or "none"
        raise UsageError(
            f"--node: no {procfs.sys(f'devices/system/node/node{args.node}/compact')} (nodes with one: {have})"
        )
    before = _observe(procfs)
    result = compactor.run(args.node)
    after = _observe(procfs)
    print(f"compacted via {result.backend} in {result.duration_ns / 1e6:.1f} ms")
    sys.stdout.write(_zone_changes(before, after, procfs.page_size()))
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    from . import configload
    from .errors import EXIT_USAGE
    from .judgement import examine, judged_lines, unchecked_line

    def warn(problem: str) -> None:
        print(f"shrinkd: warning: {problem} (shrinkd run would refuse it)", file=sys.stderr)

    # Judged as the daemon, running as root, judges them; a file given to check (a draft, a
    # user's own copy) only gets a warning, the installed files are refused as run refuses them.
    paths = configload.resolve(args.file, warn=warn if args.file is not None else None, owners=(0,))
    config = configload.load(paths)
    procfs = None if args.no_system else _procfs(args)
    verdict, why = examine(procfs, config, as_root=True)
    names = ", ".join(rule.name for rule in config.rules) or "none"
    verdict_text = "OK" if not verdict.errors else f"{len(verdict.errors)} error(s), shrinkd run would refuse it"
    print(
        f"{', '.join(config.sources)}: {verdict_text} ({len(config.rules)} rules: {names}; "
        f"backends enabled: {', '.join(config.enabled)})"
    )
    named = procfs.named_orders(procfs.page_size()) if procfs is not None and "orders" not in verdict.unchecked else {}
    if procfs is not None and named.get("huge") is not None:  # unknown: the warnings below say why
        from .report import huge_text

        print(f"  {huge_text(*procfs.huge_order(procfs.page_size()))}")
    for rule in config.rules:
        orders = ", ".join(
            str(order) if order == given else f"{given} = {'unknown on this kernel' if order is None else order}"
            for given, order in rule.resolved_orders(named)
        ) if named else ", ".join(map(str, rule.orders))
        print(f"  rule {rule.name}: orders {orders}")
    for line in judged_lines(verdict):
        print(f"  {line}")
    unchecked = unchecked_line(verdict, why)
    if unchecked:
        print(f"  {unchecked}")
    return EXIT_USAGE if verdict.errors else EXIT_OK


def cmd_record(args: argparse.Namespace) -> int:
    import os
    import time

    from . import config as configuration
    from . import configload
    from .daemon import Daemon
    from .journal import Journal
    from .notify import Notifier
    from .safefile import check_target

    path = os.path.abspath(args.file)
    check_target(path)
    max_size = configuration.parse_size(args.max_size) if args.max_size else None
    if args.max_size and (max_size is None or max_size < 64 << 10):
        raise UsageError(f"--max-size: expected a size of at least 64K (e.g. 16M), got {args.max_size!r}")
    if args.interval is not None and args.interval <= 0:
        raise UsageError(f"--interval: expected seconds above 0, got {args.interval}")

    def load() -> configuration.Config:
        loaded = configload.load_isolated(configload.resolve(args.config))
        record = loaded.record.replace(path=path)
        if max_size:
            record = record.replace(max_size=max_size)
        if args.interval:
            record = record.replace(interval=args.interval)
        return loaded.replace(record=record)

    config = load()
    daemon = Daemon(
        _procfs(args),
        config,
        Journal(config.log_target, config.debug or args.debug),
        reload=load,
        notifier=Notifier(),
        dry_run=not args.act,
        debug=args.debug,
    )
    started = time.monotonic()

    def bound(interval: float) -> Optional[float]:
        if (args.polls is not None and daemon.polls >= args.polls) or (
            args.duration is not None and time.monotonic() - started >= args.duration
        ):
            return None
        if args.duration is not None:
            interval = min(interval, max(args.duration - (time.monotonic() - started), 0.0))
        return interval

    code = daemon.run(bound)
    from .metrics import count

    print(f"recorded {count(daemon.polls, 'poll')} to {path}", file=sys.stderr)
    return code


def cmd_replay(args: argparse.Namespace) -> int:
    import json

    from . import configload, replay
    from .actions import registry
    from .trace import read_trace

    trace = read_trace(args.trace)
    paths = configload.resolve(args.config)
    config = configload.load(paths)
    backends = None
    if args.backends is not None:
        backends = [name.strip() for name in args.backends.split(",") if name.strip()]
        unknown = registry.unknown(backends)
        if unknown:
            raise UsageError(f"--backends: {', '.join(unknown)}: expected names from {', '.join(registry.NAMES)}")
    outcome = replay.replay(trace, config, backends)
    if args.json:
        json.dump(replay.document(outcome, config.sources), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(replay.render(outcome, config.sources, quiet=args.quiet))
    return EXIT_OK


def _journal_events(args: argparse.Namespace) -> List[dict[str, object]]:
    from . import history
    from .errors import MissingInputError

    since = history.parse_since(args.since) if args.since else None
    files = getattr(args, "file", [])
    events = history.read(args.directory, files, since)
    if not events:
        where = ", ".join(files) if files else args.directory or "the journal"
        raise MissingInputError(where, "no shrinkd events" + (f" since {args.since}" if args.since else ""))
    return events


def cmd_history(args: argparse.Namespace) -> int:
    import json
    import os

    from . import history

    events = _journal_events(args)
    if args.json:
        json.dump({"events": events, "totals": history.totals(events)}, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(history.render(events, os.sysconf("SC_PAGE_SIZE")))
    return EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    from . import plot

    if args.width <= 0 or args.height < 0 or args.dpi <= 0:
        raise UsageError("--width, --height and --dpi must be above 0")
    if args.journal == bool(args.trace):
        raise UsageError("give trace files or --journal (one of the two)")
    if args.journal and args.config:
        raise UsageError("--config goes with trace files, not --journal")
    notes: List[str] = []
    if args.journal:
        figure = plot.from_journal(_journal_events(args), args.width, args.height or 5.0)
    else:
        from . import configload
        from .trace import read_trace

        trace = read_trace(args.trace)
        indexes: List[plot.Watched] = []
        if args.config is None:
            notes = [f"{', '.join(trace.sources)}: a trace holds no configuration: no trigger or clear levels drawn (give --config FILE)"]
        else:
            indexes, notes = plot.watched(trace, configload.load([args.config]), args.config)
        figure = plot.from_trace(trace, args.width, args.height, indexes=indexes)
    plot.save(figure, args.output, args.dpi)
    for note in notes:  # after the picture is written: an error stays one line
        print(f"shrinkd: note: {note}", file=sys.stderr)
    width, height = figure.get_size_inches() * args.dpi
    print(f"wrote {args.output} ({round(width)}x{round(height)} pixels)")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    import json

    from . import doctor

    report = doctor.examine(_procfs(args), args.config, args.unit)
    if args.json:
        json.dump(report.document(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.render())
    return report.exit_code()
