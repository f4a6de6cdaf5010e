"""One judgement of a configuration against a system, shared by check-config, doctor and run.

`judge(config, system, outputs, dry_run)` is pure: the configuration, a description of the
system (`System`: its zones and orders from /proc/buddyinfo, what the order names stand for,
which backends are usable and why not, who runs shrinkd) and what safefile says of each
output path. It returns a `Verdict`, a list of problems, each an error or a warning:

- an error: the configuration can never act as written here. None of its rules can be
  watched and acted on (every zone or order they name is missing, no backend is usable; for
  a configuration without rules, none of its triggers), or it asks for an output file
  shrinkd will refuse to write. `shrinkd run` refuses to start
  (exit 2, one line each), check-config exits 2, doctor says FAIL.
- a warning: part of it cannot act (one rule's zone does not exist, an enabled backend is
  not permitted, a dry run whose real run would be refused). `shrinkd run` starts and says
  so in a `config_warning` event; doctor says WARN.
- a note: an enabled backend this system does not have (the next one is used). check-config
  prints it; run's `started` event already lists the backends it found.

Without a system (`system` None: check-config --no-system, or /proc/buddyinfo unreadable)
it checks what does not depend on one (zone names Linux does not have, output paths) and
says what it could not check (`Verdict.unchecked`).

`read_system` and `output_problems` are the shell that reads the system; `probe_backends`
is the one place the judgement asks which backends are usable here. `shrinkd run` judges in
the child process that reads the configuration (configload.load_checked), so that none of
this module is loaded in the long-running daemon; what the daemon needs of it lives where the
daemon finds it (the reclaim lines in actions.registry, `no_order` in conditions, CannotAct in
errors) and is imported here under the same names for the commands.
"""

from __future__ import annotations

import os

from .actions.registry import reclaim_backends as reclaim_backends
from .actions.registry import reclaim_lines as reclaim_lines
from .actions.registry import reclaim_summary as reclaim_summary
from .conditions import no_order as no_order
from .errors import CannotAct as CannotAct
from .metrics import format_mib
from .record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Optional, Sequence, Tuple

    from .actions.spec import Probe
    from .conditions import Rule
    from .config import Config
    from .procfs import ProcFS

ERROR, WARNING, NOTE = "error", "warning", "note"
MISSING = "not available on this system"  # a backend's answer when it is absent (a note, not a warning)

# The zone names Linux gives (include/linux/mmzone.h, enum zone_type): any other is a typo.
ZONE_NAMES = ("DMA", "DMA32", "Normal", "HighMem", "Movable", "Device")
OUTPUT_KEYS = ("record.path", "prometheus.textfile")


class Problem(Record):
    __slots__ = ("level", "text")

    def __init__(self, level: str, text: str) -> None:
        self.level = level
        self.text = text


class Verdict(Record):
    __slots__ = ("problems", "unchecked")

    def __init__(self, problems: Tuple[Problem, ...], unchecked: Tuple[str, ...] = ()) -> None:
        self.problems = problems
        self.unchecked = unchecked  # what could not be checked without a system

    @property
    def errors(self) -> List[str]:
        return [p.text for p in self.problems if p.level == ERROR]

    @property
    def warnings(self) -> List[str]:
        return [p.text for p in self.problems if p.level == WARNING]

    @property
    def notes(self) -> List[str]:
        return [p.text for p in self.problems if p.level == NOTE]


class System(Record):
    """What the judgement needs to know of a system, read through procfs (read_system)."""

    __slots__ = ("backends", "euid", "named", "origins", "zones")

    def __init__(
        self,
        zones: Mapping[Tuple[int, str], Tuple[int, Optional[int]]],
        named: Mapping[str, Optional[int]],
        backends: Mapping[str, Optional[str]],
        euid: int,
        origins: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.zones = dict(zones)  # (node, zone) -> (orders, managed bytes or None without zoneinfo)
        self.named = dict(named)  # order names -> orders (None: unknown here)
        self.backends = dict(backends)  # each enabled backend -> None when usable, else why not
        self.euid = euid
        # order names -> where the order came from ("hugetlb 2048 kB"), or why it is unknown
        self.origins = dict(origins or {})


def judge(
    config: Config,
    system: Optional[System],
    outputs: Mapping[str, Optional[str]],
    dry_run: bool = False,
    as_root: bool = False,
    empty: Sequence[str] = (),
) -> Verdict:
    """The problems of `config` on `system`; `outputs` maps each configured output key to safefile's
    objection (None: it can be written); `empty` names the configuration files with nothing in them. With `as_root`, a judge who is not root (check-config or doctor
    run by a user) leaves privileges unchecked: a backend present but refused to them counts as usable."""
    problems = [Problem(WARNING, f"{path}: empty: the built-in defaults apply") for path in empty]
    for key, objection in outputs.items():
        if objection is not None:
            problems.append(Problem(ERROR, f"{key}: {objection}"))
    for rule in config.rules:
        typos = [zone for zone in rule.zones if zone != "*" and zone not in ZONE_NAMES]
        if typos:
            problems.append(
                Problem(WARNING, f"rule {rule.name}: zones {', '.join(typos)}: not a zone Linux has ({', '.join(ZONE_NAMES)})")
            )
    if system is None:
        named = [rule for rule in config.rules if "*" in rule.zones or set(rule.zones) & set(ZONE_NAMES)]
        if config.rules and not named:
            problems.append(Problem(ERROR, "no rule in this configuration can act: none names a zone Linux has"))
        return Verdict(tuple(problems), ("zones", "orders", "backends", "privileges"))
    answers = dict(system.backends)
    unchecked: Tuple[str, ...] = ()
    if as_root and system.euid != 0:
        unchecked = ("privileges",)
        answers = {name: why if why == MISSING else None for name, why in answers.items()}
    here = [name for name in config.enabled if answers.get(name) is None]
    for name in config.enabled:
        why = answers.get(name)
        if why is not None:
            problems.append(Problem(NOTE if why == MISSING else WARNING, f"backend {name}: {why}"))
    if not here and config.enabled and system.euid != 0:
        problems.append(Problem(WARNING, f"running as uid {system.euid}, not root: the kernel refuses shrinkd's writes"))
    if dry_run and not here:
        problems.append(Problem(WARNING, "a real run could not act: no backend is usable here"))
    usable = list(config.enabled) if dry_run else here  # a dry run writes nothing: it still shows what would happen
    reclaim = [name for name in config.reclaim.prefer if name in usable]
    acting = 0
    for rule in config.rules:
        watched, missing = _watched(rule, system)
        problems += [Problem(WARNING, f"rule {rule.name}: {text}") for text in missing]
        can = bool(reclaim) if rule.watermark is not None else "compact" in usable or (rule.reclaim and bool(reclaim))
        if not watched:
            problems.append(Problem(WARNING, f"rule {rule.name}: can never act here: nothing it watches exists"))
        elif not can:
            problems.append(Problem(WARNING, f"rule {rule.name}: no usable backend can act for it"))
        acting += bool(watched and can)
    if not config.rules and config.triggers and ("compact" in usable or reclaim):
        acting += 1  # a configuration of triggers alone
    if not acting:
        what = "no rule in this configuration" if config.rules else "nothing in this configuration"
        problems.append(Problem(ERROR, f"{what} can act on this system"))
    return Verdict(tuple(problems), unchecked)


def _watched(rule: Rule, system: System) -> Tuple[int, List[str]]:
    """(zone and order pairs the rule can watch on `system`, why the rest cannot)."""
    missing: List[str] = []
    zones = [(key, zone) for key, zone in system.zones.items() if rule.matches(*key)]
    named = [zone for zone in rule.zones if zone != "*"]
    absent = [zone for zone in named if zone in ZONE_NAMES and not any(key[1] == zone for key, _ in zones)]
    if absent:
        have = ", ".join(sorted({zone for _, zone in system.zones})) or "none"
        missing.append(f"zones {', '.join(absent)}: not on this system (zones here: {have})")
    big_enough = [(key, zone) for key, zone in zones if zone[1] is None or zone[1] >= rule.min_zone_size]
    if zones and not big_enough:
        missing.append(f"every zone it names is below min_zone_size ({format_mib(rule.min_zone_size)})")
    count = max((zone[0] for _, zone in big_enough), default=0)
    orders = []
    for given, order in rule.resolved_orders(system.named):
        if order is None:
            why = system.origins.get(str(given))
            missing.append(no_order(given) + (f": {why}" if why else ""))
        elif count and order >= count:
            missing.append(f"order {order} is beyond this kernel's {count} orders (0-{count - 1})")
        else:
            orders.append(order)
    return len(big_enough) * len(orders), missing


def judged_lines(verdict: Verdict) -> List[str]:
    """One line per problem, errors first, as check-config and run print them."""
    return (
        [f"error: {text}" for text in verdict.errors]
        + [f"warning: {text}" for text in verdict.warnings]
        + [f"note: {text}" for text in verdict.notes]
    )


# -- the shell: reading the system --------------------------------------------------


def probe_backends(
    procfs: ProcFS, config: Config, probes: Optional[Sequence[Probe]] = None
) -> Dict[str, Optional[str]]:
    """Each backend the configuration enables: None when it is present and permitted here, else why not.
    The judgement's one question about backends, answered by the backend registry's probe (the files
    each backend would write, found as it finds them to act, and whether this process may write them),
    or by `probes`, that probe's answer already had."""
    from .actions import registry

    answers: Dict[str, Optional[str]] = {}
    if probes is None:
        probes = registry.probe(procfs, config, page_size=procfs.page_size())
    for found in probes:
        if not found.enabled:
            continue
        if found.usable:
            answers[found.name] = None
        elif found.paths and not found.writable:
            answers[found.name] = f"not permitted: {', '.join(found.paths)} not writable by uid {os.geteuid()}"
        else:
            answers[found.name] = MISSING
    return answers


def read_system(
    procfs: ProcFS, config: Config, probes: Optional[Sequence[Probe]] = None
) -> Tuple[Optional[System], str]:
    """The system as the judgement sees it, or (None, why) when /proc/buddyinfo cannot be read.
    `probes`: the backend registry's probe when the caller already has it (doctor)."""
    from . import parse
    from .errors import ShrinkdError

    try:
        buddy = parse.parse_buddyinfo(procfs.read_text(procfs.proc("buddyinfo")), procfs.proc("buddyinfo"))
    except ShrinkdError as error:
        return None, f"no system: {error}"
    page_size = procfs.page_size()
    managed: Dict[Tuple[int, str], int] = {}
    try:
        for zone in parse.parse_zoneinfo(procfs.read_text(procfs.proc("zoneinfo"))):
            managed[(zone.node, zone.zone)] = zone.managed * page_size
    except ShrinkdError:
        pass
    zones = {(z.node, z.zone): (len(z.free), managed.get((z.node, z.zone))) for z in buddy.zones}
    named = procfs.named_orders(page_size)
    origins = {"huge": procfs.huge_order(page_size)[1]}
    system = System(zones, named, probe_backends(procfs, config, probes), os.geteuid(), origins)
    return system, ""


def output_problems(config: Config) -> Dict[str, Optional[str]]:
    """safefile's objection to each output path the configuration names (None: it can be written)."""
    from .safefile import OutputError, check_target

    found: Dict[str, Optional[str]] = {}
    for key, path in zip(OUTPUT_KEYS, (config.record.path, config.prometheus.textfile)):
        if path is None:
            continue
        try:
            check_target(path)
        except OutputError as error:
            found[key] = str(error)
        else:
            found[key] = None
    return found


def examine(
    procfs: Optional[ProcFS],
    config: Config,
    dry_run: bool = False,
    as_root: bool = False,
    probes: Optional[Sequence[Probe]] = None,
) -> Tuple[Verdict, str]:
    """Judge `config` on the system under `procfs` (None: without a system); the verdict and why
    what it lists as unchecked was not checked. `probes`: the backend registry's probe, when had."""
    system, why = read_system(procfs, config, probes) if procfs is not None else (None, "no system given")
    if system is not None:
        why = f"run as uid {system.euid}; shrinkd run runs as root"
    return judge(config, system, output_problems(config), dry_run, as_root, empty_files(config.sources)), why


def empty_files(sources: Sequence[str]) -> List[str]:
    """The configuration files that hold nothing but blank lines and comments (an empty YAML document)."""
    empty = []
    for path in sources:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                lines = [line.strip() for line in handle]
        except OSError:
            continue  # the built-in defaults, or a file already read by configload
        if all(not line or line.startswith("#") or line in ("---", "...") for line in lines):
            empty.append(path)
    return empty


def unchecked_line(verdict: Verdict, why: str) -> Optional[str]:
    if not verdict.unchecked:
        return None
    return f"not checked ({why}): {', '.join(verdict.unchecked)}"

